"""Codedispatch HTTP routes: parse -> the topic module -> render."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import DRIVER, INTERNAL, Call, route

from . import assign, create, lookup, processing
from .schemas import (
    EXPERIMENT, GENERATOR_SETTINGS, PROCESSING_ENABLED, ZONES_SETTINGS, AssignOrderIn, AssignOrderOut, CreateOrderIn, CreateOrderOut, DriversLookupIn, DriversLookupOut, LookupDriver,
    StatusOut, StatusQuery,
)

bp = Blueprint(__name__)


@route(bp, "/codedispatch/order/create", method="POST", kind=INTERNAL, body=CreateOrderIn,
       response=CreateOrderOut, errors=(409, 410), configs=(EXPERIMENT, GENERATOR_SETTINGS, ZONES_SETTINGS))
def create_order(call: Call) -> CreateOrderOut:
    """The order's code in its area (from order commit); the same order always gets the same code (410
    code_expired once it can no longer be typed)."""
    created = create.create_order(call.body.order_id, call.body.area_id)
    return CreateOrderOut(code=created.code, instructions=created.zone.instructions or None,
                          driver_due_offset_seconds=created.zone.driver_due_offset_seconds,
                          expires_at=created.expires_at.isoformat())


@route(bp, "/codedispatch/order/assign", method="POST", kind=DRIVER, body=AssignOrderIn, response=AssignOrderOut,
       errors=(404, 409, 410, 429, 503),
       configs=(EXPERIMENT, GENERATOR_SETTINGS, PROCESSING_ENABLED, ZONES_SETTINGS))
def assign_order(call: Call) -> AssignOrderOut:
    """The driver typed an order's code: the order goes to this driver's processing (a new attempt after an
    error); its code expired -> 410 code_expired; too many wrong codes in the area -> 429 too_many_attempts."""
    assignment = assign.assign_order(call.identity, call.body.code, call.body.area_id)
    return AssignOrderOut(order_id=assignment.order_id, status=assignment.status)


@route(bp, "/codedispatch/assignment/status", kind=DRIVER, query=StatusQuery, response=StatusOut,
       errors=(404, 409), configs=(EXPERIMENT, PROCESSING_ENABLED))
def assignment_status(call: Call) -> StatusOut:
    """The assignment's status for the driver who typed the code (polled), with a message on error."""
    view = processing.assignment_status(call.identity, call.query.order_id)
    return StatusOut(order_id=view.order_id, status=view.status, error_code=view.error_code,
                     error_message=view.error_message)


@route(bp, "/codedispatch/drivers-lookup", method="POST", kind=INTERNAL, body=DriversLookupIn,
       response=DriversLookupOut, errors=(404, 409, 502, 503), configs=(EXPERIMENT, PROCESSING_ENABLED))
def drivers_lookup(call: Call) -> DriversLookupOut:
    """The driver who typed the order's code, acquired in the tracker (from lookup)."""
    assignment = lookup.lookup_driver(call.body.order_id)
    return DriversLookupOut(order_id=assignment.order_id, driver=LookupDriver(
        driver_id=assignment.driver_id, park_db_id=assignment.park_db_id,
        driver_profile_id=assignment.driver_profile_id))
