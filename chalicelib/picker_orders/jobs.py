"""Picker orders periodic jobs: the fallback refresh of orders whose events were lost."""
from __future__ import annotations

import time

from chalice import Blueprint, Rate

from chalicelib.core.lease import single_runner

from . import service

bp = Blueprint(__name__)

# The lease outlives any run (Lambda timeout <= 30 s) but frees the next minute's run if one crashed.
LEASE_SECONDS = 55
# Stop taking new orders this long before the Lambda's own timeout; what is left waits for the next run.
SAFETY_MARGIN_SECONDS = 3.0
DEFAULT_BUDGET_SECONDS = 20.0


def _deadline(event) -> float:
    context = getattr(event, "context", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = DEFAULT_BUDGET_SECONDS
    if callable(remaining):
        try:
            budget = max(0.0, remaining() / 1000.0 - SAFETY_MARGIN_SECONDS)
        except Exception:  # a context without a usable clock: keep the default budget
            budget = DEFAULT_BUDGET_SECONDS
    return time.monotonic() + budget


@bp.schedule(Rate(1, unit=Rate.MINUTES))
@single_runner("picker_orders_updater", LEASE_SECONDS)
def picker_orders_updater(event) -> None:
    service.refresh_stale_orders(deadline=_deadline(event))
