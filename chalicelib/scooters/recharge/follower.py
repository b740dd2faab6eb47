"""Follow the claims (doc part 2, step 7): read cargo's claims journal from the stored cursor, apply each event.

One runner at a time (lease). The cursor is kept in scooters_journal_cursor and moved only after every event
of its page was handled: a crash mid-page re-reads the page, and the events already applied are skipped by
revision (events repeat: at least once). Each event goes through reactions.apply (the lifecycle decides).

Failures:
- transient (an upstream down, timing out, 5xx or 429; DynamoDB throttled; a task other writers kept moving;
  an event of a claim of ours not stored yet): the run stops there WITHOUT counting; the next run starts again
  from the same event. Five minutes of a cargo outage never skip anything.
- deterministic (the event itself cannot be handled, e.g. a bug or an answer that cannot be read): counted per
  event; after POISON_RUNS runs in a row it is logged CRIT and skipped, so one broken claim cannot stop every
  other. A skipped event is healed by the reconciler (reconciler.py), which applies what claims/info says.

Claims not ours (no task has that claim id) are told apart by claims/info: a claim whose item (extra_id) or
point B (external_order_id) names one of our tasks is ours. If that task is creating its claim right now
(booking/booked, moved in the last PENDING_CLAIM_SECONDS), the claim id is simply not stored yet: the event is
retried (a transient stop), not dropped: its ready_for_approval must be accepted within 10 minutes. Otherwise
it is an orphan of an ended attempt: claims.py adopts or cancels it at the next attempt.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time

from pynamodb.exceptions import PynamoDBConnectionError

from chalicelib.core import clock, metrics
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import get_live

from . import reactions, upstreams
from .attempts import crit
from .claims import task_id_of_claim
from .lifecycle import BOOKED, BOOKING
from .models import JournalCursor, RechargeTask, get_task, task_by_claim
from .schemas import JournalEvent

log = get_logger(__name__)

CURSOR_NAME = "claims"
POISON_RUNS = 5
PENDING_CLAIM_SECONDS = 120
FOREIGN_CLAIMS_KEPT = 10_000
# DynamoDB answers worth waiting out (None: no answer at all, a connection error): the event itself is fine.
TRANSIENT_DYNAMODB = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                                "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
                                "TransactionConflictException", None})
_foreign: set[str] = set()  # claim ids claims/info showed are not ours (per process: a cold start asks again)


class ClaimNotStoredYet(Exception):
    """An event of our claim whose id the planner has not stored yet (a transient stop)."""


@dataclasses.dataclass
class FollowReport:
    pages: int = 0
    events: int = 0
    handled: int = 0
    duplicates: int = 0
    not_ours: int = 0
    orphans: int = 0
    failed: int = 0
    transient: int = 0
    poison_skipped: int = 0
    out_of_time: bool = False


def dynamodb_down(error: BaseException) -> bool:
    return isinstance(error, PynamoDBConnectionError) and error.cause_response_code in TRANSIENT_DYNAMODB


def is_transient(error: BaseException) -> bool:
    """Would the same event succeed later without a fix? (an upstream or DynamoDB failing, a race)"""
    return isinstance(error, (UpstreamUnavailable, ClaimNotStoredYet, reactions.RaceLost)) or dynamodb_down(error)


# --- cursor ---------------------------------------------------------------------------------------------

def _load_cursor() -> JournalCursor:
    return (get_live(JournalCursor, CURSOR_NAME, consistent_read=True)
            or JournalCursor(CURSOR_NAME, cursor=None, updated_at=clock.now()))


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

def _task_of_unknown_claim(event: JournalEvent) -> RechargeTask | str:
    """The task of a claim the claim index does not know, or why there is none ("not_ours", "orphan")."""
    if event.claim_id in _foreign:
        return "not_ours"
    claim = upstreams.claim_info(event.claim_id)
    task_id = task_id_of_claim(claim)
    task = get_task(task_id) if task_id else None
    if task is None:
        if len(_foreign) >= FOREIGN_CLAIMS_KEPT:
            _foreign.clear()
        _foreign.add(event.claim_id)
        return "not_ours"
    if task.claim_id == event.claim_id:
        return task  # stored meanwhile (the index is eventually consistent)
    if task.status in (BOOKING, BOOKED) and clock.now() - task.updated_at < dt.timedelta(seconds=PENDING_CLAIM_SECONDS):
        raise ClaimNotStoredYet(f"task {task.task_id} is storing its claim")
    log.event("scooters.orphan_claim_event", task_id=task.task_id, claim_id=event.claim_id, status=event.new_status)
    return "orphan"


def handle_event(event: JournalEvent) -> str:
    """Apply one journal event; returns what happened. Raises when it cannot be handled now (see the docstring)."""
    if event.change_type not in (None, "status_changed") or not event.new_status:
        return "not_a_status"
    task = task_by_claim(event.claim_id)
    if task is None:
        found = _task_of_unknown_claim(event)
        if isinstance(found, str):
            return found
        task = found
    outcome = reactions.apply(task, event)
    return "duplicate" if outcome in ("duplicate", "ignored", "not_current") else outcome


# --- the job --------------------------------------------------------------------------------------------

def _handle_page(page, item: JournalCursor, report: FollowReport) -> bool:
    """Handle a page's events in order; False when the run must stop before its end."""
    for event in page.events:
        try:
            outcome = handle_event(event)
        except Exception as error:
            report.failed += 1
            if is_transient(error):
                report.transient += 1
                log.warning_event("scooters.event_deferred", claim_id=event.claim_id, revision=event.revision,
                                  error=describe(error))
                return False
            runs = _note_block(item, event)
            if runs < POISON_RUNS:
                log.error_event("scooters.event_failed", claim_id=event.claim_id, revision=event.revision,
                                runs=runs, error=describe(error))
                return False
            crit("scooters.event_skipped", claim_id=event.claim_id, revision=event.revision, runs=runs,
                 error=describe(error))
            report.poison_skipped += 1
            continue
        if outcome == "not_ours":
            report.not_ours += 1
        elif outcome == "orphan":
            report.orphans += 1
        elif outcome in ("duplicate", "not_a_status"):
            report.duplicates += 1
        else:
            report.handled += 1
    return True


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
        if not _handle_page(page, item, report):
            break
        if page.cursor is not None and (page.cursor != item.cursor or item.blocked_runs):
            _save_cursor(item, page.cursor)
        if not page.events:
            break
    log.event("scooters.follow_claims", **dataclasses.asdict(report), metrics=metrics.counts(
        "scooters", {"JournalEvents": report.events, "JournalEventsHandled": report.handled,
                     "JournalEventsDuplicate": report.duplicates, "JournalEventsNotOurs": report.not_ours,
                     "JournalEventsFailed": report.failed, "JournalEventsDeferred": report.transient,
                     "JournalEventsSkipped": report.poison_skipped}))
    return report
