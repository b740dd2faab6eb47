"""Rules of code dispatching (design doc 004, stage 2).

Create: an order in an enabled area gets a code unique among the area's LIVE codes. The assignment and
its (area, code) guard are written in one transaction, each conditional on "absent or expired" (TTL deletes
late, so an expired item must not block). A collision draws another code, up to the configured attempts.
A second create for the order returns the first code; two creates racing for one order end with one
code (the loser re-reads the winner's).

Assign: a driver types the code; the first driver moves the assignment pending -> processing with a write
conditional on status == pending, so of two racing drivers exactly one wins and the other gets 409. The
same driver repeating the call is answered the current state (and, while processing, the processing push
is sent again: SQS is at-least-once anyway). A driver is always compared by park_db_id AND
driver_profile_id, never by the joined `driver_id` ("a_b"+"c" and "a"+"b_c" join alike).

Processing push: after a successful send the assignment records `processing_sent_at`. If the send fails
after the state moved (the driver gets 503 and may leave), the assigned driver's status polls heal it:
a poll that finds the attempt processing, not sent, and older than PROCESSING_RESEND_AFTER (room for a
send still in flight) sends it and records it. A recorded send is never repeated by polls.

Drivers-lookup: lookup asks who typed the code; the driver is acquired in the tracker and the assignment
moves processing -> assigned, or -> error (driver_not_found_in_tracker). Tracker down: 503, no change.

Attempts (what happens after error): statuses only move forward within an attempt (schemas.TRANSITIONS),
so an attempt that ended in error is never reused. Instead, typing the order's code again starts a NEW
attempt on the same item: `attempt` + 1, status pending -> processing for the driver who typed it (the
same driver after fixing GPS, or another one), error_code and processing_sent_at cleared, both steps
appended to the change log, each log entry tagged with its attempt. Chosen over "order/create issues a
new code" because the driver who sees the error is the one who can act (the status message tells them to
type the code again, and that now works), the passenger keeps the code they were given, and nobody has to
call create again. The restart is conditional on (status == error, same attempt), so of drivers racing to
retry one wins and the rest get 409. Every move is conditional on the attempt it read, so a slow
drivers-lookup of an old attempt cannot touch the current one; the tracker acquire's idempotency key is
per attempt, so the new attempt really asks the tracker again. The code still expires with the order.

Brute force: codes are short, so a driver could try them all. Typed codes are counted per driver (park and
profile), per area, per fixed window (WrongCodes, TTL). Before looking a code up, assign reserves one try
with an atomic ADD conditional on count < limit (so concurrent guesses cannot overshoot); a code that
leads to an order gives the try back. Over the limit every code, right or wrong, gets 429
too_many_attempts until the window ends, so the answer leaks nothing. Limit and window are in
CODE_DISPATCH_GENERATOR_SETTINGS (default 10 per 10 minutes); malformed codes (400) do not count.

Every status move is a conditional update that also appends an entry to the assignment's change log.

Design doc reading: the doc marks only the processing handlers (assign, status, lookup) as checking
CODE_DISPATCH_PROCESSING_ENABLED and says the `code_dispatch` experiment switches the feature "in all its
forms"; so create needs the experiment and an enabled area, and the processing handlers need the
experiment and CODE_DISPATCH_PROCESSING_ENABLED. The doc also leaves open who sets `assigned`: the only
handler that learns the driver really gets the order is drivers-lookup (after acquiring the driver in
the tracker), so it moves the assignment to assigned.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.core import clock, queues
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.dynamo import condition_failed, transaction
from chalicelib.core.errors import AppError, BadRequest, Conflict, NotFound, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger

from . import codes, upstreams
from .models import AreaCode, Assignment, Change, WrongCodes, area_code_key, wrong_codes_key
from .schemas import (
    DRIVER_NOT_FOUND_IN_TRACKER, ERROR_MESSAGES, EXPERIMENT, GENERATOR_SETTINGS, PROCESSING_ENABLED, TRANSITIONS,
    UNKNOWN_ERROR_MESSAGE, ZONES_SETTINGS, AssignmentStatus, GeneratorSettings, OrderProcessingMessage,
    ZoneSettings,
)

log = get_logger(__name__)

ORDER_PROCESSING_QUEUE = queues.declare("codedispatch_order_processing")

Status = AssignmentStatus

# A status poll re-sends a processing push that was never recorded as sent once the attempt is this old
# (younger: assign's own send may still be in flight).
PROCESSING_RESEND_AFTER = dt.timedelta(seconds=5)


class TooManyAttempts(AppError):
    """The driver typed too many wrong codes in this area lately (core.errors has no 429)."""

    status = 429
    code = "too_many_attempts"


# --- drivers and attempts ---------------------------------------------------------------------------

def _is_driver(assignment: Assignment, driver: DriverIdentity) -> bool:
    """Park and profile compared apart: the joined driver_id of two different drivers can be equal."""
    return (assignment.park_db_id, assignment.driver_profile_id) == (driver.park_id, driver.driver_profile_id)


def _attempt(assignment: Assignment) -> int:
    return int(assignment.attempt or 1)


def _same_attempt(assignment: Assignment):
    """Condition: the stored item is still in the attempt `assignment` was read in."""
    if assignment.attempt is None:  # written before attempts were recorded: its first attempt
        return Assignment.attempt.does_not_exist()
    return Assignment.attempt == assignment.attempt


# --- switches ---------------------------------------------------------------------------------------

def _require_feature() -> None:
    if not EXPERIMENT.get().enabled:
        raise Conflict("code dispatch is switched off", code="code_dispatch_disabled")


def _require_processing() -> None:
    _require_feature()
    if not PROCESSING_ENABLED.get():
        raise Conflict("code dispatch processing is switched off", code="code_dispatch_processing_disabled")


def _zone(area_id: str) -> ZoneSettings:
    zone = ZONES_SETTINGS.get().get(area_id)
    if zone is None or not zone.enabled:
        raise Conflict(f"code dispatch is not enabled in area {area_id}", code="area_disabled")
    return zone


# --- reads ------------------------------------------------------------------------------------------

def _live_assignment(order_id: str) -> Assignment | None:
    """The order's assignment unless absent or expired (TTL deletes late). Strongly consistent: one GetItem."""
    try:
        assignment = Assignment.get(order_id, consistent_read=True)
    except DoesNotExist:
        return None
    return assignment if assignment.expires_at > clock.now() else None


