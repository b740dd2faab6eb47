"""Deptrans periodic job: the status sender (one runner at a time, drains until its budget is nearly spent)."""
from __future__ import annotations

import time

from chalice import Blueprint, Rate

from chalicelib.core import lease
from chalicelib.core.logs import get_logger
from chalicelib.core.settings import get_settings

from . import sender

bp = Blueprint(__name__)
log = get_logger(__name__)

LEASE_NAME = "deptrans_status_sender"
DEFAULT_TIMEOUT_SECONDS = 30.0


def _remaining_seconds(event) -> float:
    """What the Lambda has left now (about its whole timeout at the start of a run)."""
    remaining = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            return max(1.0, remaining() / 1000.0)
        except Exception:  # a context without a usable clock
            pass
    return DEFAULT_TIMEOUT_SECONDS


def _worst_call() -> float:
    """One KRT call at worst: every attempt times out, plus backoff and a capped Retry-After."""
    settings = get_settings()
    return (settings.upstream_connect_timeout + settings.upstream_read_timeout) * (settings.upstream_retries + 1) + 2.5


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def deptrans_status_sender(event) -> dict | None:
    remaining = _remaining_seconds(event)
    # The lease outlives this invocation (its timeout) by a margin, so two runners never overlap; a crashed
    # runner frees the job when its lease runs out.
    with lease.held(LEASE_NAME, remaining + 5) as owner:
        if owner is None:
            log.event("job.skipped_lease_held", job=LEASE_NAME)
            return None
        # Stop taking entries while the slowest call still fits (at least half the time is used).
        budget = max(remaining - _worst_call(), remaining / 2)
        return sender.run(deadline=time.monotonic() + budget)
