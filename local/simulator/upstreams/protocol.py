"""The taxi protocol's shared-route handlers: sharedroute, sharedroutetrack, ordercontactobtain.

Any key gets a plausible order (status "driving", courier on demand) unless set otherwise:
    POST /_control/protocol/order {"key": "...", "status": "transporting", "call_mode": "on_demand"}
    POST /_control/protocol/order {"key": "...", "gone": true}      # the protocol forgot it: 404
    POST /_control/protocol/contact_fault {"status": 500}           # only ordercontactobtain fails
"""
from __future__ import annotations

import hashlib
import time

NAME = "protocol"
_orders: dict[str, dict] = {}
_contact_fault: dict[str, int | None] = {"status": None}


def reset() -> None:
    _orders.clear()
    _contact_fault["status"] = None


def _digits(seed: str, count: int) -> str:
    return str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:count]


def _order(key: str) -> dict | None:
    order = _orders.setdefault(key, {"status": "driving", "call_mode": "on_demand"})
    return None if order.get("gone") else order


def _sharedroute(request):
    key = request.query.get("key", "")
    order = _order(key)
    if order is None:
        return 404, {"code": "not_found", "message": "no such shared route"}
    return 200, {
        "status": order["status"],
        "driver": {"name": "Курьер", "call_mode": order["call_mode"], "car": {"model": "Hyundai Solaris"}},
        "park": {"name": "Экспресс-парк"},
        "partner": {"name": "ООО Доставка"},
        "request": {"route": [{"short_text": "Точка А", "geopoint": [37.58, 55.73]},
                              {"short_text": "Точка Б", "geopoint": [37.62, 55.75]}]},
        "routeinfo": {"time_left": 600, "distance_left": 3200},
    }


def _sharedroutetrack(request):
    key = request.query.get("key", "")
    if _order(key) is None:
        return 404, {"code": "not_found", "message": "no such shared route"}
    now = time.time()
    return 200, {"track": [{"geopoint": [37.58 + i * 0.001, 55.73 + i * 0.001], "timestamp": int(now - 60 + i * 10)}
                           for i in range(6)]}


def _ordercontactobtain(request):
    if _contact_fault["status"]:
        return _contact_fault["status"], {"code": "simulated_fault", "message": "ordercontactobtain is down"}
    order_id = (request.body or {}).get("order_id")
    if not order_id:
        return 400, {"code": "bad_request", "message": "order_id is required"}
    return 200, {"phone": "+7555" + _digits(order_id, 7), "ext": _digits("ext" + order_id, 3)}


def _set_order(body):
    key = body.get("key")
    if not key:
        return 400, {"code": "bad_request", "message": "key is required"}
    order = _orders.setdefault(key, {"status": "driving", "call_mode": "on_demand"})
    order.update({k: v for k, v in body.items() if k in ("status", "call_mode", "gone")})
    return 200, {"key": key, **order}


ROUTES = [
    ("GET", r"/sharedroute", _sharedroute),
    ("GET", r"/sharedroutetrack", _sharedroutetrack),
    ("POST", r"/ordercontactobtain", _ordercontactobtain),
]
def _set_contact_fault(body):
    """POST /_control/protocol/contact_fault {"status": 500}: only ordercontactobtain fails (null heals it)."""
    _contact_fault["status"] = body.get("status")
    return 200, dict(_contact_fault)


CONTROLS = {"order": _set_order, "contact_fault": _set_contact_fault}
