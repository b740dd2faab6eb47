"""The assignment record: live reads and the conditional moves of its status (each topic module has its rules).

Every move is one conditional UpdateItem that also appends to the change log; statuses only move forward
within an attempt (schemas.TRANSITIONS) and every move is conditional on the attempt it read.

Expiry: the code can be typed until `code_expires_at`; the record lives as long as its status needs. Each
move sets `expires_at` to max(what it was, the code's expiry, now + KEEP_AFTER_MOVE[new status]) in the
same write. A move that starts an attempt (pending -> processing, or a restart after error) is conditional
on the code not having expired, so a code typed in its last second either gets its whole processing (the
record and the code's guard then outlive it) or CodeExpired (410) with nothing changed: the guard is
extended first (conditional on still being this order's live guard), then the record; the caller tells
an expired code (still pending / error after a refused move) from a lost race (moved by someone else).
"""
from __future__ import annotations

import datetime as dt
import uuid

from pynamodb.exceptions import DoesNotExist

from chalicelib.core import clock
from chalicelib.core.dynamo import update_if
from chalicelib.core.errors import AppError, NotFound
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import get_live

from .models import AreaCode, Assignment, Change, area_code_key
from .schemas import KEEP_AFTER_MOVE, TRANSITIONS, AssignmentStatus

log = get_logger(__name__)

Status = AssignmentStatus


class CodeExpired(AppError):
    """The order's code was typed (or asked for) after its expiry, while the order is still on record (410).
    """

    status = 410
    code = "code_expired"


def new_acquire_token() -> str:
    """The tracker acquire's idempotency token of a new attempt: random, never derived from the order."""
    return str(uuid.uuid4())


# --- drivers and attempts ---------------------------------------------------------------------------

def is_driver(assignment: Assignment, driver: DriverIdentity) -> bool:
    """Park and profile compared apart: the joined driver_id of two different drivers can be equal."""
    return (assignment.park_db_id, assignment.driver_profile_id) == (driver.park_id, driver.driver_profile_id)


def attempt_of(assignment: Assignment) -> int:
    return int(assignment.attempt or 1)


def same_attempt(assignment: Assignment):
    """Condition: the stored item is still in the attempt `assignment` was read in."""
    if assignment.attempt is None:  # written before attempts were recorded: its first attempt
        return Assignment.attempt.does_not_exist()
    return Assignment.attempt == assignment.attempt


# --- expiry -----------------------------------------------------------------------------------------

def code_expires_at(assignment: Assignment) -> dt.datetime:
    """Until when the order's code can be typed (items written before it was recorded: their expiry)."""
    return assignment.code_expires_at or assignment.expires_at


def code_is_live(assignment: Assignment) -> bool:
    return code_expires_at(assignment) > clock.now()


def _code_live_condition(now: dt.datetime):
    return (Assignment.code_expires_at > now) | (
        Assignment.code_expires_at.does_not_exist() & (Assignment.expires_at > now))


def _kept_until(assignment: Assignment, to: Status, now: dt.datetime) -> dt.datetime:
    """The record's new expiry after a move into `to`: never shorter than before or than its code's."""
    return max(assignment.expires_at, code_expires_at(assignment), now + dt.timedelta(seconds=KEEP_AFTER_MOVE[to]))


def _hold_code(assignment: Assignment, now: dt.datetime) -> bool:
    """Keep the code's guard while the attempt starting now may be processing (and at least as long as the
    code lives), so no other order of the area can take the code meanwhile; not for the change log's day,
    which needs the record only. Conditional on the guard still being this order's and live: False when it
    is not (the code expired, maybe went to another order); nothing was written then."""
    until = max(code_expires_at(assignment), now + dt.timedelta(seconds=KEEP_AFTER_MOVE[Status.PROCESSING]))
    guard = AreaCode(area_code=area_code_key(assignment.area_id, assignment.code))
    return update_if(guard, [AreaCode.expires_at.set(until)],
                     (AreaCode.order_id == assignment.order_id) & (AreaCode.expires_at > now))


# --- reads ------------------------------------------------------------------------------------------

def live_assignment(order_id: str) -> Assignment | None:
    """The order's assignment unless absent or expired (TTL deletes late). Strongly consistent: one GetItem."""
    return get_live(Assignment, order_id, consistent_read=True)


def live_code(area_id: str, code: str) -> AreaCode | None:
    return get_live(AreaCode, area_code_key(area_id, code), consistent_read=True)


# --- transitions ------------------------------------------------------------------------------------

