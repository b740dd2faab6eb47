"""Deptrans tables (the doc's deptrans.profiles, deptrans.session_statuses, deptrans.status_queue, its caches),
the licences' line states and the KRT token shared by every instance.

- deptrans_status_queue: one item per profile (`<park_id>/<driver_id>`): its newest status event (`version` =
  event time + status, compared in every write's condition) and the licence it was last folded into. The doc's
  "queue entry" is the sparse `pending` index: an item is queued while it has `pending_shard`/`pending_key`;
  the sender removes those two attributes once the event is folded into its licence, only if `version` is still
  the one folded. Keeping the item (rather than deleting it) lets a late replay be refused without a read.
- deptrans_line_states: one item per licence (KRT's ID belongs to the licence): the newest status of each of
  its profiles, the flip KRT is being told and what KRT acknowledged (the flow: lines.py), and the sparse
  `due` index of licences the sender must look at (changes first, then re-checks, oldest first).
- deptrans_profiles: a licence's registry ID (key: driver_license_pd_id) and its current profiles.
- deptrans_session_statuses: KRT's latest answer per licence (shift status, its end), with the doc's indexes on
  updated_at (`feed`) and ended_at (`ended`); deptrans_session_history keeps every answer 1-30 days (config).
- deptrans_driver_cache: the doc's in-memory caches over driver-profiles and driver-categories-api, kept in
  DynamoDB so every instance (and a cold start) has them when the upstream is down; index `licence` lists the
  profiles the cache puts under a licence.
- deptrans_krt_token: KRT's access token, shared, with a refresh lease (one refresher at a time).

Profiles and session statuses carry `feed_shard` + `feed_key` for the incremental feeds (see feeds.py).
"""
from __future__ import annotations

import hashlib

from pynamodb.attributes import (
    BooleanAttribute, ListAttribute, MapAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute,
    UnicodeSetAttribute, UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.core.storage import Table, TableMeta

# Fixed forever: the shard of an item is part of the stored data (feeds and queues read every shard).
FEED_SHARDS = 4
PENDING_SHARDS = 4
DUE_SHARDS = 4


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
    # The licence this profile's line was last folded into: where to take it from when the profile moves.
    licence_pd_id = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    pending = PendingIndex()


class DueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "due"
        projection = AllProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class LicenceLine(Table):
    """A licence's line state as a flow (states and transitions: lines.py)."""

    class Meta(TableMeta):
        table_name = "deptrans_line_states"

    licence_pd_id = UnicodeAttribute(hash_key=True)
    lines = MapAttribute(null=True)  # driver_key -> version ("<time>#<status>") of the profile's newest event
    line_news = BooleanAttribute(null=True)  # a line changed since the licence was last judged
    # The flip decided last (flip_seq > acked_seq: KRT may not have it yet, it is re-sent with the same key).
    flip_seq = NumberAttribute(null=True)
    flip_state = UnicodeAttribute(null=True)
    flip_id = UnicodeAttribute(null=True)
    flip_key = UnicodeAttribute(null=True)  # uuid4, KRT's event_id and the idempotency key of every re-send
    flip_changed_at = UTCDateTimeAttribute(null=True)
    flip_profile = UnicodeAttribute(null=True)
    # What KRT acknowledged last (only ever moves to a higher flip_seq).
    acked_seq = NumberAttribute(null=True)
    acked_state = UnicodeAttribute(null=True)
    acked_id = UnicodeAttribute(null=True)
    acked_at = UTCDateTimeAttribute(null=True)
    rejected_seq = NumberAttribute(null=True)  # the flip KRT refused: not decided again until the target changes
    wait_reason = UnicodeAttribute(null=True)
    rev = NumberAttribute(null=True)  # +1 on every write: decisions are conditional on the revision they read
    due_shard = UnicodeAttribute(null=True)
    due_key = UnicodeAttribute(null=True)  # "0#<time>": a change; "1#<time>": a re-check
    expires_at = TTLAttribute(null=True)

    due = DueIndex()


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
    profiles = UnicodeSetAttribute(null=True)  # "<park_id>/<driver_id>": the licence's profiles in the cache
    updated_at = UTCDateTimeAttribute()
    feed_shard = UnicodeAttribute()
    feed_key = UnicodeAttribute()

    feed = FeedIndex()


class EndedIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "ended"
        projection = AllProjection()

    ended_shard = UnicodeAttribute(hash_key=True)
    ended_key = UnicodeAttribute(range_key=True)  # "<ended_at in ms, 13 digits>#<licence pd_id>"


class SessionStatus(Table):
    """deptrans.session_statuses: KRT's latest answer for a licence, one row per licence. Indexes: `feed`
    (updated_at, the status feed) and `ended` (ended_at, sparse: shifts with an end)."""

    class Meta(TableMeta):
        table_name = "deptrans_session_statuses"

    licence_pd_id = UnicodeAttribute(hash_key=True)
    flip_seq = NumberAttribute()  # the flip answered: an older one never overwrites a newer one
    session_status = UnicodeAttribute()
    ended_at = UTCDateTimeAttribute(null=True)
    line_state = UnicodeAttribute()
    changed_at = UTCDateTimeAttribute()
    park_id = UnicodeAttribute()
    driver_id = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    feed_shard = UnicodeAttribute()
    feed_key = UnicodeAttribute()
    ended_shard = UnicodeAttribute(null=True)
    ended_key = UnicodeAttribute(null=True)

    feed = FeedIndex()
    ended = EndedIndex()


class SessionHistory(Table):
    """Every answer KRT gave, per licence, kept deptrans_session_history_days (1-30)."""

    class Meta(TableMeta):
        table_name = "deptrans_session_history"

    licence_pd_id = UnicodeAttribute(hash_key=True)
    change_key = UnicodeAttribute(range_key=True)  # "<flip_seq, 12 digits>#<flip key>": a re-send overwrites
    session_status = UnicodeAttribute()
    ended_at = UTCDateTimeAttribute(null=True)
    line_state = UnicodeAttribute()
    changed_at = UTCDateTimeAttribute()
    park_id = UnicodeAttribute()
    driver_id = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)


class LicenceIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "licence"
        projection = AllProjection()

    licence_pd_id = UnicodeAttribute(hash_key=True)
    driver_key = UnicodeAttribute(range_key=True)


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

    by_licence = LicenceIndex()  # sparse: licence answers only


class KrtTokenItem(Table):
    class Meta(TableMeta):
        table_name = "deptrans_krt_token"

    name = UnicodeAttribute(hash_key=True)
    access_token = UnicodeAttribute(null=True)
    token_expires_at = NumberAttribute(null=True)  # epoch seconds
    refresh_owner = UnicodeAttribute(null=True)
    refresh_until = NumberAttribute(null=True)  # epoch seconds
    expires_ttl = TTLAttribute(null=True)
