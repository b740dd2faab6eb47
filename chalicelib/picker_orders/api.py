"""Picker orders HTTP routes: the grocery order-tracking screen."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import EATS_USER, Call, route

from . import tracking
from .schemas import (
    CALL_PICKER_ENABLED, CALL_PLACE_ENABLED, PICKER_TEXTS, PLACE_PHONES, STATUS_TEXTS, TrackedOrder, TrackingQuery,
)

bp = Blueprint(__name__)


@route(bp, "/eats/v1/eats-orders-tracking/v1/tracking", kind=EATS_USER, query=TrackingQuery,
       response=TrackedOrder, errors=(404, 503),
       configs=(CALL_PICKER_ENABLED, CALL_PLACE_ENABLED, PICKER_TEXTS, PLACE_PHONES, STATUS_TEXTS))
def picker_order_tracking(call: Call) -> TrackedOrder:
    """The customer's grocery order (picker flow): texts, call buttons and banners of the tracking screen.
    An order whose customer is not known yet is asked of eats-picker-orders (503 while that is down)."""
    return tracking.tracked_order(call.query.order_nr, call.identity.user_id)
