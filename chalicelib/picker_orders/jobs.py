"""Picker orders periodic jobs: the fallback refresh of orders whose events were lost."""
from __future__ import annotations

import time

from chalice import Blueprint, Rate

from chalicelib.core.lease import single_runner
from chalicelib.core.settings import get_settings

from . import service

bp = Blueprint(__name__)

# The lease outlives any run (Lambda timeout <= 30 s) but frees the next minute's run if one crashed.
LEASE_SECONDS = 55
DEFAULT_BUDGET_SECONDS = 20.0


def _worst_upstream_call() -> float:
    """One order's fetch at worst: every attempt times out (plus a little backoff)."""
    settings = get_settings()
    attempt = settings.upstream_connect_timeout + settings.upstream_read_timeout
    return attempt * (settings.upstream_retries + 1) + 0.5


def _deadline(event) -> float:
    """Stop taking new orders while one more fetch still fits in the Lambda's time (at least half of it is
    used); what is left is still stale and waits for the next run. Killed anyway: the writes are conditional."""
    budget = DEFAULT_BUDGET_SECONDS
    remaining = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            seconds = remaining() / 1000.0
            budget = max(seconds - _worst_upstream_call(), seconds / 2)
        except Exception:  # a context without a usable clock: keep the default budget
            budget = DEFAULT_BUDGET_SECONDS
    return time.monotonic() + budget


@bp.schedule(Rate(1, unit=Rate.MINUTES))
@single_runner("picker_orders_updater", LEASE_SECONDS)
def picker_orders_updater(event) -> int:
    report = service.refresh_stale_orders(deadline=_deadline(event))
    return report.refreshed + report.unchanged  # items handled: core.lease counts a job's int result
