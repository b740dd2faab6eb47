"""Deptrans periodic job: the status sender (one runner at a time, drains until its budget is nearly spent)."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.core.jobs import scheduled_job

from . import sender

bp = Blueprint(__name__)

# A KRT call at its worst also waits out a Retry-After, capped by core.http.
KRT_RETRY_AFTER_ALLOWANCE = 2.5


@bp.schedule(Rate(1, unit=Rate.MINUTES))
@scheduled_job(call_allowance_seconds=KRT_RETRY_AFTER_ALLOWANCE)
def deptrans_status_sender(deadline: float) -> dict:
    return sender.run(deadline=deadline)
