"""Create: an order in an enabled area gets a code unique among the area's LIVE codes.

The assignment and its (area, code) guard are written in one transaction, each conditional on "absent or
expired" (TTL deletes late, so an expired item must not block). A collision draws another code, up to the
configured attempts. A second create for the order returns the first code while it can be typed, 410
code_expired after (the order stays on record while its status needs it; see store.py); two creates racing
for one order end with one code (the loser re-reads the winner's). The code's length is the area's
(GeneratorSettings.length_in); the first attempt's tracker acquire token is drawn here.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from pynamodb.exceptions import TransactWriteError

from chalicelib.core import clock, metrics
from chalicelib.core.dynamo import transaction
from chalicelib.core.errors import Conflict
from chalicelib.core.logs import get_logger

from . import codes, store, switches
from .models import AreaCode, Assignment, Change, area_code_key
from .schemas import GENERATOR_SETTINGS, ZoneSettings
from .store import CodeExpired, Status

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Created:
    code: str
    zone: ZoneSettings
    expires_at: dt.datetime  # until when the code can be typed
    attempts: int  # 0: the order already had its code
    created: bool


class _Outcome(enum.Enum):
    CREATED = "created"
    ORDER_TAKEN = "order_taken"  # the order already has a live assignment (a racing create)
    CODE_TAKEN = "code_taken"  # the code is live in the area
    CONTENDED = "contended"  # DynamoDB cancelled on a concurrent transaction: just try again


def _try_create(order_id: str, area_id: str, code: str, now: dt.datetime, expires_at: dt.datetime) -> _Outcome:
    assignment = Assignment(
        order_id=order_id, area_id=area_id, code=code, status=Status.PENDING.value, attempt=1, created_at=now,
        updated_at=now,
        changes=[Change(at=now, who="order_create", from_status=None, to_status=Status.PENDING.value, attempt=1)],
        acquire_token=store.new_acquire_token(), code_expires_at=expires_at, expires_at=expires_at,
    )
    guard = AreaCode(area_code=area_code_key(area_id, code), area_id=area_id, code=code, order_id=order_id,
                     expires_at=expires_at)
    try:
        with transaction() as tx:
            # Absent, or expired and not yet swept by TTL: both are free.
            tx.save(assignment, condition=Assignment.order_id.does_not_exist() | (Assignment.expires_at <= now))
            tx.save(guard, condition=AreaCode.area_code.does_not_exist() | (AreaCode.expires_at <= now))
    except TransactWriteError as error:
        if getattr(error, "cause_response_code", None) != "TransactionCanceledException":
            raise
        reasons = [reason.code if reason is not None else None for reason in (error.cancellation_reasons or [])]
        if reasons[:1] == ["ConditionalCheckFailed"]:
            return _Outcome.ORDER_TAKEN
        if reasons[1:2] == ["ConditionalCheckFailed"]:
            return _Outcome.CODE_TAKEN
        if "TransactionConflict" in reasons:
            return _Outcome.CONTENDED
        raise
    return _Outcome.CREATED


def _same_order(existing: Assignment, area_id: str, zone: ZoneSettings) -> Created:
    if existing.area_id != area_id:
        raise Conflict("the order already has a code in another area", code="order_in_another_area")
    if not store.code_is_live(existing):  # kept for its processing or change log; its code is over
        raise CodeExpired("the order's code has expired")
    return Created(code=existing.code, zone=zone, expires_at=store.code_expires_at(existing), attempts=0,
                   created=False)


def create_order(order_id: str, area_id: str) -> Created:
    """The order's code in the area: a new one, or the one it already has (idempotent per order)."""
    switches.require_feature(area_id=area_id)  # no driver yet: clauses on park or driver do not match here
    zone = switches.zone(area_id)
    existing = store.live_assignment(order_id)
    if existing is not None:
        return _same_order(existing, area_id, zone)
    generator = GENERATOR_SETTINGS.get()
    length = generator.length_in(zone)
    now = clock.now()
    expires_at = now + dt.timedelta(seconds=zone.order_expire_seconds)
    for attempt in range(1, generator.max_attempts + 1):
        code = codes.generate(generator, length)
        outcome = _try_create(order_id, area_id, code, now, expires_at)
        if outcome is _Outcome.CREATED:
            log.event("codedispatch.code_created", order_id=order_id, area_id=area_id, attempts=attempt,
                      metrics=metrics.count("codedispatch", "CodesCreated"))
            return Created(code=code, zone=zone, expires_at=expires_at, attempts=attempt, created=True)
        if outcome is _Outcome.ORDER_TAKEN:
            existing = store.live_assignment(order_id)
            if existing is not None:
                log.event("codedispatch.create_lost_race", order_id=order_id, area_id=area_id)
                return _same_order(existing, area_id, zone)
    log.warning_event("codedispatch.codes_exhausted", order_id=order_id, area_id=area_id,
                      attempts=generator.max_attempts, space=codes.space_size(generator, length))
    raise Conflict(f"no free code in area {area_id} after {generator.max_attempts} attempts",
                   code="codes_exhausted")
