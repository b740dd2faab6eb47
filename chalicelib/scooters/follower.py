"""Follow the claims (doc part 2, step 7, and part 3): read cargo's claims journal, react per status.

One runner at a time (lease). The cursor is kept in scooters_journal_cursor and moved only after every event
of its page was handled: a crash mid-page re-reads the page, and the events already handled are skipped by
revision (each task keeps the newest revision it handled; events repeat, at least once). Every reaction is
idempotent towards the upstreams (tag calls by name, bookings by id, accept answering inappropriate_status
when already accepted), so handling an event twice is harmless. Claims not ours (no task has that claim id)
are ignored. An event whose handling keeps failing holds the journal for at most POISON_RUNS runs; then it
is logged CRIT and skipped, so one broken claim cannot stop every other.

Reactions (doc part 3):
    estimating_failed   CRIT; the booking is released and the task planned again after the config-error
                        delay (the doc says only "CRIT": left alone, the battery would stay booked and the
                        scooter out of rent for good)
    failed              unbook, drop the claim id, reschedule, CRIT
    ready_for_approval  accept with the claim's version (claims/info)
    performer_not_found unbook, drop the claim id, reschedule
    performer_found     store the performer, set_contractor on the booking, car/details + servicing/start
    pickuped            at the return point (current_point_id = C, the point the courier heads to): remove
                        battery_low, servicing/finish, remove recharge_processing: rentable again. At B: noted.
                        returning / return_arrived (cargo's name for the walk to a return point): the same.
    delivered           at the return point (or a final status): unset_contractor: the flow is done.
    cancelled*          (not in the doc: a manual cancel) released and planned again, logged as an error
    others              noted (claim_status, current_point_id) for the courier screens
"""
from __future__ import annotations

import dataclasses
import time

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock, metrics
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger

from . import planner, upstreams
from .models import (
    DONE, PERFORMER_FOUND, RENTABLE, RETURN, JournalCursor, RechargeTask, points_of, task_by_claim,
)
from .schemas import JournalEvent

log = get_logger(__name__)

CURSOR_NAME = "claims"
POISON_RUNS = 5
FINAL_STATUSES = ("delivered_finish", "returned", "returned_finish")
# Cargo may report the walk back to the cabinet (point C, of type "return") as returning instead of a second
# pickuped: either way the courier has left the swapped scooter.
LEFT_THE_SCOOTER = ("returning", "return_arrived")
CANCELLED = ("cancelled", "cancelled_with_payment", "cancelled_by_taxi", "cancelled_with_items_on_hands")


@dataclasses.dataclass
class FollowReport:
    pages: int = 0
    events: int = 0
    handled: int = 0
    duplicates: int = 0
    not_ours: int = 0
    failed: int = 0
    poison_skipped: int = 0
    out_of_time: bool = False


# --- cursor ---------------------------------------------------------------------------------------------

def _load_cursor() -> JournalCursor:
    try:
        return JournalCursor.get(CURSOR_NAME, consistent_read=True)
    except JournalCursor.DoesNotExist:
        return JournalCursor(CURSOR_NAME, cursor=None, updated_at=clock.now())


def _save_cursor(item: JournalCursor, cursor: str | None) -> None:
    item.cursor = cursor
    item.blocked_claim_id = item.blocked_revision = item.blocked_runs = None
    item.updated_at = clock.now()
    item.save()


def _note_block(item: JournalCursor, event: JournalEvent) -> int:
    """Count the runs that failed on this very event; returns how many so far."""
    same = item.blocked_claim_id == event.claim_id and item.blocked_revision == event.revision
    item.blocked_claim_id, item.blocked_revision = event.claim_id, event.revision
    item.blocked_runs = (item.blocked_runs or 0) + 1 if same else 1
    item.updated_at = clock.now()
    item.save()
    return item.blocked_runs


# --- one event ------------------------------------------------------------------------------------------