def _live_code(area_id: str, code: str) -> AreaCode | None:
    try:
        item = AreaCode.get(area_code_key(area_id, code), consistent_read=True)
    except DoesNotExist:
        return None
    return item if item.expires_at > clock.now() else None


# --- create -----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Created:
    code: str
    zone: ZoneSettings
    expires_at: dt.datetime
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
        expires_at=expires_at,
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
    return Created(code=existing.code, zone=zone, expires_at=existing.expires_at, attempts=0, created=False)


def create_order(order_id: str, area_id: str) -> Created:
    """The order's code in the area: a new one, or the one it already has (idempotent per order)."""
    _require_feature()
    zone = _zone(area_id)
    existing = _live_assignment(order_id)
    if existing is not None:
        return _same_order(existing, area_id, zone)
    generator = GENERATOR_SETTINGS.get()
    now = clock.now()
    expires_at = now + dt.timedelta(seconds=zone.order_expire_seconds)
    for attempt in range(1, generator.max_attempts + 1):
        code = codes.generate(generator)
        outcome = _try_create(order_id, area_id, code, now, expires_at)
        if outcome is _Outcome.CREATED:
            log.event("codedispatch.code_created", order_id=order_id, area_id=area_id, attempts=attempt)
            return Created(code=code, zone=zone, expires_at=expires_at, attempts=attempt, created=True)
        if outcome is _Outcome.ORDER_TAKEN:
            existing = _live_assignment(order_id)
            if existing is not None:
                log.event("codedispatch.create_lost_race", order_id=order_id, area_id=area_id)
                return _same_order(existing, area_id, zone)
    log.warning_event("codedispatch.codes_exhausted", order_id=order_id, area_id=area_id,
                      attempts=generator.max_attempts, space=codes.space_size(generator))
    raise Conflict(f"no free code in area {area_id} after {generator.max_attempts} attempts",
                   code="codes_exhausted")


