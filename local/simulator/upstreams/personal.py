"""personal: personal data by its pd_id; here the driver licence numbers of the simulator's drivers.

    POST /personal/v1/driver_licenses/retrieve {"id": "<pd_id>"} -> 200 {"id", "value": "<licence number>"}
                                                                   404 unknown pd_id;  400 no id
Drivers (and so their licences) are set up with POST /_control/drivers (see driver_profiles.py).
"""
from __future__ import annotations

from . import driver_profiles

NAME = "personal"


def reset() -> None:
    pass  # the licences are the drivers' (driver_profiles.DRIVERS)


def _retrieve(request):
    body = request.body if isinstance(request.body, dict) else {}
    wanted = body.get("id")
    if not isinstance(wanted, str) or not wanted:
        return 400, {"code": "bad_request", "message": "id is required"}
    for driver in driver_profiles.DRIVERS.values():
        if driver["licence"] and driver_profiles.pd_id(driver["licence"]) == wanted:
            return 200, {"id": wanted, "value": driver["licence"]}
    return 404, {"code": "not_found", "message": "no such personal data"}


ROUTES = [("POST", r"/v1/driver_licenses/retrieve", _retrieve)]