def _record(task: RechargeTask, event: JournalEvent, status: str | None = None, extra: list | None = None) -> bool:
    """Mark the event handled (revision, claim status, current point) when it is still the newest; False when
    a newer one was handled meanwhile or the claim is no longer the task's."""
    actions = [RechargeTask.claim_revision.set(event.revision), RechargeTask.updated_at.set(clock.now())]
    if event.new_status:
        actions.append(RechargeTask.claim_status.set(event.new_status))
    if event.current_point_id is not None:
        actions.append(RechargeTask.current_point_id.set(str(event.current_point_id)))
    if status:
        actions.append(RechargeTask.status.set(status))
    actions += extra or []
    condition = (RechargeTask.claim_id == event.claim_id) & (
        RechargeTask.claim_revision.does_not_exist() | (RechargeTask.claim_revision < event.revision))
    try:
        task.update(actions=actions, condition=condition)
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _contractor_id(task: RechargeTask) -> str:
    return f"{task.performer_park_id}_{task.performer_driver_profile_id}"


def _performer(task: RechargeTask) -> dict:
    return {"park_id": task.performer_park_id, "driver_profile_id": task.performer_driver_profile_id}


def _accept(task: RechargeTask, event: JournalEvent) -> None:
    for _ in range(2):  # a version that moved between info and accept: read it again once
        claim = upstreams.claim_info(event.claim_id)
        if claim.status != "ready_for_approval":
            return  # accepted already (a replay), or moved on
        try:
            upstreams.accept_claim(event.claim_id, claim.version)
            log.event("scooters.claim_accepted", task_id=task.task_id, claim_id=event.claim_id)
            return
        except UpstreamRejected as error:
            if error.upstream_status != 409:
                raise
    raise UpstreamUnavailable("cargo kept answering 409 to accept", code="claim_accept_conflict")


def _performer_found(task: RechargeTask, event: JournalEvent) -> list:
    claim = upstreams.claim_info(event.claim_id)
    performer = claim.performer_info
    if performer is None or not performer.park_id or not performer.driver_profile_id:
        raise UpstreamUnavailable("cargo has no performer on a performer_found claim yet", code="no_performer")
    task.performer_park_id, task.performer_driver_profile_id = performer.park_id, performer.driver_profile_id
    if task.book_id:
        upstreams.set_contractor(task.book_id, _contractor_id(task))
    upstreams.set_tag_details(task.car_id, task.tag_id, {"performer": _performer(task), "claim_id": event.claim_id})
    upstreams.servicing_start(task.car_id, task.tag_id, _performer(task))
    log.event("scooters.performer_found", task_id=task.task_id, claim_id=event.claim_id)
    return [RechargeTask.performer_park_id.set(performer.park_id),
            RechargeTask.performer_driver_profile_id.set(performer.driver_profile_id)]


def _back_in_rent(task: RechargeTask) -> None:
    """The doc's order: battery_low off, servicing/finish, then recharge_processing off (rentable).

    A scooter the courier reported missing or destroyed goes the same way (the doc: "as if the battery were
    swapped"); the report's own tag, set by the courier screens, keeps it out of rent, so it is not counted
    back in rent."""
    from .courier import vehicle_report_of  # the courier screens' record; imported only on this path

    upstreams.remove_tag(task.car_id, upstreams.BATTERY_LOW)
    if not upstreams.servicing_finish(task.car_id, task.tag_id):
        log.warning_event("scooters.servicing_never_started", task_id=task.task_id)
    upstreams.remove_tag(task.car_id, upstreams.RECHARGE_PROCESSING)
    report = vehicle_report_of(task.task_id)
    if report:
        log.event("scooters.scooter_released_reported", task_id=task.task_id, car_id=task.car_id, report=report,
                  metrics=metrics.count("scooters", "ScootersReported"))
        return
    log.event("scooters.scooter_rentable", task_id=task.task_id, car_id=task.car_id,
              metrics=metrics.count("scooters", "ScootersBackInRent"))


def _at_return_point(task: RechargeTask, event: JournalEvent) -> bool:
    return_id = points_of(task).get(RETURN)
    return event.current_point_id is not None and str(event.current_point_id) == return_id


def _drop(task: RechargeTask, event: JournalEvent, reason: str) -> str:
    planner.reschedule(task, reason, release=True, expect_claim=event.claim_id)
    return reason


