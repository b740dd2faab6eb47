"""driver-trackstory: drivers' last known positions.

    POST /driver_trackstory/v2/positions {"drivers": [{"park_id", "driver_profile_id"}, ...]}
      200 {"results": [{"park_id", "driver_profile_id", "position": [lon, lat] | null}]}
      400 no drivers list
Positions are set with POST /_control/drivers {"park_id", "driver_id", "position": [lon, lat]} (see
driver_profiles.py). Faults: POST /_control/faults {"upstream": "driver_trackstory", ...}.
"""
from __future__ import annotations

from . import driver_profiles

NAME = "driver_trackstory"


def reset() -> None:
    pass  # positions are the drivers' (driver_profiles.DRIVERS)


def _positions(request):
    keys = driver_profiles.pairs(request)
    if keys is None:
        return 400, {"code": "bad_request", "message": "drivers: [{park_id, driver_profile_id}] is required"}
    results = []
    for key in keys:
        driver = driver_profiles.DRIVERS.get(key) or {}
        results.append({"park_id": key[0], "driver_profile_id": key[1], "position": driver.get("position")})
    return 200, {"results": results}


ROUTES = [("POST", r"/v2/positions", _positions)]