def move(assignment: Assignment, to: Status, who: str, *, error_code: str | None = None,
         driver: DriverIdentity | None = None) -> bool:
    """Move the assignment one step forward, conditional on its current status, attempt (and driver).

    True when this call moved it; False when the condition failed (someone moved it first, a new attempt
    started, or the code expired), after which `assignment` holds what is stored now. A move to processing
    also claims the attempt's processing push for this call (processing.push_processing); it first holds
    the code's guard, and writes nothing (False) when the guard is no longer this order's live one.
    """
    current = Status(assignment.status)
    if to not in TRANSITIONS[current]:
        raise ValueError(f"assignment cannot move from {current.value} to {to.value}")
    now = clock.now()
    keep = _kept_until(assignment, to, now)
    actions = [
        Assignment.status.set(to.value),
        Assignment.updated_at.set(now),
        Assignment.expires_at.set(keep),
        Assignment.changes.set(Assignment.changes.append([Change(
            at=now, who=who, from_status=current.value, to_status=to.value, error_code=error_code,
            attempt=attempt_of(assignment))])),
    ]
    condition = (Assignment.status == current.value) & same_attempt(assignment)
    if driver is not None:
        actions += [Assignment.driver_id.set(driver.driver_id), Assignment.park_db_id.set(driver.park_id),
                    Assignment.driver_profile_id.set(driver.driver_profile_id)]
        condition &= Assignment.driver_profile_id.does_not_exist() & _code_live_condition(now)
    else:
        condition &= (Assignment.park_db_id == assignment.park_db_id) & (
            Assignment.driver_profile_id == assignment.driver_profile_id)
    gone = NotFound("the order has no code dispatch assignment", code="assignment_not_found")
    if to is Status.PROCESSING:
        actions.append(Assignment.processing_claimed_at.set(now))
        if not _hold_code(assignment, now):
            _reread(assignment, gone)
            return False
    if error_code is not None:
        actions.append(Assignment.error_code.set(error_code))
    if not update_or_reread(assignment, actions, condition, gone):
        return False
    log.event("codedispatch.assignment_moved", order_id=assignment.order_id, from_status=current.value,
              to_status=to.value, who=who, error_code=error_code, attempt=attempt_of(assignment))
    return True


def _reread(assignment: Assignment, gone: NotFound) -> None:
    """Refresh `assignment` after a write lost; `gone` if TTL swept it meanwhile."""
    try:
        assignment.refresh(consistent_read=True)
    except DoesNotExist:
        raise gone from None


def update_or_reread(assignment: Assignment, actions: list, condition, gone: NotFound) -> bool:
    """Apply a conditional update. When its condition fails (a racing writer won), re-read the assignment so
    the caller sees what won, and return False; `gone` is raised if TTL swept the item meanwhile."""
    if update_if(assignment, actions, condition):
        return True
    _reread(assignment, gone)
    return False


def restart(assignment: Assignment, driver: DriverIdentity, who: str) -> bool:
    """The attempt ended in error and a driver typed the code: open attempt + 1, pending -> processing.

    Not a backward move: the errored attempt stays in the log as it ended; the new one starts from
    pending like the first, with a new acquire token. Conditional on (error, same attempt, code not expired):
    of racing drivers one wins. Same return contract as move (and, like it, claims the new attempt's
    processing push and holds the code).
    """
    if assignment.status != Status.ERROR.value:
        raise ValueError("only an attempt that ended in error is followed by a new one")
    now, attempt = clock.now(), attempt_of(assignment) + 1
    keep = _kept_until(assignment, Status.PROCESSING, now)
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
        Assignment.processing_claimed_at.set(now),
        Assignment.acquire_token.set(new_acquire_token()),
        Assignment.updated_at.set(now),
        Assignment.expires_at.set(keep),
        Assignment.changes.set(Assignment.changes.append(new_attempt)),
    ]
    condition = (Assignment.status == Status.ERROR.value) & same_attempt(assignment) & _code_live_condition(now)
    gone = NotFound("no order with this code", code="code_not_found")
    if not _hold_code(assignment, now):
        _reread(assignment, gone)
        return False
    if not update_or_reread(assignment, actions, condition, gone):
        return False
    log.event("codedispatch.attempt_started", order_id=assignment.order_id, attempt=attempt, who=who,
              after_error=assignment.changes[-3].error_code if len(assignment.changes) >= 3 else None)
    return True


def acquire_token(assignment: Assignment) -> str | None:
    """The current attempt's acquire token. An item written before tokens were stored gets one now (only if
    it has none and is still in this attempt); None when that write lost: `assignment` was re-read, ask again.
    """
    if assignment.acquire_token:
        return assignment.acquire_token
    token = new_acquire_token()
    if not update_or_reread(assignment, [Assignment.acquire_token.set(token)],
                            Assignment.acquire_token.does_not_exist() & same_attempt(assignment),
                            NotFound("the order has no code dispatch assignment", code="assignment_not_found")):
        return None
    return token
