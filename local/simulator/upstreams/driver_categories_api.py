"""driver-categories-api: the categories (tariffs) each driver works in.

    POST /driver_categories_api/v2/aggregation/categories {"drivers": [{"park_id", "driver_profile_id"}, ...]}
      200 {"drivers": [{"park_id", "driver_profile_id", "categories": ["econom", ...]}]}   ([] for unknown)
      400 no drivers list
Categories are set with POST /_control/drivers {"park_id", "driver_id", "categories": [...]} (see
driver_profiles.py). Faults: POST /_control/faults {"upstream": "driver_categories_api", ...}.
"""
from __future__ import annotations

from . import driver_profiles

NAME = "driver_categories_api"


def reset() -> None:
    pass  # categories are the drivers' (driver_profiles.DRIVERS)


def _categories(request):
    keys = driver_profiles.pairs(request)
    if keys is None:
        return 400, {"code": "bad_request", "message": "drivers: [{park_id, driver_profile_id}] is required"}
    answer = []
    for key in keys:
        driver = driver_profiles.DRIVERS.get(key) or {}
        answer.append({"park_id": key[0], "driver_profile_id": key[1],
                       "categories": list(driver.get("categories") or [])})
    return 200, {"drivers": answer}


ROUTES = [("POST", r"/v2/aggregation/categories", _categories)]
