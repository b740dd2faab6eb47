"""Reconcile the claims with cargo's truth (ScootersReconcileClaims, every 5 minutes, one runner).

The journal may lose an event, repeat it, or have one skipped as poison; nothing else would compare a task with
its claim. So: every task whose claim is open and whose state nobody confirmed for `stale_after_seconds` (an
applied event or an earlier look of this job: `claim_seen_at`) is asked for with claims/info, and what the claim
says is applied exactly as if its events had come (reactions.apply: the follower's own path; a state already
applied is a duplicate and only marks the claim seen).

Found without a Scan: the sparse GSI `live_claim-index` holds the open claims only, sorted by `claim_seen_at`, so
one Query reads the stale ones, oldest first. Bounded per run: at most `max_claims_per_run`, `concurrency`
claims/info calls at once, and a deadline (the rest are the oldest of the next run). A quiet open claim costs one
claims/info per stale period; a claim whose events arrive costs nothing.

Failures: cargo down (UpstreamUnavailable) stops the run (the next one retries); a claim that cannot be read or
applied (a definite 4xx, a bug) is logged and marked seen, so it is looked at again a period later, not every run.
"""
from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

from chalicelib.core import clock, http, metrics
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import epoch, is_live

from . import lifecycle, reactions, upstreams
from .follower import dynamodb_down
from .models import LIVE, RechargeTask
from .schemas import RECONCILE, Claim

log = get_logger(__name__)


@dataclasses.dataclass
class ReconcileReport:
    stale: int = 0
    asked: int = 0
    applied: int = 0
    unchanged: int = 0
    failed: int = 0
    out_of_time: bool = False


def stale_tasks(limit: int, stale_after: int, now) -> list[RechargeTask]:
    """Open claims not confirmed since `stale_after` seconds, oldest first (one Query of the sparse index)."""
    seen_before = epoch(now) - stale_after
    found = RechargeTask.by_live_claim.query(LIVE, RechargeTask.claim_seen_at <= seen_before, limit=limit)
    return [task for task in found if is_live(task.expires_at) and task.status in lifecycle.CLAIM_OPEN]


def _seen(task: RechargeTask, seen_at: int) -> None:
    """Mark the claim confirmed at the run's start (the next look is a whole period later)."""
    lifecycle.touch(task, [RechargeTask.claim_seen_at.set(seen_at)], RechargeTask.claim_id == task.claim_id)


def _fetch(task: RechargeTask) -> Claim | BaseException:
    try:
        return upstreams.claim_info(task.claim_id)
    except Exception as error:  # noqa: BLE001 - handed back to the runner, which tells transient from not
        return error


def reconcile_claims(deadline: float | None = None) -> ReconcileReport:
    settings = RECONCILE.get()
    now = clock.now()
    report = ReconcileReport()
    tasks = stale_tasks(settings.max_claims_per_run, settings.stale_after_seconds, now)
    report.stale = len(tasks)
    http.keep_connections(upstreams.CARGO, settings.concurrency)
    stopped = False
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="claims-info") as pool:
        for start in range(0, len(tasks), settings.concurrency):
            if deadline is not None and time.monotonic() > deadline:
                report.out_of_time = True
                break
            chunk = tasks[start:start + settings.concurrency]
            for task, answer in zip(chunk, pool.map(_fetch, chunk)):
                report.asked += 1
                if not _reconcile_one(task, answer, epoch(now), report):
                    stopped = True
                    break
            if stopped:
                break
    log.event("scooters.reconcile_claims", **dataclasses.asdict(report), metrics=metrics.counts(
        "scooters", {"ClaimsReconciled": report.asked, "ClaimsHealed": report.applied,
                     "ClaimsReconcileFailed": report.failed}))
    return report


def _reconcile_one(task: RechargeTask, answer: Claim | BaseException, seen_at: int, report: ReconcileReport) -> bool:
    """Apply one claim's truth; False when the run must stop (cargo down)."""
    try:
        if isinstance(answer, BaseException):
            raise answer
        outcome = reactions.apply(task, reactions.state_of(answer), claim=answer)
    except Exception as error:  # noqa: BLE001 - one claim's failure never stops the others
        report.failed += 1
        if isinstance(error, UpstreamUnavailable) or dynamodb_down(error):
            log.warning_event("scooters.reconcile_stopped", task_id=task.task_id, claim_id=task.claim_id,
                              error=describe(error))
            return False
        level = "scooters.reconcile_claim_unreadable" if isinstance(error, UpstreamRejected) else \
            "scooters.reconcile_claim_failed"
        log.error_event(level, task_id=task.task_id, claim_id=task.claim_id, error=describe(error))
        _seen(task, seen_at)
        return True
    if outcome in ("duplicate", "ignored", "not_current"):
        report.unchanged += 1
        _seen(task, seen_at)
    else:
        report.applied += 1
        log.event("scooters.claim_healed", task_id=task.task_id, claim_id=task.claim_id, status=outcome)
    return True
