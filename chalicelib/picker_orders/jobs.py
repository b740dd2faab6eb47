"""Picker orders periodic jobs: the fallback refresh of orders whose events were lost."""
from __future__ import annotations

import time

from chalice import Blueprint, Rate

from chalicelib.core.budget import remaining_seconds, worst_upstream_call
from chalicelib.core.lease import single_runner

from . import updater

bp = Blueprint(__name__)

JOB = "picker_orders_updater"
DEFAULT_BUDGET_SECONDS = 20.0
# On top of the longest possible run: leases are compared on the clocks of different Lambda instances (skew)
# and taking the lease takes a moment of the run itself.
LEASE_MARGIN_SECONDS = 5.0


def _deadline(event) -> float:
    """Stop taking new orders while one more fetch still fits in the Lambda's time (at least half of it is
    used); what is left is still stale and waits for the next run. Killed anyway: the writes are conditional."""
    seconds = remaining_seconds(event)
    budget = DEFAULT_BUDGET_SECONDS if seconds is None else max(seconds - worst_upstream_call(), seconds / 2)
    return time.monotonic() + budget


def lease_seconds(event) -> float:
    """How long this run's lease lasts: longer than the run can possibly take, whatever the function's timeout
    is set to, so two runners never overlap. In Lambda that bound is the time left at the start (the timeout:
    Lambda kills the run then); outside Lambda it is the default budget plus the one fetch that may be under
    way when it ends. A run that ends releases its lease at once; one that was killed blocks the schedule
    until its lease ends (with the local stage's 10 s timeout, before the next minute)."""
    seconds = remaining_seconds(event)
    longest = DEFAULT_BUDGET_SECONDS + worst_upstream_call() if seconds is None else seconds
    return longest + LEASE_MARGIN_SECONDS


def _refresh(event) -> int:
    report = updater.refresh_stale_orders(deadline=_deadline(event))
    return report.refreshed + report.unchanged  # items handled: core.lease counts a job's int result


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def picker_orders_updater(event) -> int | None:
    # The lease length depends on this invocation's context, so the single-runner wrapper is made per run.
    return single_runner(JOB, lease_seconds(event))(_refresh)(event)
