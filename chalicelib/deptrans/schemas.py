"""Payloads that cross the deptrans service's boundary: queue messages, routes, upstream answers, configs."""
from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from chalicelib.core import config
from chalicelib.core.schema import Schema, UtcDatetime

from .regions import DEFAULT_REGIONS, Region, unique_names

# Park and profile ids end up in keys ("<park_id>/<driver_id>") and logs: a closed alphabet, bounded length.
EntityId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class DriverStatus(str, enum.Enum):
    online = "online"
    busy = "busy"
    offline = "offline"


class LineState(str, enum.Enum):
    """What KRT cares about: is the driver taking orders (on line) or not."""

    on_line = "on_line"
    off_line = "off_line"


def line_state(status: DriverStatus | str) -> LineState:
    return LineState.off_line if DriverStatus(status) is DriverStatus.offline else LineState.on_line


# --- queue deptrans_contractor_status_events ------------------------------------------------------

class StatusEvent(Schema):
    """A contractor's status changed (standing in for the contractor-statuses-events topic)."""

    model_config = ConfigDict(extra="ignore")

    park_id: EntityId
    driver_id: EntityId
    status: DriverStatus
    updated_at: UtcDatetime


# --- driver routes ---------------------------------------------------------------------------------

class BindIdIn(Schema):
    # The format itself is a config (deptrans_id_pattern), checked in the service; this only bounds size.
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class BoundOut(Schema):
    bound: bool


# --- feeds -----------------------------------------------------------------------------------------

class FeedQuery(Schema):
    cursor: Annotated[str, StringConstraints(max_length=4096)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class FeedProfile(Schema):
    park_id: str
    driver_id: str


class IdUpdate(Schema):
    licence_pd_id: str
    id: str
    profiles: list[FeedProfile]
    updated_at: str


class IdUpdatesOut(Schema):
    items: list[IdUpdate]
    cursor: str


class StatusUpdate(Schema):
    licence_pd_id: str
    session_status: str
    ended_at: str | None = None
    line_state: str
    changed_at: str
    park_id: str
    driver_id: str
    updated_at: str


class StatusUpdatesOut(Schema):
    items: list[StatusUpdate]
    cursor: str


# --- upstream answers ------------------------------------------------------------------------------

class KrtToken(Schema):
    model_config = ConfigDict(extra="ignore")

    access_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    expires_in: Annotated[int, Field(ge=1, le=7 * 24 * 3600)]


class KrtVerifyAnswer(Schema):
    model_config = ConfigDict(extra="ignore")

    valid: bool


class KrtShift(Schema):
    model_config = ConfigDict(extra="ignore")

    status: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    ends_at: UtcDatetime | None = None


class KrtLineStateAnswer(Schema):
    model_config = ConfigDict(extra="ignore")

    shift: KrtShift


class KrtCredentials(Schema):
    model_config = ConfigDict(extra="ignore")

    client_id: Annotated[str, StringConstraints(min_length=1)]
    client_secret: Annotated[str, StringConstraints(min_length=1)]


# --- runtime configs -------------------------------------------------------------------------------

def _compiles(pattern: str) -> str:
    """Checked at PUT: a pattern that does not compile would fail every ID bind (bindings.py matches with it)."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error.msg}") from None
    return pattern


ID_PATTERN = config.define(
    "deptrans_id_pattern", Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_compiles)],
    r"^[0-9A-Z]{6,32}$",
    "The format of a driver's KRT registry ID, checked before KRT is asked.",
)
REGIONS = config.define(
    "deptrans_regions",
    Annotated[list[Region], Field(min_length=1, max_length=100), AfterValidator(unique_names)], DEFAULT_REGIONS,
    "Named polygons ([lon, lat] rings: the outer one, then holes); a driver is reported on line to KRT only "
    "while his position is inside one of them (default: Moscow and Zelenograd, roughly).",
)
CATEGORIES = config.define(
    "deptrans_categories", list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
    ["econom", "comfort", "comfortplus"],
    "Line-state changes are sent to KRT only for drivers with at least one of these categories.",
)
SESSION_HISTORY_DAYS = config.define(
    "deptrans_session_history_days", Annotated[int, Field(ge=1, le=30)], 7,
    "How long every answer of KRT is kept in deptrans_session_history (1-30 days, DynamoDB TTL).",
)
RECHECKS_PER_RUN = config.define(
    "deptrans_rechecks_per_run", Annotated[int, Field(ge=0, le=1_000_000)], 50_000,
    "How many waiting or on-line licences a sender run re-checks at most (oldest check first), after the changes.",
)
SENDER_CONCURRENCY = config.define(
    "deptrans_sender_concurrency", Annotated[int, Field(ge=1, le=64)], 32,
    "How many KRT calls the status sender makes at once.",
)
CACHE_FRESH_SECONDS = config.define(
    "deptrans_cache_fresh_seconds", Annotated[int, Field(ge=0, le=24 * 3600)], 600,
    "Driver profile and category answers younger than this are used without asking the upstream again.",
)
FEED_SAFETY_SECONDS = config.define(
    "deptrans_feed_safety_seconds", Annotated[int, Field(ge=2, le=600)], 10,
    "Feeds never hand out changes younger than this: it covers index lag and writers' clock skew.",
)
