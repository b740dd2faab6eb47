"""Who may act on a claim, where the courier is on it, and the claim's progress (design doc 003, part 3).

Authority. Driver screens and actions answer only while the claim is live and the caller is its CURRENT
performer: a claim nobody knows is 404; another driver (also before a performer is found) is 403
`not_performer`; the performer after the job (delivered, cancelled, failed: the claim's side closed, or a claim
replaced by the scooter's next one) is 409 `claim_finished`, and nothing changes. The scooter's own actions end
earlier: once the scooter is back in rent they are `claim_finished` too, while the cabinet screens stay open for
the return of the battery at C until the claim is delivered. Liveness and the phases come from the lifecycle.

Where the courier is. The claim status and point the follower stored lag behind cargo (a minute, more while the
journal is held). When the stored state does not show the courier AT the point asked about, cargo is asked
(claims/info, one call) and the answer kept FRESH_SECONDS in this process, per claim and point asked about:
cargo-orders asks the same claim's actions again every few seconds while the courier's screen is open, and a warm
Lambda serves those polls; a shared cache (a table) would cost a write per miss and a read per hit, more than the
call it saves. If cargo cannot answer, the stored state is used.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time

from chalicelib.core import clock
from chalicelib.core.dynamo import update_if
from chalicelib.core.errors import AppError, Forbidden, NotFound, UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import get_live

from ..recharge import lifecycle
from ..recharge import upstreams as claims_api
from ..recharge.models import DESTINATION, RETURN, SOURCE, RechargeTask, points_of, task_by_claim
from .models import ClaimProgress

log = get_logger(__name__)

PROGRESS_KEEP_DAYS = 30
FRESH_SECONDS = 5.0
FRESH_KEPT = 1000
PICKUP, RETURN_MODE = "pickup", "return"


class ClaimFinished(AppError):
    status = 409
    code = "claim_finished"


def _finished() -> ClaimFinished:
    return ClaimFinished("Заказ завершён: действия по нему недоступны")


# --- the claim's task and its progress ---------------------------------------------------------------------

def claim_task(claim_id: str) -> RechargeTask:
    task = task_by_claim(claim_id)
    if task is None:
        raise NotFound("no recharge task for this claim", code="claim_not_found")
    return task


def live_task(claim_id: str) -> RechargeTask:
    """The claim's task while the claim is live (internal routes: cargo-orders, the storekeeper bot)."""
    task = claim_task(claim_id)
    if not lifecycle.claim_live(task, claim_id):
        raise _finished()
    return task


def progress_of(claim_id: str) -> ClaimProgress | None:
    return get_live(ClaimProgress, claim_id, consistent_read=True)


def _is(identity: DriverIdentity, park_id: str | None, driver_profile_id: str | None) -> bool:
    return (park_id, driver_profile_id) == (identity.park_id, identity.driver_profile_id)


def acting_task(identity: DriverIdentity, claim_id: str, *, scooter: bool = False) -> RechargeTask:
    """The claim's task if the caller is its current performer and the claim is live (`scooter`: and the scooter
    not back in rent yet). 404 / 403 not_performer / 409 claim_finished otherwise (see the docstring)."""
    task = task_by_claim(claim_id)
    if task is None:
        # The scooter's next claim replaced this one: its former courier is told it is over, others 404/403.
        progress = progress_of(claim_id)
        if progress is None:
            raise NotFound("no recharge task for this claim", code="claim_not_found")
        if not _is(identity, progress.performer_park_id, progress.performer_driver_profile_id):
            raise _not_performer(claim_id)
        raise _finished()
    if not _is(identity, task.performer_park_id, task.performer_driver_profile_id):
        raise _not_performer(claim_id)
    if not lifecycle.claim_live(task, claim_id) or (scooter and not lifecycle.scooter_open(task)):
        log.event("scooters.courier.claim_finished", claim_id=claim_id, status=task.status)
        raise _finished()
    return task


def _not_performer(claim_id: str) -> Forbidden:
    log.event("scooters.courier.not_performer", claim_id=claim_id)
    return Forbidden("only the claim's performer may do this", code="not_performer")


def update_progress(task: RechargeTask, actions: list, condition=None) -> bool:
    """An upsert of the claim's progress item (created by its first write), with who acted; False when
    `condition` did not hold (nothing written)."""
    now = clock.now()
    keep = max(task.expires_at, now + dt.timedelta(days=PROGRESS_KEEP_DAYS)) if task.expires_at else (
        now + dt.timedelta(days=PROGRESS_KEEP_DAYS))
    item = ClaimProgress(task.claim_id)
    return update_if(item, [*actions, ClaimProgress.updated_at.set(now), ClaimProgress.task_id.set(task.task_id),
                            ClaimProgress.performer_park_id.set(task.performer_park_id),
                            ClaimProgress.performer_driver_profile_id.set(task.performer_driver_profile_id),
                            ClaimProgress.expires_at.set(keep)], condition)


# --- points and where the courier is -----------------------------------------------------------------------

def point_kind(task: RechargeTask, point_id: str) -> str:
    points = points_of(task)
    for kind in (SOURCE, DESTINATION, RETURN):
        if points.get(kind) is not None and str(points[kind]) == point_id:
            return kind
    raise NotFound("no such route point in this claim", code="point_not_found")


@dataclasses.dataclass(frozen=True)
class Position:
    status: str | None
    point_id: str | None  # the claim's current point

    def at(self, point_id: str) -> bool:
        return self.point_id == point_id and self.status in lifecycle.AT_POINT


_fresh: dict[tuple[str, str | None], tuple[float, Position]] = {}


def forget_fresh() -> None:
    _fresh.clear()


def stored_position(task: RechargeTask) -> Position:
    return Position(task.claim_status, task.current_point_id)


def fresh_position(task: RechargeTask, asked: str | None = None) -> Position:
    """The claim's status and current point from cargo (cached FRESH_SECONDS for the point `asked` about), the
    stored ones if it fails."""
    claim_id = task.claim_id
    cached = _fresh.get((claim_id, asked))
    if cached is not None and time.monotonic() - cached[0] < FRESH_SECONDS:
        return cached[1]
    try:
        claim = claims_api.claim_info(claim_id)
    except (UpstreamUnavailable, UpstreamRejected) as error:
        log.warning_event("scooters.courier.claim_state_unavailable", claim_id=claim_id, error=describe(error))
        return stored_position(task)
    position = Position(claim.status, str(claim.current_point_id) if claim.current_point_id is not None else None)
    if len(_fresh) >= FRESH_KEPT:
        _fresh.clear()
    _fresh[(claim_id, asked)] = (time.monotonic(), position)
    return position


def position_at(task: RechargeTask, point_id: str) -> Position:
    """Where the courier is, as needed to answer for `point_id`: the stored state when it already shows the
    courier at that point, cargo's (fresh) otherwise."""
    stored = stored_position(task)
    return stored if stored.at(point_id) else fresh_position(task, point_id)


def cabinet_mode(task: RechargeTask) -> str:
    """pickup (A: take the booked batteries) or return (C: put the discharged one back). Back in rent, or heading
    to C, is the return; at A, or before it, the pickup; on the way to or at B, cargo is asked (the courier may have
    left B already)."""
    if task.status in lifecycle.BACK_IN_RENT:
        return RETURN_MODE
    points = points_of(task)
    current = task.current_point_id
    if current is not None and current == points.get(RETURN):
        return RETURN_MODE
    if current is None or current == points.get(SOURCE):
        return PICKUP
    fresh = fresh_position(task)
    return RETURN_MODE if fresh.point_id is not None and fresh.point_id == points.get(RETURN) else PICKUP
