"""The assignment record: live reads and the conditional moves of its status (service.py has the rules).

Every move is one conditional UpdateItem that also appends to the change log; statuses only move forward
within an attempt (schemas.TRANSITIONS) and every move is conditional on the attempt it read.
"""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import clock
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import NotFound
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import is_live

from .models import AreaCode, Assignment, Change, area_code_key
from .schemas import TRANSITIONS, AssignmentStatus

log = get_logger(__name__)

Status = AssignmentStatus


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


# --- reads ------------------------------------------------------------------------------------------

def live_assignment(order_id: str) -> Assignment | None:
    """The order's assignment unless absent or expired (TTL deletes late). Strongly consistent: one GetItem."""
    try:
        assignment = Assignment.get(order_id, consistent_read=True)
    except DoesNotExist:
        return None
    return assignment if is_live(assignment.expires_at) else None


def live_code(area_id: str, code: str) -> AreaCode | None:
    try:
        item = AreaCode.get(area_code_key(area_id, code), consistent_read=True)
    except DoesNotExist:
        return None
    return item if is_live(item.expires_at) else None


# --- transitions ------------------------------------------------------------------------------------

def move(assignment: Assignment, to: Status, who: str, *, error_code: str | None = None,
         driver: DriverIdentity | None = None) -> bool:
    """Move the assignment one step forward, conditional on its current status, attempt (and driver).

    True when this call moved it; False when the condition failed (someone moved it first, or a new
    attempt started), after which `assignment` holds what is stored now. A move to processing also claims
    the attempt's processing push for this call (processing.push_processing).
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
            attempt=attempt_of(assignment))])),
    ]
    condition = (Assignment.status == current.value) & same_attempt(assignment)
    if driver is not None:
        actions += [Assignment.driver_id.set(driver.driver_id), Assignment.park_db_id.set(driver.park_id),
                    Assignment.driver_profile_id.set(driver.driver_profile_id)]
        condition &= Assignment.driver_profile_id.does_not_exist() & (Assignment.expires_at > now)
    else:
        condition &= (Assignment.park_db_id == assignment.park_db_id) & (
            Assignment.driver_profile_id == assignment.driver_profile_id)
    if to is Status.PROCESSING:
        actions.append(Assignment.processing_claimed_at.set(now))
    if error_code is not None:
        actions.append(Assignment.error_code.set(error_code))
    if not update_or_reread(assignment, actions, condition,
                            NotFound("the order has no code dispatch assignment", code="assignment_not_found")):
        return False
    log.event("codedispatch.assignment_moved", order_id=assignment.order_id, from_status=current.value,
              to_status=to.value, who=who, error_code=error_code, attempt=attempt_of(assignment))
    return True


def update_or_reread(assignment: Assignment, actions: list, condition, gone: NotFound) -> bool:
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


def restart(assignment: Assignment, driver: DriverIdentity, who: str) -> bool:
    """The attempt ended in error and a driver typed the code: open attempt + 1, pending -> processing.

    Not a backward move: the errored attempt stays in the log as it ended; the new one starts from
    pending like the first. Conditional on (error, same attempt, not expired): of racing drivers one wins.
    Same return contract as move (and, like it, claims the new attempt's processing push).
    """
    if assignment.status != Status.ERROR.value:
        raise ValueError("only an attempt that ended in error is followed by a new one")
    now, attempt = clock.now(), attempt_of(assignment) + 1
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
        Assignment.updated_at.set(now),
        Assignment.changes.set(Assignment.changes.append(new_attempt)),
    ]
    condition = (Assignment.status == Status.ERROR.value) & same_attempt(assignment) & (Assignment.expires_at > now)
    if not update_or_reread(assignment, actions, condition, NotFound("no order with this code", code="code_not_found")):
        return False
    log.event("codedispatch.attempt_started", order_id=assignment.order_id, attempt=attempt, who=who,
              after_error=assignment.changes[-3].error_code if len(assignment.changes) >= 3 else None)
    return True