def handle_event(event: JournalEvent) -> str:
    """React to one journal event; returns what happened. Raises when an upstream fails (the page stops)."""
    if event.change_type not in (None, "status_changed") or not event.new_status:
        return "not_a_status"
    task = task_by_claim(event.claim_id)
    if task is None:
        return "not_ours"
    if task.claim_revision is not None and task.claim_revision >= event.revision:
        return "duplicate"
    status = event.new_status
    if status == "estimating_failed":
        planner.crit("scooters.claim_estimating_failed", task_id=task.task_id, claim_id=event.claim_id)
        return _drop(task, event, "config_error")
    if status == "failed":
        planner.crit("scooters.claim_failed", task_id=task.task_id, claim_id=event.claim_id)
        return _drop(task, event, "claim_failed")
    if status == "performer_not_found":
        log.event("scooters.performer_not_found", task_id=task.task_id, claim_id=event.claim_id)
        return _drop(task, event, "performer_not_found")
    if status in CANCELLED:
        log.error_event("scooters.claim_cancelled", task_id=task.task_id, claim_id=event.claim_id, status=status)
        return _drop(task, event, "claim_failed")
    new_status, extra = None, []
    if status == "ready_for_approval":
        _accept(task, event)
    elif status == "performer_found":
        extra = _performer_found(task, event)
        new_status = PERFORMER_FOUND
    elif (status == "pickuped" and _at_return_point(task, event)) or status in LEFT_THE_SCOOTER:
        if task.status not in (RENTABLE, DONE):
            _back_in_rent(task)
        new_status = RENTABLE
    elif status in FINAL_STATUSES or (status == "delivered" and _at_return_point(task, event)) or (
            status == "delivered" and event.current_point_id is None):
        if task.status not in (RENTABLE, DONE):
            _back_in_rent(task)  # the second pickuped never came (or came unreadable): do it now
        if task.book_id:
            upstreams.unset_contractor(task.book_id)
        new_status = DONE
        log.event("scooters.recharge_done", task_id=task.task_id, claim_id=event.claim_id,
                  metrics=metrics.count("scooters", "RechargesDone"))
    if not _record(task, event, new_status, extra):
        return "duplicate"
    return status


# --- the job --------------------------------------------------------------------------------------------

def follow_claims(deadline: float | None = None, page_limit: int = 50) -> FollowReport:
    report = FollowReport()
    item = _load_cursor()
    for _ in range(page_limit):
        if deadline is not None and time.monotonic() > deadline:
            report.out_of_time = True
            break
        try:
            page = upstreams.journal(item.cursor)
        except (UpstreamUnavailable, UpstreamRejected) as error:
            log.error_event("scooters.journal_failed", error=describe(error))
            report.failed += 1
            break
        report.pages += 1
        report.events += len(page.events)
        stopped = False
        for event in page.events:
            try:
                outcome = handle_event(event)
            except Exception as error:
                report.failed += 1
                runs = _note_block(item, event)
                if runs < POISON_RUNS:
                    log.error_event("scooters.event_failed", claim_id=event.claim_id, revision=event.revision,
                                    runs=runs, error=describe(error))
                    stopped = True
                    break
                planner.crit("scooters.event_skipped", claim_id=event.claim_id, revision=event.revision,
                             runs=runs, error=describe(error))
                report.poison_skipped += 1
                continue
            if outcome == "not_ours":
                report.not_ours += 1
            elif outcome == "duplicate":
                report.duplicates += 1
            else:
                report.handled += 1
        if stopped:
            break
        if page.cursor is not None and (page.cursor != item.cursor or item.blocked_runs):
            _save_cursor(item, page.cursor)
        if not page.events:
            break
    log.event("scooters.follow_claims", **dataclasses.asdict(report), metrics=metrics.counts(
        "scooters", {"JournalEvents": report.events, "JournalEventsHandled": report.handled,
                     "JournalEventsDuplicate": report.duplicates, "JournalEventsNotOurs": report.not_ours,
                     "JournalEventsFailed": report.failed, "JournalEventsSkipped": report.poison_skipped}))
    return report
