"""Scooters periodic jobs: find discharged scooters, follow the claims journal, reconcile the claims (one runner
each, under its lease)."""
from __future__ import annotations

import time

from chalice import Blueprint, Rate

from chalicelib.core.budget import remaining_seconds, worst_upstream_call
from chalicelib.core.lease import single_runner

from .recharge import finder, follower, reconciler

bp = Blueprint(__name__)

# Without a Lambda context (tests, benches) a run is given the deployed default timeout.
DEFAULT_TIMEOUT_SECONDS = 30.0
# The lease outlives the run by this much: Lambda kills a run at its timeout, so a live runner never loses
# its lease, and a crashed one blocks the job only until its timeout has passed (not a fixed minute).
LEASE_MARGIN_SECONDS = 5.0


def _run(name: str, event, work) -> None:
    """Take the lease for the function's time (+ a margin) and give `work` a deadline that leaves room for
    one more upstream call at its worst."""
    seconds = remaining_seconds(event)
    seconds = DEFAULT_TIMEOUT_SECONDS if seconds is None else max(1.0, seconds)
    budget = max(seconds - worst_upstream_call() - 1.0, seconds / 2)

    def run(_event) -> None:
        work(time.monotonic() + budget)

    single_runner(name, seconds + LEASE_MARGIN_SECONDS)(run)(event)


# Chalice names each function's resource after the handler: scooters_find_discharged -> ScootersFindDischarged
# (the name; `make fire FN=ScootersFindDischarged`), as picker_orders_updater -> PickerOrdersUpdater.
@bp.schedule(Rate(1, unit=Rate.MINUTES))
def scooters_find_discharged(event) -> None:
    _run("scooters_find_discharged", event, lambda deadline: finder.find_discharged(deadline=deadline))


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def scooters_follow_claims(event) -> None:
    _run("scooters_follow_claims", event, lambda deadline: follower.follow_claims(deadline=deadline))


# Every 5 minutes (the period): claims/info for open claims no event confirmed for a while (reconciler.py).
@bp.schedule(Rate(5, unit=Rate.MINUTES))
def scooters_reconcile_claims(event) -> None:
    _run("scooters_reconcile_claims", event, lambda deadline: reconciler.reconcile_claims(deadline=deadline))
