"""Drivers-lookup: lookup asks who typed the code; the driver is acquired in the tracker and the assignment
moves processing -> assigned, or -> error (driver_not_found_in_tracker). Tracker down: 503, no change.
Every lookup of one attempt acquires under that attempt's token (store.acquire_token: drawn when the
attempt started), so a repeated lookup is a retry of the same logical call; a new attempt has a new token.

The doc leaves open who sets `assigned`: the only handler that learns the driver really gets the order is
drivers-lookup (after acquiring the driver in the tracker), so it moves the assignment to assigned.
"""
from __future__ import annotations

from chalicelib.core.errors import Conflict, NotFound

from . import store, switches, upstreams
from .models import Assignment
from .schemas import DRIVER_NOT_FOUND_IN_TRACKER
from .store import Status


def _failed(assignment: Assignment) -> NotFound:
    code = assignment.error_code or "assignment_failed"
    return NotFound(f"the order's code dispatch failed: {code}", code=code)


def lookup_driver(order_id: str) -> Assignment:
    """The driver who typed the order's code, acquired in the tracker; the attempt ends assigned or error.

    Acts on the current attempt only: a move is conditional on the attempt it read, and when a move loses
    because a new attempt started meanwhile, the new attempt is handled (its driver acquired) instead.
    """
    switches.require_processing()
    assignment = store.live_assignment(order_id)
    if assignment is None:
        raise NotFound("the order has no code dispatch assignment", code="assignment_not_found")
    # The experiment is evaluated for the order's area and the driver who typed its code (if any yet).
    switches.require_feature(area_id=assignment.area_id, park_id=assignment.park_db_id,
                             driver_profile_id=assignment.driver_profile_id)
    for _ in range(3):
        if assignment.status == Status.PENDING.value:
            raise NotFound("no driver has typed the order's code yet", code="driver_not_chosen")
        if assignment.status != Status.PROCESSING.value:
            break
        token = store.acquire_token(assignment)
        if token is None:  # an old item got its token from a racing call, or moved on: look again
            continue
        try:
            upstreams.acquire_driver(order_id, token, assignment.park_db_id, assignment.driver_profile_id)
        except upstreams.DriverNotInTracker:
            # UpstreamUnavailable / UpstreamRejected pass through before any write: no state change.
            moved = store.move(assignment, Status.ERROR, who="drivers_lookup", error_code=DRIVER_NOT_FOUND_IN_TRACKER)
        else:
            moved = store.move(assignment, Status.ASSIGNED, who="drivers_lookup")
        if moved:
            break
        # A concurrent lookup moved it first (assigned | error: answered below), or a new attempt started
        # (processing again, maybe for another driver: acquire that one). `assignment` is what is stored now.
    else:
        raise Conflict("the assignment keeps changing, ask again", code="assignment_changed")
    if assignment.status == Status.ERROR.value:
        raise _failed(assignment)
    return assignment
