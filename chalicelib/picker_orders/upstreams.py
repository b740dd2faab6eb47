"""Client of eats-picker-orders: the order's current state, for the fallback refresh."""
from __future__ import annotations

from chalicelib.core import http
from chalicelib.core.errors import UpstreamUnavailable

from .schemas import UpstreamPickerOrder

EATS_PICKER_ORDERS = "eats_picker_orders"


def fetch_order(order_nr: str) -> UpstreamPickerOrder:
    """GET /api/v1/order?eats_id=<order_nr>. Raises UpstreamUnavailable / UpstreamRejected (core.http)."""
    body = http.call_json(EATS_PICKER_ORDERS, "GET", "/api/v1/order", params={"eats_id": order_nr})
    if isinstance(body, dict) and isinstance(body.get("payload"), dict):
        body = body["payload"]
    order = http.answer_as(EATS_PICKER_ORDERS, UpstreamPickerOrder, body)
    if order.eats_id != order_nr:
        raise UpstreamUnavailable("eats-picker-orders answered another order")
    return order
