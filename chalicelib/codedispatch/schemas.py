"""Payloads that cross codedispatch's boundary: routes, the processing queue message, and its runtime configs.

Configuration lives in one place (design doc 004, item 5): four names, each typed.
- `code_dispatch` (the experiment 3.0 of item 4): the whole feature, chosen per call by area_id, park_id and
  driver_profile_id.
- `CODE_DISPATCH_ZONES_SETTINGS`: per area; the former CODE_DISPATCH_QUEUE_ZONES, CODE_DISPATCH_SETTINGS,
  CODE_DISPATCH_INSTRUCTIONS, CODE_DISPATCH_ORDER_EXPIRE_TIME and CODE_DISPATCH_DRIVER_DUE_OFFSET merged.
- `CODE_DISPATCH_GENERATOR_SETTINGS`: code length and alphabet, for generating AND for validating what a
  driver types, and the brute-force limit on typed codes (wrong codes per driver, area and window).
- `CODE_DISPATCH_PROCESSING_ENABLED`: the parts tied to order processing (assign, status, drivers-lookup).
Defaults are safe for production: the feature is off and no area is enabled. The local stack's demo values
are in local/demo_configs/codedispatch.json.
"""
from __future__ import annotations

import enum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from chalicelib.core.schema import Schema
from chalicelib.core import config

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
AreaId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# What a driver types: the format check against the generator settings happens in the service (it is a
# runtime config), here only a sane upper bound so nothing huge reaches it.
TypedCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


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
    # How long an order's code lives (the assignment's TTL), from the order's creation.
    order_expire_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 1800
    # Due time of a code-dispatch order = creation + this offset (ordercommit reads it from create's answer).
    driver_due_offset_seconds: Annotated[int, Field(ge=0, le=24 * 3600)] = 0


class GeneratorSettings(Schema):
    model_config = ConfigDict(extra="forbid")

    length: Annotated[int, Field(ge=2, le=16)] = 6
    alphabet: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{2,64}$")] = "0123456789"
    # Collisions with live codes of the area are retried with a new code this many times in all.
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 10
    # Brute-force guard: after this many wrong codes typed by one driver in one area within one window,
    # order/assign answers 429 too_many_attempts (to every code) until the window ends.
    max_wrong_codes: Annotated[int, Field(ge=1, le=1000)] = 10
    wrong_codes_window_seconds: Annotated[int, Field(ge=10, le=24 * 3600)] = 600

    @field_validator("alphabet")
    @classmethod
    def _distinct(cls, value: str) -> str:
        if len(set(value)) != len(value):
            raise ValueError("alphabet characters must be distinct")
        return value

    def accepts(self, code: str) -> bool:
        return len(code) == self.length and all(char in self.alphabet for char in code)


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
    "Per code-dispatch area: enabled, instructions, order expire time, driver due offset.",
)
GENERATOR_SETTINGS = config.define(
    "CODE_DISPATCH_GENERATOR_SETTINGS", GeneratorSettings, {},
    "Order code length and alphabet (generation and validation of typed codes), collision attempts, and the "
    "limit of wrong codes a driver may type in an area per window.",
)
PROCESSING_ENABLED = config.define(
    "CODE_DISPATCH_PROCESSING_ENABLED", bool, False,
    "Order processing by typed codes: order/assign, assignment/status and drivers-lookup.",
)
