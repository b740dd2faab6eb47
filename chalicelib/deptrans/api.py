"""Deptrans HTTP routes: the driver's registry ID, and the incremental feeds for caches. Parse -> rules -> render."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import DRIVER, INTERNAL, Call, route

from . import bindings, feeds
from .schemas import (
    CACHE_FRESH_SECONDS, FEED_SAFETY_SECONDS, ID_PATTERN, BindIdIn, BoundOut, FeedQuery, IdUpdatesOut,
    StatusUpdatesOut,
)

bp = Blueprint(__name__)

ID_PATH = "/driver/v1/deptrans-status/v1/id"
FEEDS = "/deptrans-driver-status-integration/internal/v1"


@route(bp, ID_PATH, kind=DRIVER, response=BoundOut, errors=(404, 503), configs=(CACHE_FRESH_SECONDS,))
def get_registry_id(call: Call) -> BoundOut:
    """Whether the driver's licence has a registry ID bound (the ID itself is never returned)."""
    return BoundOut(bound=bindings.is_bound(call.identity))


@route(bp, ID_PATH, method="POST", kind=DRIVER, body=BindIdIn, response=BoundOut, errors=(404, 503),
       configs=(CACHE_FRESH_SECONDS, ID_PATTERN))
def bind_registry_id(call: Call) -> BoundOut:
    """Bind the driver's registry ID after KRT confirmed it belongs to his licence (400 id_mismatch if not)."""
    bindings.bind(call.identity, call.body.id)
    return BoundOut(bound=True)


@route(bp, FEEDS + "/id/updates", kind=INTERNAL, query=FeedQuery, response=IdUpdatesOut,
       configs=(FEED_SAFETY_SECONDS,))
def id_updates(call: Call) -> dict:
    """Bindings (licence pd_id, registry ID, profiles) changed since the cursor, oldest first."""
    return feeds.id_updates(call.query.cursor, call.query.limit)


@route(bp, FEEDS + "/status/updates", kind=INTERNAL, query=FeedQuery, response=StatusUpdatesOut,
       configs=(FEED_SAFETY_SECONDS,))
def status_updates(call: Call) -> dict:
    """KRT's latest session status per licence, for the licences answered since the cursor, oldest first."""
    return feeds.status_updates(call.query.cursor, call.query.limit)
