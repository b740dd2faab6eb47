"""eats-picker-orders: the picker's orders, as eats-orders-tracking reads them: the fallback refresh (status,
picker) and the tracking route (the customer of an order whose events named none; null: nobody yet).

    GET /api/v1/order?eats_id=<order_nr>  -> 200 {"payload": {"eats_id", "status", "picker_id", "status_updated_at",
                                                              "place_id", "customer_id"}}
                                             404 for an order it does not know (stateful: set orders first)

Control:
    POST /_control/eats_picker_orders/order {"eats_id": "...", "status": "picking", "picker_id": "p1",
                                             "status_updated_at": "2026-11-23T10:00:00+00:00"}   # create/update
    POST /_control/eats_picker_orders/order {"eats_id": "...", "customer_id": "c1"}             # name the customer
    POST /_control/eats_picker_orders/order {"eats_id": "...", "gone": true}                    # forget: 404
Faults (5xx, timeouts, slowness) come from the simulator's own /_control/faults {"upstream": "eats_picker_orders"}.
"""
from __future__ import annotations

import datetime as dt

NAME = "eats_picker_orders"

STATUSES = {
    "new", "waiting_dispatch", "dispatching", "dispatch_failed", "assigned", "picking", "waiting_confirmation",
    "confirmed", "picked_up", "receipt_processing", "receipt_rejected", "paid", "packing", "handing",
    "cancelled", "complete",
}
_FIELDS = ("status", "picker_id", "status_updated_at", "place_id", "customer_id")
_orders: dict[str, dict] = {}


def reset() -> None:
    _orders.clear()


def _get_order(request):
    eats_id = request.query.get("eats_id")
    if not eats_id:
        return 400, {"code": "bad_request", "message": "eats_id is required"}
    order = _orders.get(eats_id)
    if order is None:
        return 404, {"code": "order_not_found", "message": "no such order"}
    return 200, {"payload": {"eats_id": eats_id, **order}}


def _set_order(body):
    eats_id = body.get("eats_id")
    if not eats_id:
        return 400, {"code": "bad_request", "message": "eats_id is required"}
    if body.get("gone"):
        _orders.pop(eats_id, None)
        return 200, {"eats_id": eats_id, "gone": True}
    status = body.get("status", _orders.get(eats_id, {}).get("status", "new"))
    if status not in STATUSES:
        return 400, {"code": "bad_request", "message": f"unknown status {status}"}
    order = _orders.setdefault(eats_id, {"status": status, "picker_id": None, "place_id": "place-1",
                                         "customer_id": None, "status_updated_at": None})
    changed = status != order["status"]
    order.update({k: v for k, v in body.items() if k in _FIELDS})
    if (changed or order["status_updated_at"] is None) and "status_updated_at" not in body:
        order["status_updated_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    return 200, {"eats_id": eats_id, **order}


ROUTES = [
    ("GET", r"/api/v1/order", _get_order),
]
CONTROLS = {"order": _set_order}
