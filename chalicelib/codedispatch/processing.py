"""The processing push (queue codedispatch_order_processing) and the driver's status polls that heal it.

One push per attempt: the write that makes an attempt processing (store.move / store.restart) also claims
its push (`processing_claimed_at`); a later call (the same driver tapping assign again, a status poll) may
send only when the attempt is not recorded as sent and nobody holds a fresh claim, and takes the claim with
a conditional write first, so of concurrent callers at most one sends. A failed send gives the claim back
(the driver's retry sends at once); a claim whose holder died goes stale after PROCESSING_RESEND_AFTER.
After a successful send the attempt records `processing_sent_at` and nothing sends it again.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import UpdateError

from chalicelib.core import clock, queues
from chalicelib.core.dynamo import update_if
from chalicelib.core.errors import NotFound, UpstreamUnavailable, describe
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger

from . import store, switches
from .models import Assignment
from .schemas import ERROR_MESSAGES, UNKNOWN_ERROR_MESSAGE, OrderProcessingMessage
from .store import Status

log = get_logger(__name__)

ORDER_PROCESSING_QUEUE = queues.declare("codedispatch_order_processing")

# A status poll re-sends a processing push that was never recorded as sent once the attempt is this old,
# and a claim this old is taken over (younger: the claimant's send may still be in flight).
PROCESSING_RESEND_AFTER = dt.timedelta(seconds=5)


def _claim(assignment: Assignment) -> bool:
    """Take the attempt's push for this call; False when it was sent or someone else is sending it."""
    if assignment.processing_sent_at is not None:
        return False
    now = clock.now()
    free = Assignment.processing_claimed_at.does_not_exist() | (
        Assignment.processing_claimed_at <= now - PROCESSING_RESEND_AFTER)
    return update_if(assignment, [Assignment.processing_claimed_at.set(now)],
                     (Assignment.status == Status.PROCESSING.value) & store.same_attempt(assignment)
                     & Assignment.processing_sent_at.does_not_exist() & free)


def _give_back_claim(assignment: Assignment) -> None:
    # Not given back (moved on meanwhile, or a failed write): the claim goes stale after PROCESSING_RESEND_AFTER.
    try:
        update_if(assignment, [Assignment.processing_claimed_at.remove()],
                  store.same_attempt(assignment) & (Assignment.processing_claimed_at == assignment.processing_claimed_at))
    except UpdateError as error:
        log.warning_event("codedispatch.processing_claim_kept", order_id=assignment.order_id, error=describe(error))


def push_processing(assignment: Assignment, *, claimed: bool) -> bool:
    """Send the attempt's processing message unless it was sent (or is being sent); True when this call sent.
    `claimed`: this call's own move made the attempt processing (and so holds the claim)."""
    if not claimed and not _claim(assignment):
        return False
    message = OrderProcessingMessage(
        order_id=assignment.order_id, area_id=assignment.area_id, driver_id=assignment.driver_id,
        park_db_id=assignment.park_db_id, driver_profile_id=assignment.driver_profile_id,
        attempt=store.attempt_of(assignment),
    )
    try:
        queues.send(ORDER_PROCESSING_QUEUE, message)
    except (BotoCoreError, ClientError) as error:
        # The assignment stays processing for this driver, unsent: the driver's retry or status poll sends.
        log.error_event("codedispatch.processing_push_failed", order_id=assignment.order_id, error=describe(error))
        _give_back_claim(assignment)
        raise UpstreamUnavailable("order processing could not be started, try again",
                                  code="processing_unavailable") from None
    now = clock.now()
    # Moved on meanwhile (nothing to record), or a failed write: the message is out either way; at worst a later
    # call sends it once more after the claim went stale (SQS is at-least-once anyway).
    try:
        update_if(assignment, [Assignment.processing_sent_at.set(now)],
                  (Assignment.status == Status.PROCESSING.value) & store.same_attempt(assignment))
    except UpdateError as error:
        log.warning_event("codedispatch.processing_sent_not_recorded", order_id=assignment.order_id,
                          error=describe(error))
    return True


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
    switches.require_processing()
    assignment = store.live_assignment(order_id)
    if assignment is None or not store.is_driver(assignment, driver):
        raise NotFound("no assignment of this order to you", code="assignment_not_found")
    # The experiment is evaluated for the order's area and this driver, so the order is read first.
    switches.require_feature(area_id=assignment.area_id, park_id=driver.park_id,
                             driver_profile_id=driver.driver_profile_id)
    if (assignment.status == Status.PROCESSING.value and assignment.processing_sent_at is None
            and clock.now() - assignment.updated_at >= PROCESSING_RESEND_AFTER):
        try:
            if push_processing(assignment, claimed=False):
                log.event("codedispatch.processing_resent", order_id=order_id, attempt=store.attempt_of(assignment))
        except UpstreamUnavailable:
            pass  # logged in push_processing; the next poll tries again
    message = None
    if assignment.status == Status.ERROR.value:
        message = ERROR_MESSAGES.get(assignment.error_code or "", UNKNOWN_ERROR_MESSAGE)
    return StatusView(order_id=order_id, status=assignment.status, error_code=assignment.error_code,
                      error_message=message)
