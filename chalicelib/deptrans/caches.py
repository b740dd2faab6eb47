"""The doc's caches over driver-profiles (driver -> licence pd_id) and driver-categories-api, in DynamoDB.

An answer younger than deptrans_cache_fresh_seconds is used as is. An older one is refreshed from the
upstream; when the upstream is unavailable the old answer is used while it lives (CACHE_LIFE: the doc's
"answer from the cache while it has the driver"). A driver with neither a fresh answer nor a cached one is
left out of the result: the caller waits (the status entry stays queued). Reads are one BatchGetItem per
100 drivers; writes happen only on refresh. A refresh that finds a profile under another licence (or under one
for the first time) tells membership.py, which moves the profile between its licences.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable, TypeVar

from chalicelib.core import clock
from chalicelib.core.storage import is_live
from chalicelib.core.errors import AppError, describe
from chalicelib.core.logs import get_logger

from . import membership, upstreams
from .models import DriverCacheEntry, driver_key
from .schemas import CACHE_FRESH_SECONDS

log = get_logger(__name__)

CACHE_LIFE = dt.timedelta(days=7)
LICENCE, CATEGORIES = "licence", "categories"
Driver = upstreams.Driver
V = TypeVar("V")


def _read(drivers: list[Driver], kind: str) -> dict[Driver, DriverCacheEntry]:
    keys = {driver_key(*driver): driver for driver in drivers}
    found: dict[Driver, DriverCacheEntry] = {}
    for item in DriverCacheEntry.batch_get([(key, kind) for key in keys]):
        if is_live(item.expires_at):
            found[keys[item.driver_key]] = item
    return found


def _lookup(drivers: list[Driver], kind: str, fetch: Callable[[list[Driver]], dict[Driver, V]],
            value: Callable[[DriverCacheEntry], V], store: Callable[[DriverCacheEntry, V], None],
            prefer_fresh: bool, changed: Callable[[str, V | None, V, dt.datetime], None] | None = None
            ) -> dict[Driver, V]:
    drivers = list(dict.fromkeys(drivers))
    cached = _read(drivers, kind)
    fresh_after = clock.now() - dt.timedelta(seconds=CACHE_FRESH_SECONDS.get())
    answer = {d: value(item) for d, item in cached.items() if item.fetched_at >= fresh_after and not prefer_fresh}
    missing = [d for d in drivers if d not in answer]
    if not missing:
        return answer
    try:
        fetched = fetch(missing)
    except AppError as error:
        # Upstream down: what the cache still has is the answer; the rest waits.
        log.warning_event("deptrans.cache_fallback", kind=kind, drivers=len(missing), error=describe(error))
        answer.update({d: value(cached[d]) for d in missing if d in cached})
        return answer
    now = clock.now()
    if changed:
        # Before the cache moves on: a failure here leaves the old answer, and the next refresh tries again.
        for driver, result in fetched.items():
            old = value(cached[driver]) if driver in cached else None
            if old != result:
                changed(driver_key(*driver), old, result, now)
    with DriverCacheEntry.batch_write() as batch:
        for driver, result in fetched.items():
            item = DriverCacheEntry(driver_key=driver_key(*driver), kind=kind, fetched_at=now,
                                    expires_at=now + CACHE_LIFE)
            store(item, result)
            batch.save(item)
    answer.update(fetched)
    return answer


def _set_licence(item: DriverCacheEntry, pd_id: str | None) -> None:
    item.licence_pd_id = pd_id


def _set_categories(item: DriverCacheEntry, names: list[str]) -> None:
    item.categories = list(names)


def licences(drivers: list[Driver], prefer_fresh: bool = False) -> dict[Driver, str | None]:
    """Driver -> licence pd_id (None: the profile has none). Drivers absent from the result must wait."""
    return _lookup(drivers, LICENCE, upstreams.licence_pd_ids, lambda item: item.licence_pd_id, _set_licence,
                   prefer_fresh, membership.moved)


def categories(drivers: list[Driver]) -> dict[Driver, list[str]]:
    """Driver -> categories. Drivers absent from the result must wait."""
    return _lookup(drivers, CATEGORIES, upstreams.categories, lambda item: list(item.categories or []),
                   _set_categories, False)