# --- transitions ------------------------------------------------------------------------------------

def _move(assignment: Assignment, to: Status, who: str, *, error_code: str | None = None,
          driver: DriverIdentity | None = None) -> bool:
    """Move the assignment one step forward, conditional on its current status, attempt (and driver).

    True when this call moved it; False when the condition failed (someone moved it first, or a new
    attempt started), after which `assignment` holds what is stored now.
    """
    current = Status(assignment.status)
    if to not in TRANSITIONS[current]:
        raise ValueError(f"assignment cannot move from {current.value} to {to.value}")
    now = clock.now()
    actions = [
        Assignment.status.set(to.value),
        Assignment.updated_at.set(now),
        Assignment.changes.set(Assignment.changes.append([Change(
            at=now, who=who, from_status=current.value, to_status=to.value, error_code=error_code,
            attempt=_attempt(assignment))])),
    ]
    condition = (Assignment.status == current.value) & _same_attempt(assignment)
    if driver is not None:
        actions += [Assignment.driver_id.set(driver.driver_id), Assignment.park_db_id.set(driver.park_id),
                    Assignment.driver_profile_id.set(driver.driver_profile_id)]
        condition &= Assignment.driver_profile_id.does_not_exist() & (Assignment.expires_at > now)
    else:
        condition &= (Assignment.park_db_id == assignment.park_db_id) & (
            Assignment.driver_profile_id == assignment.driver_profile_id)
    if error_code is not None:
        actions.append(Assignment.error_code.set(error_code))
    if not _update_or_reread(assignment, actions, condition,
                             NotFound("the order has no code dispatch assignment", code="assignment_not_found")):
        return False
    log.event("codedispatch.assignment_moved", order_id=assignment.order_id, from_status=current.value,
              to_status=to.value, who=who, error_code=error_code, attempt=_attempt(assignment))
    return True


def _update_or_reread(assignment: Assignment, actions: list, condition, gone: NotFound) -> bool:
    """Apply a conditional update. When its condition fails (a racing writer won), re-read the assignment so
    the caller sees what won, and return False; `gone` is raised if TTL swept the item meanwhile."""
    try:
        assignment.update(actions=actions, condition=condition)
    except UpdateError as error:
        if not condition_failed(error):
            raise
        try:
            assignment.refresh(consistent_read=True)
        except DoesNotExist:
            raise gone from None
        return False
    return True


def _restart(assignment: Assignment, driver: DriverIdentity, who: str) -> bool:
    """The attempt ended in error and a driver typed the code: open attempt + 1, pending -> processing.

    Not a backward move: the errored attempt stays in the log as it ended; the new one starts from
    pending like the first. Conditional on (error, same attempt, not expired): of racing drivers one wins.
    Same return contract as _move.
    """
    if assignment.status != Status.ERROR.value:
        raise ValueError("only an attempt that ended in error is followed by a new one")
    now, attempt = clock.now(), _attempt(assignment) + 1
    new_attempt = [
        Change(at=now, who=who, from_status=None, to_status=Status.PENDING.value, attempt=attempt),
        Change(at=now, who=who, from_status=Status.PENDING.value, to_status=Status.PROCESSING.value,
               attempt=attempt),
    ]
    actions = [
        Assignment.attempt.set(attempt),
        Assignment.status.set(Status.PROCESSING.value),
        Assignment.driver_id.set(driver.driver_id), Assignment.park_db_id.set(driver.park_id),
        Assignment.driver_profile_id.set(driver.driver_profile_id),
        Assignment.error_code.remove(), Assignment.processing_sent_at.remove(),
        Assignment.updated_at.set(now),
        Assignment.changes.set(Assignment.changes.append(new_attempt)),
    ]
    condition = (Assignment.status == Status.ERROR.value) & _same_attempt(assignment) & (Assignment.expires_at > now)
    if not _update_or_reread(assignment, actions, condition, NotFound("no order with this code", code="code_not_found")):
        return False
    log.event("codedispatch.attempt_started", order_id=assignment.order_id, attempt=attempt, who=who,
              after_error=assignment.changes[-3].error_code if len(assignment.changes) >= 3 else None)
    return True


# --- assign -----------------------------------------------------------------------------------------

