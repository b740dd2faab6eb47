"""Status events (queue deptrans_contractor_status_events) -> the driver's item in deptrans_status_queue.

One batch of up to 10 events becomes at most one write per driver: events of the same driver inside the batch
are reduced to the newest first (the older ones could only lose against it). Each write is ONE conditional
UpdateItem without a read: it applies only when the event is newer than the stored `version`, so an older
event never overwrites a newer one and a replay changes nothing (its condition fails: that is success).
Applying (re)queues the driver: `pending_shard`/`pending_key` put the item in the sparse `pending` index.

Versions: "<event time, fixed-width UTC>#<status>". Two events of one driver with the same time are ordered by
the status name, an arbitrary but fixed rule: every replica and every replay agrees on the winner.
"""
from __future__ import annotations

import datetime as dt
import enum

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock, metrics
from chalicelib.core.dynamo import update_if
from chalicelib.core.errors import describe
from chalicelib.core.logs import get_logger

from .models import PENDING_SHARDS, StatusQueueEntry, driver_key, shard_of
from .schemas import StatusEvent

log = get_logger(__name__)

# A driver with no event for this long is forgotten (the doc keeps a day; the margin keeps "what KRT was
# last told" across quiet days, so a late "off line" still goes to a driver KRT saw on line).
ENTRY_LIFE = dt.timedelta(days=14)
# An event dated further ahead than this would outrank every real event of the driver until its time came:
# it fails (and ends in the DLQ, for a person to look at) instead of freezing the driver's status.
MAX_AHEAD = dt.timedelta(minutes=5)


class Outcome(str, enum.Enum):
    APPLIED = "applied"
    STALE = "stale"  # older than (or the same as) what is stored: nothing changed
    FAILED = "failed"


def version_of(event: StatusEvent) -> str:
    return f"{clock.utc_text(event.updated_at)}#{event.status.value}"


def apply_events(events: list[StatusEvent]) -> list[Outcome]:
    """Apply a batch; returns one outcome per event, in order."""
    newest: dict[str, int] = {}
    for index, event in enumerate(events):
        key = driver_key(event.park_id, event.driver_id)
        if key not in newest or version_of(event) > version_of(events[newest[key]]):
            newest[key] = index
    outcomes = [Outcome.STALE] * len(events)
    for key, index in newest.items():
        outcome = _apply(key, events[index])
        # The batch-mates it beat share its fate: a failed write must retry them too (SQS redelivers them).
        for other, event in enumerate(events):
            if driver_key(event.park_id, event.driver_id) == key:
                outcomes[other] = outcome if other == index or outcome is Outcome.FAILED else Outcome.STALE
    applied = sum(o is Outcome.APPLIED for o in outcomes)
    stale, failed = sum(o is Outcome.STALE for o in outcomes), sum(o is Outcome.FAILED for o in outcomes)
    log.event("deptrans.status_events", events=len(events), applied=applied, writes=len(newest), stale=stale,
              failed=failed, metrics=metrics.counts("deptrans", {
                  "StatusEventsApplied": applied, "StatusEventsStale": stale, "StatusEventsFailed": failed}))
    return outcomes


def _apply(key: str, event: StatusEvent) -> Outcome:
    if event.updated_at > clock.now() + MAX_AHEAD:
        log.error_event("deptrans.status_event_from_the_future", park_id=event.park_id, driver_id=event.driver_id)
        return Outcome.FAILED
    version = version_of(event)
    actions = [
        StatusQueueEntry.park_id.set(event.park_id), StatusQueueEntry.driver_id.set(event.driver_id),
        StatusQueueEntry.status.set(event.status.value), StatusQueueEntry.version.set(version),
        StatusQueueEntry.event_at.set(event.updated_at),
        StatusQueueEntry.pending_shard.set(shard_of(key, PENDING_SHARDS)), StatusQueueEntry.pending_key.set(version),
        StatusQueueEntry.expires_at.set(event.updated_at + ENTRY_LIFE),
    ]
    try:
        applied = update_if(StatusQueueEntry(driver_key=key), actions,
                            StatusQueueEntry.version.does_not_exist() | (StatusQueueEntry.version < version))
    except UpdateError as error:
        log.error_event("deptrans.status_event_failed", park_id=event.park_id, driver_id=event.driver_id,
                        error=describe(error))
        return Outcome.FAILED
    return Outcome.APPLIED if applied else Outcome.STALE
