"""Scheduled jobs: one runner at a time, a deadline that fits the Lambda's time, metrics and log lines.

    @bp.schedule(Rate(1, unit=Rate.MINUTES))
    @scheduled_job()
    def picker_orders_updater(deadline: float) -> int:
        return updater.refresh_stale_orders(deadline=deadline).refreshed

Per run: the time left before Lambda kills it (its context; `default_seconds` outside Lambda, in tests and
benches), a lease for that time plus a margin (so two runners never overlap, and a crashed one blocks the job only
until its timeout has passed), and a deadline (a time.monotonic()) that leaves room for one more upstream call at
its worst (at least half the time is used). The body stops taking new work at the deadline; what is left waits
for the next run. The lease is named after the handler unless `name` says otherwise; core.lease.single_runner
writes the job.done / job.skipped_lease_held / job.failed lines and the JobRuns metrics (an int result is counted
as ItemsHandled).
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable

from .budget import remaining_seconds, worst_upstream_call
from .lease import single_runner

# The lease outlives the run by this much: leases are compared on the clocks of different Lambda instances, and
# taking the lease takes a moment of the run itself.
LEASE_MARGIN_SECONDS = 5.0


def scheduled_job(name: str | None = None, *, default_seconds: float = 30.0,
                  call_allowance_seconds: float = 0.5) -> Callable:
    """Decorator for a @schedule handler written as `fn(deadline) -> result`; Chalice sees `fn(event)` under the
    same name (it names the Lambda function after it). `call_allowance_seconds`: what one upstream call may add to
    its worst case on top of its timeouts (e.g. a Retry-After it waits out)."""

    def decorator(work: Callable[[float], Any]) -> Callable:
        lease_name = name or work.__name__

        @functools.wraps(work)
        def handler(event) -> Any:
            seconds = remaining_seconds(event)
            seconds = default_seconds if seconds is None else max(1.0, seconds)
            budget = max(seconds - worst_upstream_call(call_allowance_seconds), seconds / 2)
            # Made per run: the lease's length depends on this invocation's time.
            return single_runner(lease_name, seconds + LEASE_MARGIN_SECONDS)(work)(time.monotonic() + budget)

        return handler

    return decorator
