"""Scooters periodic jobs: find discharged scooters, follow the cargo claims (one runner each)."""
from __future__ import annotations

import time

from chalice import Blueprint, Rate

from chalicelib.core import lease
from chalicelib.core.logs import get_logger
from chalicelib.core.settings import get_settings

from . import finder, follower

bp = Blueprint(__name__)
log = get_logger(__name__)

# Without a Lambda context (tests, benches) a run is given the deployed default timeout.
DEFAULT_TIMEOUT_SECONDS = 30.0
# The lease outlives the run by this much: Lambda kills a run at its timeout, so a live runner never loses
# its lease, and a crashed one blocks the job only until its timeout has passed (not a fixed minute).
LEASE_MARGIN_SECONDS = 5.0


def _remaining_seconds(event) -> float:
    remaining = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            return max(1.0, remaining() / 1000.0)
        except Exception:  # a context without a usable clock
            return DEFAULT_TIMEOUT_SECONDS
    return DEFAULT_TIMEOUT_SECONDS


def _worst_upstream_call() -> float:
    settings = get_settings()
    return (settings.upstream_connect_timeout + settings.upstream_read_timeout) * (settings.upstream_retries + 1) + 0.5


def _run(name: str, event, work) -> None:
    """Take the lease for the function's time (+ a margin) and give `work` a deadline that leaves room for
    one more upstream call at its worst."""
    seconds = _remaining_seconds(event)
    with lease.held(name, seconds + LEASE_MARGIN_SECONDS) as owner:
        if owner is None:
            log.event("job.skipped_lease_held", job=name)
            return
        work(time.monotonic() + max(seconds - _worst_upstream_call() - 1.0, seconds / 2))


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def ScootersFindDischarged(event) -> None:  # noqa: N802 - the issue's function name
    _run("scooters_find_discharged", event, lambda deadline: finder.find_discharged(deadline=deadline))


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def ScootersFollowClaims(event) -> None:  # noqa: N802 - the issue's function name
    _run("scooters_follow_claims", event, lambda deadline: follower.follow_claims(deadline=deadline))
