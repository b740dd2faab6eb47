"""Picker orders periodic jobs: the fallback refresh of orders whose events were lost."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.core.jobs import scheduled_job

from . import updater

bp = Blueprint(__name__)


@bp.schedule(Rate(1, unit=Rate.MINUTES))
@scheduled_job()
def picker_orders_updater(deadline: float) -> int:
    """Refresh the stale orders until the deadline; what is left is still stale and the next run takes it first.
    Killed anyway: every write is conditional."""
    report = updater.refresh_stale_orders(deadline=deadline)
    return report.refreshed + report.unchanged  # items handled: counted by core.lease