def _push_processing(assignment: Assignment) -> None:
    """Send the attempt's processing message, then record the send (for the status polls' re-send)."""
    message = OrderProcessingMessage(
        order_id=assignment.order_id, area_id=assignment.area_id, driver_id=assignment.driver_id,
        park_db_id=assignment.park_db_id, driver_profile_id=assignment.driver_profile_id,
        attempt=_attempt(assignment),
    )
    try:
        queues.send(ORDER_PROCESSING_QUEUE, message)
    except (BotoCoreError, ClientError) as error:
        # The assignment stays processing for this driver, unsent: the driver's retry or status poll sends.
        log.error_event("codedispatch.processing_push_failed", order_id=assignment.order_id, error=describe(error))
        raise UpstreamUnavailable("order processing could not be started, try again",
                                  code="processing_unavailable") from None
    now = clock.now()
    try:
        assignment.update(
            actions=[Assignment.processing_sent_at.set(now)],
            condition=(Assignment.status == Status.PROCESSING.value) & _same_attempt(assignment),
        )
    except UpdateError as error:
        # Moved on meanwhile (nothing to record), or a failed write: the message is out either way; at worst
        # a later poll sends it once more (SQS is at-least-once anyway).
        if not condition_failed(error):
            log.warning_event("codedispatch.processing_sent_not_recorded", order_id=assignment.order_id,
                              error=describe(error))


# --- brute-force guard ------------------------------------------------------------------------------

def _window(generator: GeneratorSettings) -> tuple[int, dt.datetime]:
    """The current fixed window's index and end."""
    seconds = generator.wrong_codes_window_seconds
    index = math.floor(clock.now().timestamp() / seconds)
    return index, dt.datetime.fromtimestamp((index + 1) * seconds, dt.timezone.utc)


def _counter(driver: DriverIdentity, area_id: str, generator: GeneratorSettings) -> tuple[WrongCodes, dt.datetime]:
    index, ends = _window(generator)
    return WrongCodes(counter_key=wrong_codes_key(area_id, driver.park_id, driver.driver_profile_id, index)), ends


