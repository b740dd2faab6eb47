"""The driver tracker: acquire one particular driver for an order (codedispatch drivers-lookup).

    POST /tracker/driver/acquire {"order_id", "park_db_id", "driver_profile_id"}
      200 {"driver": {"park_db_id", "driver_profile_id", "position": [lon, lat]}, "order_id"}
      404 the driver is not in the tracker;  400 a field is missing

Every driver is in the tracker, near the Zenit arena, unless marked absent:
    POST /_control/tracker/driver {"park_db_id": "...", "driver_profile_id": "...", "absent": true}
    POST /_control/tracker/driver {"park_db_id": "...", "driver_profile_id": "...", "absent": false}
    POST /_control/tracker/acquired {}     # -> {"acquired": {order_id: "<park>_<profile>"}}
Faults (5xx, timeouts, slowness) come from the server's generic switches: POST /_control/faults.
"""
from __future__ import annotations

import hashlib

NAME = "tracker"
_absent: set[tuple[str, str]] = set()
_acquired: dict[str, str] = {}


def reset() -> None:
    _absent.clear()
    _acquired.clear()


def _position(park_db_id: str, driver_profile_id: str) -> list[float]:
    digest = int(hashlib.sha256(f"{park_db_id}_{driver_profile_id}".encode()).hexdigest(), 16)
    return [round(30.22 + (digest % 1000) / 100000, 6), round(59.97 + (digest // 1000 % 1000) / 100000, 6)]


def _driver_key(body) -> tuple[str, str] | None:
    body = body if isinstance(body, dict) else {}
    park_db_id, driver_profile_id = body.get("park_db_id"), body.get("driver_profile_id")
    if not isinstance(park_db_id, str) or not park_db_id or not isinstance(driver_profile_id, str) \
            or not driver_profile_id:
        return None
    return park_db_id, driver_profile_id


def _acquire(request):
    key = _driver_key(request.body)
    order_id = (request.body or {}).get("order_id") if isinstance(request.body, dict) else None
    if key is None or not order_id:
        return 400, {"code": "bad_request", "message": "order_id, park_db_id and driver_profile_id are required"}
    if key in _absent:
        return 404, {"code": "driver_not_found", "message": "the driver is not in the tracker"}
    _acquired[order_id] = f"{key[0]}_{key[1]}"
    return 200, {"order_id": order_id, "driver": {"park_db_id": key[0], "driver_profile_id": key[1],
                                                  "position": _position(*key)}}


def _set_driver(body):
    key = _driver_key(body)
    if key is None:
        return 400, {"code": "bad_request", "message": "park_db_id and driver_profile_id are required"}
    if body.get("absent", True):
        _absent.add(key)
    else:
        _absent.discard(key)
    return 200, {"park_db_id": key[0], "driver_profile_id": key[1], "absent": key in _absent}


def _list_acquired(body):
    return 200, {"acquired": dict(_acquired)}


ROUTES = [
    ("POST", r"/driver/acquire", _acquire),
]
CONTROLS = {"driver": _set_driver, "acquired": _list_acquired}
