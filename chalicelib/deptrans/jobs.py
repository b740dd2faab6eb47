"""Deptrans periodic job: the status sender (one runner at a time, drains until its budget is nearly spent)."""
from __future__ import annotations

import time

from chalice import Blueprint, Rate

from chalicelib.core.budget import remaining_seconds, worst_upstream_call
from chalicelib.core.lease import single_runner

from . import sender

bp = Blueprint(__name__)

LEASE_NAME = "deptrans_status_sender"
DEFAULT_TIMEOUT_SECONDS = 30.0
# A KRT call at its worst also waits out a Retry-After, capped by core.http.
KRT_RETRY_AFTER_ALLOWANCE = 2.5


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def deptrans_status_sender(event) -> dict | None:
    remaining = remaining_seconds(event)
    remaining = DEFAULT_TIMEOUT_SECONDS if remaining is None else max(1.0, remaining)
    # Stop taking entries while the slowest call still fits (at least half the time is used).
    budget = max(remaining - worst_upstream_call(KRT_RETRY_AFTER_ALLOWANCE), remaining / 2)

    def send(_event) -> dict:
        return sender.run(deadline=time.monotonic() + budget)

    # The lease outlives this invocation (its timeout) by a margin, so two runners never overlap; a crashed
    # runner frees the job when its lease runs out. Made per run: its length depends on this invocation.
    return single_runner(LEASE_NAME, remaining + 5)(send)(event)
