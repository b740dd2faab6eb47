"""Scooters periodic jobs: find discharged scooters, follow the claims journal, reconcile the claims. Each runs
alone under its lease, with a deadline that fits its Lambda's time (core.jobs.scheduled_job); each returns how
many items it handled (counted by core.lease)."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.core.jobs import scheduled_job

from .recharge import finder, follower, reconciler

bp = Blueprint(__name__)


# Chalice names each function's resource after the handler: scooters_find_discharged -> ScootersFindDischarged
# (the name; `make fire FN=ScootersFindDischarged`), as picker_orders_updater -> PickerOrdersUpdater.
@bp.schedule(Rate(1, unit=Rate.MINUTES))
@scheduled_job()
def scooters_find_discharged(deadline: float) -> int:
    return finder.find_discharged(deadline=deadline).created


@bp.schedule(Rate(1, unit=Rate.MINUTES))
@scheduled_job()
def scooters_follow_claims(deadline: float) -> int:
    return follower.follow_claims(deadline=deadline).handled


# Every 5 minutes (the period): claims/info for open claims no event confirmed for a while (reconciler.py).
@bp.schedule(Rate(5, unit=Rate.MINUTES))
@scheduled_job()
def scooters_reconcile_claims(deadline: float) -> int:
    return reconciler.reconcile_claims(deadline=deadline).asked
