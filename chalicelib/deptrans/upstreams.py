"""Clients of the driver upstreams: driver-profiles, personal, driver-trackstory, driver-categories-api.

Batch calls take up to BATCH drivers, as `{"park_id", "driver_profile_id"}` pairs. Every call goes through
core.http (timeouts, bounded retries, UpstreamUnavailable / UpstreamRejected). The licence number from
`personal` is returned to the caller only: never stored, never logged.
"""
from __future__ import annotations

from typing import Iterable

from chalicelib.core import http
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable

DRIVER_PROFILES = "driver_profiles"
PERSONAL = "personal"
DRIVER_TRACKSTORY = "driver_trackstory"
DRIVER_CATEGORIES = "driver_categories_api"
BATCH = 100

Driver = tuple[str, str]  # (park_id, driver_id)


def _chunks(drivers: list[Driver]) -> Iterable[list[Driver]]:
    for start in range(0, len(drivers), BATCH):
        yield drivers[start:start + BATCH]


def _pairs(drivers: list[Driver]) -> list[dict]:
    return [{"park_id": park_id, "driver_profile_id": driver_id} for park_id, driver_id in drivers]


def _rows(body, field: str, upstream: str) -> list[dict]:
    rows = body.get(field) if isinstance(body, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise UpstreamUnavailable(f"{upstream} answered an unexpected body")
    return rows


def _key(row: dict) -> Driver | None:
    park_id, driver_id = row.get("park_id"), row.get("driver_profile_id")
    return (park_id, driver_id) if isinstance(park_id, str) and isinstance(driver_id, str) else None


def licence_pd_ids(drivers: list[Driver]) -> dict[Driver, str | None]:
    """POST /v1/driver/profiles/retrieve: each profile's driver_license_pd_id (None: no profile / no licence)."""
    found: dict[Driver, str | None] = {}
    for chunk in _chunks(drivers):
        body = http.call_json(DRIVER_PROFILES, "POST", "/v1/driver/profiles/retrieve",
                              json={"drivers": _pairs(chunk)}, idempotency_key=http.fresh_key())
        for row in _rows(body, "profiles", DRIVER_PROFILES):
            key = _key(row)
            pd_id = row.get("driver_license_pd_id")
            if key in chunk:
                found[key] = pd_id if isinstance(pd_id, str) and pd_id else None
        for key in chunk:
            found.setdefault(key, None)  # not in the answer: no such profile
    return found


def licence_number(pd_id: str) -> str | None:
    """POST /v1/driver_licenses/retrieve: the licence number behind a pd_id (None: personal does not know it)."""
    try:
        body = http.call_json(PERSONAL, "POST", "/v1/driver_licenses/retrieve", json={"id": pd_id},
                              idempotency_key=http.fresh_key())
    except UpstreamRejected as error:
        if error.upstream_status == 404:
            return None
        raise
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise UpstreamUnavailable("personal answered an unexpected body")
    return value


def positions(drivers: list[Driver]) -> dict[Driver, tuple[float, float] | None]:
    """POST /v2/positions: the drivers' last known positions [lon, lat] (None: unknown to trackstory)."""
    found: dict[Driver, tuple[float, float] | None] = {}
    for chunk in _chunks(drivers):
        body = http.call_json(DRIVER_TRACKSTORY, "POST", "/v2/positions", json={"drivers": _pairs(chunk)},
                              idempotency_key=http.fresh_key())
        for row in _rows(body, "results", DRIVER_TRACKSTORY):
            key, position = _key(row), row.get("position")
            if key in chunk and isinstance(position, list) and len(position) == 2 \
                    and all(isinstance(v, (int, float)) for v in position):
                found[key] = (float(position[0]), float(position[1]))
        for key in chunk:
            found.setdefault(key, None)
    return found


def categories(drivers: list[Driver]) -> dict[Driver, list[str]]:
    """POST /v2/aggregation/categories: the categories each driver works in ([] for an unknown driver)."""
    found: dict[Driver, list[str]] = {}
    for chunk in _chunks(drivers):
        body = http.call_json(DRIVER_CATEGORIES, "POST", "/v2/aggregation/categories",
                              json={"drivers": _pairs(chunk)}, idempotency_key=http.fresh_key())
        for row in _rows(body, "drivers", DRIVER_CATEGORIES):
            key, names = _key(row), row.get("categories")
            if key in chunk and isinstance(names, list):
                found[key] = [name for name in names if isinstance(name, str)]
        for key in chunk:
            found.setdefault(key, [])
    return found
