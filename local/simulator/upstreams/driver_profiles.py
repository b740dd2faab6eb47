"""driver-profiles: a driver profile's licence (its driver_license_pd_id), by park and profile id.

    POST /driver_profiles/v1/driver/profiles/retrieve {"drivers": [{"park_id", "driver_profile_id"}, ...]}
      200 {"profiles": [{"park_id", "driver_profile_id", "driver_license_pd_id"}]}   (unknown profiles left out)
      400 no drivers list

This module also keeps the simulator's DRIVERS, shared by personal, driver_trackstory and
driver_categories_api, and the control that sets a driver up across all four:

    POST /_control/drivers {"park_id", "driver_id", "licence": "7799123456", "categories": ["econom"],
                            "position": [lon, lat]}
      -> {"park_id", "driver_id", "licence_pd_id"}
    Fields left out keep their value (a driver moves with {"park_id", "driver_id", "position": [...]});
    "position": null makes the driver unknown to trackstory; "licence": null gives the profile no licence.

    POST /_control/drivers/{park_id}/{driver_id}/position {"position": [lon, lat] | null}
      moves a driver set up before (or removes his position: trackstory answers null); 404 unknown driver

The licence's pd_id is derived from the number (pd_id(licence)), as personal would store it. A demo driver is
there after every reset: park "park1", profile "drv1", licence "7799123456", econom, in the centre of Moscow
(KRT knows registry ID "AB123456" for that licence; see krt.py).
"""
from __future__ import annotations

import hashlib

NAME = "driver_profiles"
DRIVERS: dict[tuple[str, str], dict] = {}
DEMO = {"park_id": "park1", "driver_id": "drv1", "licence": "7799123456", "categories": ["econom"],
        "position": [37.6173, 55.7558]}


def pd_id(licence: str) -> str:
    return "pd_" + hashlib.sha256(licence.encode()).hexdigest()[:20]


def reset() -> None:
    DRIVERS.clear()
    _set(dict(DEMO))


def _set(body: dict) -> dict:
    key = (body["park_id"], body["driver_id"])
    driver = DRIVERS.setdefault(key, {"licence": None, "categories": [], "position": None})
    for field in ("licence", "categories", "position"):
        if field in body:
            driver[field] = body[field]
    return driver


def _error(status: int, message: str):
    return status, {"code": "bad_request", "message": message}


def _control_drivers(request):
    body = request.body if isinstance(request.body, dict) else {}
    if not isinstance(body.get("park_id"), str) or not body["park_id"] \
            or not isinstance(body.get("driver_id"), str) or not body["driver_id"]:
        return _error(400, "park_id and driver_id are required")
    if "licence" in body and body["licence"] is not None and (not isinstance(body["licence"], str)
                                                                or not body["licence"]):
        return _error(400, "licence is a non-empty string or null")
    if "categories" in body and (not isinstance(body["categories"], list)
                                 or not all(isinstance(c, str) for c in body["categories"])):
        return _error(400, "categories is a list of strings")
    if "position" in body and not _valid_position(body["position"]):
        return _error(400, "position is [lon, lat] or null")
    driver = _set(body)
    return 200, {"park_id": body["park_id"], "driver_id": body["driver_id"],
                 "licence_pd_id": pd_id(driver["licence"]) if driver["licence"] else None}


def _valid_position(position) -> bool:
    return position is None or (isinstance(position, list) and len(position) == 2
                                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position))


def _control_position(request):
    body = request.body if isinstance(request.body, dict) else {}
    key = (request.match.group("park_id"), request.match.group("driver_id"))
    if "position" not in body or not _valid_position(body["position"]):
        return _error(400, "position is [lon, lat] or null")
    if key not in DRIVERS:
        return 404, {"code": "not_found", "message": "no such driver: set him up with /_control/drivers"}
    DRIVERS[key]["position"] = body["position"]
    return 200, {"park_id": key[0], "driver_id": key[1], "position": body["position"]}


def pairs(request) -> list[tuple[str, str]] | None:
    """The {"drivers": [{"park_id", "driver_profile_id"}]} of a batch request, or None when malformed."""
    body = request.body if isinstance(request.body, dict) else {}
    drivers = body.get("drivers")
    if not isinstance(drivers, list) or not all(
            isinstance(d, dict) and isinstance(d.get("park_id"), str) and isinstance(d.get("driver_profile_id"), str)
            for d in drivers):
        return None
    return [(d["park_id"], d["driver_profile_id"]) for d in drivers]


def _retrieve(request):
    keys = pairs(request)
    if keys is None:
        return _error(400, "drivers: [{park_id, driver_profile_id}] is required")
    profiles = []
    for key in keys:
        driver = DRIVERS.get(key)
        if driver is not None:
            profiles.append({"park_id": key[0], "driver_profile_id": key[1],
                             "driver_license_pd_id": pd_id(driver["licence"]) if driver["licence"] else None})
    return 200, {"profiles": profiles}


ROUTES = [("POST", r"/v1/driver/profiles/retrieve", _retrieve)]
CONTROL_ROUTES = [("POST", r"drivers", _control_drivers),
                  ("POST", r"drivers/(?P<park_id>[^/]+)/(?P<driver_id>[^/]+)/position", _control_position)]
