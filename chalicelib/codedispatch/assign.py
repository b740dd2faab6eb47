"""Assign: a driver types the code; the first driver moves the assignment pending -> processing.

The move is conditional on status == pending, so of two racing drivers exactly one wins and the other
gets 409. The same driver repeating the call is answered the current state; the attempt's processing push
is sent once (processing.py), again only if its send failed. A driver is always compared by park_db_id AND
driver_profile_id, never by the joined `driver_id` ("a_b"+"c" and "a"+"b_c" join alike). An attempt that
ended in error is followed by a new one when a driver types the code again (store.restart).

Order of checks: the typed code's format first (400, before anything is read but the generator settings it
is checked against), then the switches (409), the wrong-code limits (429), the lookup (404). A code whose
order is still on record but whose time to be typed is over is 410 code_expired (store.py: expiry); it led
to an order, so it is not counted as a guess.
"""
from __future__ import annotations

from chalicelib.core import metrics
from chalicelib.core.errors import BadRequest, Conflict, NotFound
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger

from . import processing, store, switches, wrong_codes
from .models import Assignment
from .schemas import GENERATOR_SETTINGS, MAX_CODE_LENGTH, MIN_CODE_LENGTH
from .store import CodeExpired, Status

log = get_logger(__name__)


def assign_order(driver: DriverIdentity, typed_code: str, area_id: str) -> Assignment:
    """The driver typed `typed_code` in `area_id`: the order becomes theirs (processing) unless taken."""
    generator = GENERATOR_SETTINGS.get()
    if not generator.accepts(typed_code):
        raise BadRequest(f"a code is {MIN_CODE_LENGTH}-{MAX_CODE_LENGTH} characters of the code alphabet",
                         code="invalid_code_format")
    switches.require_feature(area_id=area_id, park_id=driver.park_id, driver_profile_id=driver.driver_profile_id)
    switches.require_processing()
    switches.zone(area_id)
    tries = wrong_codes.reserve_try(driver, area_id, generator)
    guard = store.live_code(area_id, typed_code)
    assignment = store.live_assignment(guard.order_id) if guard is not None else None
    # The guard may outlive a re-created assignment of its order (an expired one replaced): check both ways.
    if assignment is None or assignment.code != typed_code or assignment.area_id != area_id:
        log.event("codedispatch.code_wrong", area_id=area_id,
                  metrics=metrics.count("codedispatch", "CodesWrong", area_id=area_id))
        raise NotFound("no order with this code", code="code_not_found")  # the try stays counted
    wrong_codes.give_back_try(tries)
    who = f"driver:{driver.driver_id}"
    moved = False
    if assignment.status in (Status.PENDING.value, Status.ERROR.value):
        # Pending: the code's first driver. Error (e.g. the driver was not in the tracker): typing the code
        # again starts a new attempt. Either needs the code alive for the whole attempt to start.
        if not store.code_is_live(assignment):
            raise _expired(assignment)
        moved = (store.move(assignment, Status.PROCESSING, who=who, driver=driver)
                 if assignment.status == Status.PENDING.value else store.restart(assignment, driver, who=who))
        if not moved and assignment.status in (Status.PENDING.value, Status.ERROR.value):
            raise _expired(assignment)  # nobody else moved it: its code expired while we were moving it
    if not store.is_driver(assignment, driver):
        log.event("codedispatch.assign_refused_taken", order_id=assignment.order_id, driver_id=driver.driver_id)
        raise Conflict("another driver has already taken this order", code="order_already_taken")
    if moved:
        log.event("codedispatch.code_assigned", order_id=assignment.order_id,
                  metrics=metrics.count("codedispatch", "CodesAssigned"))
    if assignment.status == Status.PROCESSING.value:
        processing.push_processing(assignment, claimed=moved)
    return assignment


def _expired(assignment: Assignment) -> CodeExpired:
    log.event("codedispatch.code_expired_typed", order_id=assignment.order_id, area_id=assignment.area_id)
    return CodeExpired("the order's code has expired")
