"""Incremental feeds for caches (driver-diagnostics, candidates): what changed since a cursor, in pages.

Index. Every feed item carries `feed_shard` (a hash of the item's owner key, 0..FEED_SHARDS-1, fixed forever)
and `feed_key` = "<write time in ms, 13 digits>#<item id>", and the GSI `feed` is (feed_shard, feed_key).
A single fixed partition would put every write of the table (~220/s of session statuses at peak) on one
index partition; a handful of shards spreads them while a page still costs a few Queries. The item id in the
key makes keys unique, so equal timestamps never hide one item behind another.

Cursor. One position per shard (the last key handed out), base64url JSON {"v": 1, "p": [...]}. A page asks the
shards for the rest of the limit in turn (an even share first, then what the quiet shards left), each Query
reading exactly the items it returns: the cost is the page, whatever the table's size. An item's changes
all live in one shard, in time order, so a consumer applying pages in order always ends on the latest
state. "Oldest first" holds within a page and, per item, across pages; between different items of different
shards it holds only roughly across pages (a strict global order would mean reading ahead in every shard and
throwing away what the page cannot take: up to shards x page items read per page). Caches keyed by item, the
doc's consumers, need the per-item order only.
No cursor = position "" everywhere = a full snapshot, paged the same way.

Never skipping a change. A write shows up in the index a little after it happened (the GSI is eventually
consistent) and its writer's clock may run behind ours. So a page never hands out keys newer than
"now - deptrans_feed_safety_seconds" (the horizon): a key below the horizon has been in the index long enough,
so no write can land behind a cursor later. Items rewritten later get a new, larger key (they reappear:
a consumer may see a change twice, never miss one). Rows whose TTL passed are filtered out after the read
(DynamoDB deletes them late); they are counted in the page's read cost, as they are on AWS.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
from typing import Any, Callable

from chalicelib.core import clock
from chalicelib.core.clock import utc_text
from chalicelib.core.errors import BadRequest

from .models import FEED_SHARDS, DriverProfile, SessionStatus, shard_of
from .schemas import FEED_SAFETY_SECONDS

_KEY = re.compile(r"^\d{13}#[^\x00]{1,512}$")


def feed_fields(owner_key: str, item_id: str, moment: dt.datetime) -> dict[str, str]:
    """The feed attributes of an item written at `moment` (the writer's clock)."""
    millis = int(clock.to_utc(moment).timestamp() * 1000)
    return {"feed_shard": shard_of(owner_key, FEED_SHARDS), "feed_key": f"{millis:013d}#{item_id}"}


def encode_cursor(positions: list[str]) -> str:
    raw = json.dumps({"v": 1, "p": positions}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[str]:
    if not cursor:
        return [""] * FEED_SHARDS
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." nested deep
        raise BadRequest("the cursor is malformed", code="invalid_cursor") from None
    positions = data.get("p") if isinstance(data, dict) and data.get("v") == 1 else None
    if not isinstance(positions, list) or len(positions) != FEED_SHARDS or not all(
            isinstance(p, str) and (p == "" or _KEY.match(p)) for p in positions):
        raise BadRequest("the cursor is malformed", code="invalid_cursor")
    return positions


@dataclasses.dataclass
class Page:
    items: list[Any]
    cursor: str
    items_read: int


def read_page(model, cursor: str | None, limit: int, live: Callable[[Any], bool] = lambda item: True) -> Page:
    """Up to `limit` items changed after the cursor, oldest first, and the next cursor."""
    positions = decode_cursor(cursor)
    horizon = clock.now() - dt.timedelta(seconds=FEED_SAFETY_SECONDS.get())
    # '$' sorts right after '#': every key written in the horizon's millisecond is <= upper.
    upper = f"{int(horizon.timestamp() * 1000):013d}$"
    collected: list[tuple[str, Any]] = []
    items_read = 0
    remaining = limit
    open_shards = list(range(FEED_SHARDS))
    while remaining > 0 and open_shards:
        share = -(-remaining // len(open_shards))  # ceil: the quiet shards' share goes to the busy ones next round
        for shard in list(open_shards):
            if remaining <= 0:
                break
            ask = min(share, remaining)
            got, read, last, exhausted = _query_shard(model, shard, positions[shard], upper, ask, live)
            items_read += read
            if last:
                positions[shard] = last
            collected.extend(got)
            remaining -= len(got)
            if exhausted:
                open_shards.remove(shard)
    collected.sort(key=lambda pair: pair[0])
    return Page(items=[item for _, item in collected], cursor=encode_cursor(positions), items_read=items_read)


def _query_shard(model, shard: int, after: str, upper: str, ask: int,
                 live: Callable[[Any], bool]) -> tuple[list[tuple[str, Any]], int, str, bool]:
    """Up to `ask` live items of one shard with after < feed_key <= upper: (items, read, last key read,
    exhausted). A dead row read still moves the shard's position on, or the next page would read it again."""
    # "after\x00" is the smallest string above `after`: BETWEEN is inclusive, the cursor is not.
    lower = after + "\x00" if after else "0"
    got: list[tuple[str, Any]] = []
    read, last = 0, ""
    if lower > upper:
        return got, read, last, True
    while len(got) < ask:
        want = ask - len(got)
        batch = list(model.feed.query(str(shard), model.feed_key.between(lower, upper), limit=want, page_size=want))
        read += len(batch)
        for item in batch:
            last = item.feed_key
            if live(item):
                got.append((item.feed_key, item))
        if len(batch) < want:
            return got, read, last, True
        lower = last + "\x00"
    return got, read, last, False


# --- the two feeds, rendered ----------------------------------------------------------------------------

def _profile_pairs(profiles) -> list[dict]:
    pairs = []
    for value in sorted(profiles or ()):
        park_id, _, driver_id = value.partition("/")
        pairs.append({"park_id": park_id, "driver_id": driver_id})
    return pairs


def id_updates(cursor: str | None, limit: int) -> dict:
    page = read_page(DriverProfile, cursor, limit)
    return {"cursor": page.cursor, "items": [
        {"licence_pd_id": item.licence_pd_id, "id": item.deptrans_id, "profiles": _profile_pairs(item.profiles),
         "updated_at": utc_text(item.updated_at)} for item in page.items]}


def status_updates(cursor: str | None, limit: int) -> dict:
    # One row per licence, its feed key moved by every answer: a snapshot reads each licence once.
    page = read_page(SessionStatus, cursor, limit)
    return {"cursor": page.cursor, "items": [
        {"licence_pd_id": item.licence_pd_id, "session_status": item.session_status,
         "ended_at": utc_text(item.ended_at) if item.ended_at else None, "line_state": item.line_state,
         "changed_at": utc_text(item.changed_at), "park_id": item.park_id, "driver_id": item.driver_id,
         "updated_at": utc_text(item.updated_at)} for item in page.items]}