def _reserve_try(driver: DriverIdentity, area_id: str, generator: GeneratorSettings) -> WrongCodes:
    """Count this typed code as a guess, atomically, unless the driver is over the limit (-> 429)."""
    counter, ends = _counter(driver, area_id, generator)
    try:
        counter.update(
            actions=[WrongCodes.count.add(1), WrongCodes.expires_at.set(ends)],
            condition=WrongCodes.count.does_not_exist() | (WrongCodes.count < generator.max_wrong_codes),
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        retry_after = max(1, math.ceil((ends - clock.now()).total_seconds()))
        log.warning_event("codedispatch.too_many_wrong_codes", area_id=area_id, park_db_id=driver.park_id,
                          driver_profile_id=driver.driver_profile_id, limit=generator.max_wrong_codes)
        raise TooManyAttempts("too many wrong codes, try again later",
                              details={"retry_after_seconds": retry_after}) from None
    return counter


def _give_back_try(counter: WrongCodes) -> None:
    """The typed code led to an order: it was no guess."""
    try:
        counter.update(actions=[WrongCodes.count.add(-1)])
    except UpdateError as error:  # the driver only loses one try of the window
        log.warning_event("codedispatch.try_not_given_back", error=describe(error))


def assign_order(driver: DriverIdentity, typed_code: str, area_id: str) -> Assignment:
    """The driver typed `typed_code` in `area_id`: the order becomes theirs (processing) unless taken."""
    _require_processing()
    _zone(area_id)
    generator = GENERATOR_SETTINGS.get()
    if not generator.accepts(typed_code):
        raise BadRequest(f"a code is {generator.length} characters of the code alphabet",
                         code="invalid_code_format")
    counter = _reserve_try(driver, area_id, generator)
    guard = _live_code(area_id, typed_code)
    assignment = _live_assignment(guard.order_id) if guard is not None else None
    # The guard may outlive a re-created assignment of its order (an expired one replaced): check both ways.
    if assignment is None or assignment.code != typed_code or assignment.area_id != area_id:
        raise NotFound("no order with this code", code="code_not_found")  # the try stays counted
    _give_back_try(counter)
    who = f"driver:{driver.driver_id}"
    if assignment.status == Status.PENDING.value:
        moved = _move(assignment, Status.PROCESSING, who=who, driver=driver)
        if not moved and assignment.expires_at <= clock.now():
            raise NotFound("no order with this code", code="code_not_found")
    elif assignment.status == Status.ERROR.value:
        # The attempt failed (e.g. driver not in the tracker): typing the code again starts a new attempt.
        moved = _restart(assignment, driver, who=who)
        if not moved and assignment.expires_at <= clock.now():
            raise NotFound("no order with this code", code="code_not_found")
    if not _is_driver(assignment, driver):
        log.event("codedispatch.assign_refused_taken", order_id=assignment.order_id, driver_id=driver.driver_id)
        raise Conflict("another driver has already taken this order", code="order_already_taken")
    if assignment.status == Status.PROCESSING.value:
        _push_processing(assignment)
    return assignment


# --- status -----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StatusView:
    order_id: str
    status: str
    error_code: str | None
    error_message: str | None


def assignment_status(driver: DriverIdentity, order_id: str) -> StatusView:
    """For polling: one GetItem. Only the driver who typed the code sees it (others: 404, nothing leaks).

    Heals a lost processing push: processing, never recorded as sent, older than PROCESSING_RESEND_AFTER
    -> send it now (a failure is logged; the next poll tries again, the poll still answers).
    """
    _require_processing()
    assignment = _live_assignment(order_id)
    if assignment is None or not _is_driver(assignment, driver):
        raise NotFound("no assignment of this order to you", code="assignment_not_found")
    if (assignment.status == Status.PROCESSING.value and assignment.processing_sent_at is None
            and clock.now() - assignment.updated_at >= PROCESSING_RESEND_AFTER):
        log.event("codedispatch.processing_resend", order_id=order_id, attempt=_attempt(assignment))
        try:
            _push_processing(assignment)
        except UpstreamUnavailable:
            pass  # logged in _push_processing; the next poll tries again
    message = None
    if assignment.status == Status.ERROR.value:
        message = ERROR_MESSAGES.get(assignment.error_code or "", UNKNOWN_ERROR_MESSAGE)
    return StatusView(order_id=order_id, status=assignment.status, error_code=assignment.error_code,
                      error_message=message)


# --- drivers-lookup ---------------------------------------------------------------------------------

def _failed(assignment: Assignment) -> NotFound:
    code = assignment.error_code or "assignment_failed"
    return NotFound(f"the order's code dispatch failed: {code}", code=code)


def lookup_driver(order_id: str) -> Assignment:
    """The driver who typed the order's code, acquired in the tracker; the attempt ends assigned or error.

    Acts on the current attempt only: a move is conditional on the attempt it read, and when a move loses
    because a new attempt started meanwhile, the new attempt is handled (its driver acquired) instead.
    """
    _require_processing()
    assignment = _live_assignment(order_id)
    if assignment is None:
        raise NotFound("the order has no code dispatch assignment", code="assignment_not_found")
    for _ in range(3):
        if assignment.status == Status.PENDING.value:
            raise NotFound("no driver has typed the order's code yet", code="driver_not_chosen")
        if assignment.status != Status.PROCESSING.value:
            break
        try:
            upstreams.acquire_driver(order_id, _attempt(assignment), assignment.park_db_id,
                                     assignment.driver_profile_id)
        except upstreams.DriverNotInTracker:
            # UpstreamUnavailable / UpstreamRejected pass through before any write: no state change.
            moved = _move(assignment, Status.ERROR, who="drivers_lookup", error_code=DRIVER_NOT_FOUND_IN_TRACKER)
        else:
            moved = _move(assignment, Status.ASSIGNED, who="drivers_lookup")
        if moved:
            break
        # A concurrent lookup moved it first (assigned | error: answered below), or a new attempt started
        # (processing again, maybe for another driver: acquire that one). `assignment` is what is stored now.
    else:
        raise Conflict("the assignment keeps changing, ask again", code="assignment_changed")
    if assignment.status == Status.ERROR.value:
        raise _failed(assignment)
    return assignment
