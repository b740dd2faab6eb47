"""Which profiles belong to a licence. The driver-profiles cache (caches.py) is the truth here: a profile is the
licence's when the cache's latest answer for it names that licence.

- The ID feed's `profiles` (deptrans_profiles.profiles) follow the cache: when a refresh finds a profile under
  another licence (or under one for the first time), it leaves the old licence's set and joins the new one's,
  and both rows move to the front of the feed (their consumers see both changed).
- The profile's line follows too: its status entry is queued again, so the sender takes its line out of the
  old licence and folds it into the new one (store.fold), even when no new event comes for hours.
- A binding lists, when it is made, every profile the cache has under the licence (the cache's `licence` index).
A profile whose cache entry expired (not seen for caches.CACHE_LIFE) stays listed: nothing says it moved.
"""
from __future__ import annotations

import datetime as dt

from chalicelib.core.storage import is_live

from .feeds import feed_fields
from .models import PENDING_SHARDS, DriverCacheEntry, DriverProfile, StatusQueueEntry, shard_of
from .store import update_if


def _feed_front(licence: str, now: dt.datetime) -> list:
    fields = feed_fields(licence, licence, now)
    return [DriverProfile.updated_at.set(now), DriverProfile.feed_shard.set(fields["feed_shard"]),
            DriverProfile.feed_key.set(fields["feed_key"])]


def moved(profile: str, old: str | None, new: str | None, now: dt.datetime) -> None:
    """The cache now puts `profile` under `new` (None: no licence), where it had `old` (None: nothing)."""
    if old == new:
        return
    if old:
        update_if(DriverProfile(licence_pd_id=old), [DriverProfile.profiles.delete({profile}), *_feed_front(old, now)],
                DriverProfile.licence_pd_id.exists() & DriverProfile.profiles.contains(profile))
    if new:
        update_if(DriverProfile(licence_pd_id=new), [DriverProfile.profiles.add({profile}), *_feed_front(new, now)],
                DriverProfile.licence_pd_id.exists() & ~DriverProfile.profiles.contains(profile))
    folded_elsewhere = StatusQueueEntry.licence_pd_id.does_not_exist() if new else StatusQueueEntry.licence_pd_id.exists()
    if new:
        folded_elsewhere = folded_elsewhere | (StatusQueueEntry.licence_pd_id != new)
    update_if(StatusQueueEntry(driver_key=profile),
            [StatusQueueEntry.pending_shard.set(shard_of(profile, PENDING_SHARDS)),
             StatusQueueEntry.pending_key.set(StatusQueueEntry.version)],
            StatusQueueEntry.version.exists() & folded_elsewhere)


def profiles_of(licence: str, also: str) -> set[str]:
    """The profiles the cache has under `licence`, and `also` (the cache index lags its table)."""
    found = {item.driver_key for item in DriverCacheEntry.by_licence.query(licence) if is_live(item.expires_at)}
    return found | {also}


def bind_actions(licence: str, deptrans_id: str, profiles: set[str], now: dt.datetime) -> list:
    return [DriverProfile.deptrans_id.set(deptrans_id), DriverProfile.profiles.set(profiles), *_feed_front(licence, now)]
