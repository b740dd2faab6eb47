"""Payloads that cross codedispatch's boundary: routes, the processing queue message, and its runtime configs.

Configuration lives in one place (design doc 004, item 5): four names, each typed.
- `code_dispatch` (the experiment 3.0 of item 4): the whole feature, chosen per call by area_id, park_id and
  driver_profile_id.
- `CODE_DISPATCH_ZONES_SETTINGS`: per area; the former CODE_DISPATCH_QUEUE_ZONES, CODE_DISPATCH_SETTINGS,
  CODE_DISPATCH_INSTRUCTIONS, CODE_DISPATCH_ORDER_EXPIRE_TIME and CODE_DISPATCH_DRIVER_DUE_OFFSET merged.
- `CODE_DISPATCH_GENERATOR_SETTINGS`: code length and alphabet, for generating AND for validating what a
  driver types, and the brute-force limits on typed codes (wrong codes per driver and area, per window and
  per UTC day). An area's `code_length` in the zone settings lengthens its codes (an area under attack).
- `CODE_DISPATCH_PROCESSING_ENABLED`: the parts tied to order processing (assign, status, drivers-lookup).
Defaults are safe for production: the feature is off and no area is enabled. The local stack's demo values
are in local/demo_configs/codedispatch.json.
"""
from __future__ import annotations

import enum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from chalicelib.core.schema import Schema
from chalicelib.core import config

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
AreaId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# What a driver types: the format check against the generator settings happens in the service (it is a
# runtime config), here only a sane upper bound so nothing huge reaches it.
TypedCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# Every length a code can ever be generated with (the generator's, or an area's override).
MIN_CODE_LENGTH, MAX_CODE_LENGTH = 2, 16
CodeLength = Annotated[int, Field(ge=MIN_CODE_LENGTH, le=MAX_CODE_LENGTH)]
DAY_SECONDS = 24 * 3600
# The code space must be at least this many times what one driver may guess in an area per day (the daily
# wrong-code cap): one driver covers at most 1 % of an area's codes a day.
CODE_SPACE_PER_DAILY_GUESS = 100


class AssignmentStatus(str, enum.Enum):
    PENDING = "pending"  # waiting for a driver to type the code (boarding)
    PROCESSING = "processing"  # a driver typed it; the order is being processed for that driver
    ASSIGNED = "assigned"
    ERROR = "error"


# The only moves: forward along pending -> processing -> assigned | error.
TRANSITIONS: dict[AssignmentStatus, frozenset[AssignmentStatus]] = {
    AssignmentStatus.PENDING: frozenset({AssignmentStatus.PROCESSING}),
    AssignmentStatus.PROCESSING: frozenset({AssignmentStatus.ASSIGNED, AssignmentStatus.ERROR}),
    AssignmentStatus.ASSIGNED: frozenset(),
    AssignmentStatus.ERROR: frozenset(),
}

# How long the record is kept after a move INTO a status, at least (the record never expires before its code
# does, and a move never shortens it): processing must outlive order processing and drivers-lookup (their
# queue retries give up within minutes; an hour leaves room for a tracker outage), and a finished attempt
# keeps its change log a day for support (an errored one also until its code expires: typing the code again
# starts a new attempt). Fixed, not configs: they follow order processing's timing, not an area's.
KEEP_AFTER_MOVE = {
    AssignmentStatus.PROCESSING: 3600,
    AssignmentStatus.ASSIGNED: DAY_SECONDS,
    AssignmentStatus.ERROR: DAY_SECONDS,
}

DRIVER_NOT_FOUND_IN_TRACKER = "driver_not_found_in_tracker"

# error_code -> what the driver app (Taximeter) shows.
ERROR_MESSAGES: dict[str, str] = {
    # Typing the code again starts a new assignment attempt (service docstring): this advice works.
    DRIVER_NOT_FOUND_IN_TRACKER:
        "Не удалось определить ваше местоположение. Включите GPS и введите код заказа ещё раз.",
}
UNKNOWN_ERROR_MESSAGE = "Не удалось назначить заказ. Введите код заказа ещё раз или обратитесь в службу поддержки."


# --- routes -----------------------------------------------------------------------------------------

class CreateOrderIn(Schema):
    model_config = ConfigDict(extra="ignore")

    order_id: NonEmpty
    area_id: AreaId


class CreateOrderOut(Schema):
    code: str
    # What ordercommit used to read from the separate configs, now per area in one place.
    instructions: str | None = None
    driver_due_offset_seconds: int | None = None
    expires_at: str | None = None


class AssignOrderIn(Schema):
    model_config = ConfigDict(extra="ignore")

    code: TypedCode
    area_id: AreaId


class AssignOrderOut(Schema):
    order_id: str
    status: AssignmentStatus


class StatusQuery(Schema):
    order_id: NonEmpty


class StatusOut(Schema):
    order_id: str
    status: AssignmentStatus
    error_code: str | None = None
    error_message: str | None = None


class DriversLookupIn(Schema):
    model_config = ConfigDict(extra="ignore")

    order_id: NonEmpty


class LookupDriver(Schema):
    driver_id: str
    park_db_id: str
    driver_profile_id: str


class DriversLookupOut(Schema):
    order_id: str
    driver: LookupDriver


# --- queue message ----------------------------------------------------------------------------------

class OrderProcessingMessage(Schema):
    """Queue codedispatch_order_processing: a driver typed the order's code; push the order's processing."""

    model_config = ConfigDict(extra="ignore")

    order_id: NonEmpty
    area_id: AreaId
    driver_id: NonEmpty
    park_db_id: NonEmpty
    driver_profile_id: NonEmpty
    # The assignment attempt this push is for (a new one after an attempt ended in error).
    attempt: Annotated[int, Field(ge=1)] = 1


