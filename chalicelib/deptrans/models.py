"""Deptrans tables (the doc's deptrans.profiles, deptrans.session_statuses, deptrans.status_queue, its caches)
and the KRT token shared by every instance.

- deptrans_status_queue: one item per driver (`<park_id>/<driver_id>`): the newest status event (`version` =
  event time + status, compared in every write's condition) and what KRT was last told (`sent_line`,
  `sent_version`, `sent_id`). The doc's "queue entry" is the sparse `pending` index: an item is queued while
  it has `pending_shard`/`pending_key`; sending removes those two attributes, only if `version` is still the
  one that was sent. Keeping the item (rather than deleting it) is what lets a late replay of an older event
  be refused without a read: its version is below the stored one.
- deptrans_profiles: a licence's registry ID (key: driver_license_pd_id) and the profiles that used it.
- deptrans_session_statuses: KRT's answers (shift status, end), one row per sent change, kept 1-30 days.
- deptrans_driver_cache: the doc's in-memory caches over driver-profiles and driver-categories-api, kept in
  DynamoDB so every instance (and a cold start) has them when the upstream is down.
- deptrans_krt_token: KRT's access token, shared, with a refresh lease (one refresher at a time).

Profiles and session statuses carry `feed_shard` + `feed_key` for the incremental feeds (see feeds.py).
"""
from __future__ import annotations

import hashlib

from pynamodb.attributes import ListAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.attributes import UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.core.storage import Table, TableMeta

# Fixed forever: the shard of an item is part of the stored data (feeds read every shard).
FEED_SHARDS = 4
PENDING_SHARDS = 4


def shard_of(key: str, shards: int) -> str:
    return str(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % shards)


def driver_key(park_id: str, driver_id: str) -> str:
    return f"{park_id}/{driver_id}"


class PendingIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "pending"
        projection = AllProjection()

    pending_shard = UnicodeAttribute(hash_key=True)
    pending_key = UnicodeAttribute(range_key=True)


class StatusQueueEntry(Table):
    class Meta(TableMeta):
        table_name = "deptrans_status_queue"

    driver_key = UnicodeAttribute(hash_key=True)
    park_id = UnicodeAttribute()
    driver_id = UnicodeAttribute()
    status = UnicodeAttribute()
    version = UnicodeAttribute()  # "<event time, fixed-width UTC>#<status>"
    event_at = UTCDateTimeAttribute()
    # Present while queued (sparse index `pending`): pending_key == version when written.
    pending_shard = UnicodeAttribute(null=True)
    pending_key = UnicodeAttribute(null=True)
    # What KRT was last told for this driver, and under which registry ID (off line goes to that ID).
    sent_line = UnicodeAttribute(null=True)
    sent_version = UnicodeAttribute(null=True)
    sent_id = UnicodeAttribute(null=True)
    sent_pd_id = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    pending = PendingIndex()


class FeedIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "feed"
        projection = AllProjection()

    feed_shard = UnicodeAttribute(hash_key=True)
    feed_key = UnicodeAttribute(range_key=True)


class DriverProfile(Table):
    """deptrans.profiles: the registry ID bound to a licence (never returned to drivers)."""

    class Meta(TableMeta):
        table_name = "deptrans_profiles"

    licence_pd_id = UnicodeAttribute(hash_key=True)
    deptrans_id = UnicodeAttribute()
    profiles = UnicodeSetAttribute(null=True)  # "<park_id>/<driver_id>" of the profiles seen with the licence
    updated_at = UTCDateTimeAttribute()
    feed_shard = UnicodeAttribute()
    feed_key = UnicodeAttribute()

    feed = FeedIndex()


class SessionStatus(Table):
    """deptrans.session_statuses: KRT's answer to one sent change (history, TTL 1-30 days)."""

    class Meta(TableMeta):
        table_name = "deptrans_session_statuses"

    licence_pd_id = UnicodeAttribute(hash_key=True)
    change_key = UnicodeAttribute(range_key=True)  # "<version of the change>#<driver_key>": a re-send overwrites
    session_status = UnicodeAttribute()
    ended_at = UTCDateTimeAttribute(null=True)
    line_state = UnicodeAttribute()
    changed_at = UTCDateTimeAttribute()
    park_id = UnicodeAttribute()
    driver_id = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    feed_shard = UnicodeAttribute()
    feed_key = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)

    feed = FeedIndex()


class DriverCacheEntry(Table):
    """One upstream answer about one driver: kind "licence" (driver-profiles) or "categories"."""

    class Meta(TableMeta):
        table_name = "deptrans_driver_cache"

    driver_key = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(range_key=True)
    licence_pd_id = UnicodeAttribute(null=True)  # kind licence; absent = the profile has no licence
    categories = ListAttribute(of=UnicodeAttribute, null=True)  # kind categories
    fetched_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)


class KrtTokenItem(Table):
    class Meta(TableMeta):
        table_name = "deptrans_krt_token"

    name = UnicodeAttribute(hash_key=True)
    access_token = UnicodeAttribute(null=True)
    token_expires_at = NumberAttribute(null=True)  # epoch seconds
    refresh_owner = UnicodeAttribute(null=True)
    refresh_until = NumberAttribute(null=True)  # epoch seconds
    expires_ttl = TTLAttribute(null=True)