# --- runtime configs --------------------------------------------------------------------------------

class ZoneSettings(Schema):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    instructions: str = ""
    # How long an order's code can be typed, from the order's creation (while pending, also the record's life;
    # each status move then keeps the record as long as its new status needs: KEEP_AFTER_MOVE).
    order_expire_seconds: Annotated[int, Field(ge=60, le=7 * DAY_SECONDS)] = 1800
    # Due time of a code-dispatch order = creation + this offset (ordercommit reads it from create's answer).
    driver_due_offset_seconds: Annotated[int, Field(ge=0, le=DAY_SECONDS)] = 0
    # Longer codes in this area (e.g. under attack): new codes get max(generator length, this). Never shorter
    # than the generator's: its code-space check (which needs the alphabet, a config of its own) vouches for
    # that length. Codes already issued keep working until they expire (typed codes are checked against a
    # range of lengths, see GeneratorSettings.accepts).
    code_length: CodeLength | None = None

    @model_validator(mode="after")
    def _due_while_the_code_lives(self) -> "ZoneSettings":
        if self.driver_due_offset_seconds >= self.order_expire_seconds:
            raise ValueError("driver_due_offset_seconds must be shorter than order_expire_seconds: the driver is "
                             "due while the order's code can still be typed")
        return self


class GeneratorSettings(Schema):
    model_config = ConfigDict(extra="forbid")

    length: CodeLength = 6
    alphabet: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{2,64}$")] = "0123456789"
    # Collisions with live codes of the area are retried with a new code this many times in all.
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 10
    # Brute-force guard: after this many wrong codes typed by one driver in one area within one window,
    # order/assign answers 429 too_many_attempts (to every code) until the window ends.
    max_wrong_codes: Annotated[int, Field(ge=1, le=1000)] = 10
    wrong_codes_window_seconds: Annotated[int, Field(ge=10, le=DAY_SECONDS)] = 600
    # Lockout: a driver who has typed this many windows' limits of wrong codes in an area within one UTC day
    # (lockout_after_limits x max_wrong_codes: "hits the limit twice") gets 429 there until the day ends.
    lockout_after_limits: Annotated[int, Field(ge=1, le=24)] = 2

    @field_validator("alphabet")
    @classmethod
    def _distinct(cls, value: str) -> str:
        if len(set(value)) != len(value):
            raise ValueError("alphabet characters must be distinct")
        return value

    @model_validator(mode="after")
    def _limits_fit(self) -> "GeneratorSettings":
        if self.lockout_after_limits * self.wrong_codes_window_seconds > DAY_SECONDS:
            raise ValueError("lockout_after_limits windows of wrong_codes_window_seconds must fit in a day, or the "
                             "daily lockout could never be reached by hitting the window's limit")
        space, needed = len(self.alphabet) ** self.length, CODE_SPACE_PER_DAILY_GUESS * self.daily_wrong_codes
        if space < needed:
            raise ValueError(f"{space} codes ({len(self.alphabet)} characters ^ length {self.length}) are too few "
                             f"for {self.daily_wrong_codes} wrong codes per driver and day: at least {needed}")
        return self

    @property
    def daily_wrong_codes(self) -> int:
        """How many wrong codes one driver may type in one area per UTC day (then: locked out until it ends)."""
        return self.lockout_after_limits * self.max_wrong_codes

    def length_in(self, zone: ZoneSettings) -> int:
        """The length of new codes in the area: an area's override only ever lengthens them."""
        return max(self.length, zone.code_length or 0)

    def accepts(self, code: str) -> bool:
        """A typed code's format: characters of the alphabet, a length any code could have been issued with.

        A range, not the area's current length: codes issued before an area's length changed keep working
        until they expire, without remembering which lengths are still live. A code of a length no live code
        has is just a wrong code (looked up, 404, counted against the driver's limit)."""
        return MIN_CODE_LENGTH <= len(code) <= MAX_CODE_LENGTH and all(char in self.alphabet for char in code)


class Experiment(Schema):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False


# The kwargs every code-dispatch call evaluates the experiment with (a kwarg the call does not know, e.g. the
# driver at order/create, is missing there and matches no clause).
EXPERIMENT_KWARGS = ("area_id", "park_id", "driver_profile_id")
EXPERIMENT = config.experiment(
    "code_dispatch", Experiment, {"enabled": False},
    "The experiment that switches code dispatching on or off in all its forms (was plugin_code_dispatch), "
    "per area, park and driver.",
    kwargs=EXPERIMENT_KWARGS,
)
ZONES_SETTINGS = config.define(
    "CODE_DISPATCH_ZONES_SETTINGS", dict[AreaId, ZoneSettings], {},
    "Per code-dispatch area: enabled, instructions, order expire time, driver due offset, code length (only "
    "ever longer than the generator's).",
)
GENERATOR_SETTINGS = config.define(
    "CODE_DISPATCH_GENERATOR_SETTINGS", GeneratorSettings, {},
    "Order code length and alphabet (generation and validation of typed codes), collision attempts, and the "
    "limits of wrong codes a driver may type in an area: per window, and lockout_after_limits windows' worth "
    "per UTC day.",
)
PROCESSING_ENABLED = config.define(
    "CODE_DISPATCH_PROCESSING_ENABLED", bool, False,
    "Order processing by typed codes: order/assign, assignment/status and drivers-lookup.",
)
