"""Payloads of the courier screens (design doc 003, part 3): queries, constructor screens, actions."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints

from chalicelib.core.schema import Schema

# A cargo claim id (hex in the real API; anything id-like is accepted, nothing else reaches the lookups).
ClaimId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
# A route point id: an integer in the cargo API (validated as one before any lookup; compared as text).
PointId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]
CellId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


class _Query(Schema):
    model_config = ConfigDict(extra="forbid")


class ClaimQuery(_Query):
    cargo_ref_id: ClaimId


class PointQuery(_Query):
    cargo_ref_id: ClaimId
    point_id: PointId


class CellQuery(_Query):
    cargo_ref_id: ClaimId
    cell_id: CellId


# --- answers -----------------------------------------------------------------------------------------

class Action(Schema):
    type: str
    mode: str | None = None  # battery_exchange only: "pickup" (A) or "return" (C)


class StateActionsOut(Schema):
    """What cargo-orders shows the courier at a point (`actions` of its cargo/state)."""

    actions: list[Action]


class ConstructorItem(Schema):
    """One item of a Taximeter constructor screen. The doc leaves the format open ("TODO формат конструктора"):
    type header | text | counter | button; a button carries `payload` {type, method?, url?}."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    title: str | None = None
    value: int | None = None
    payload: dict[str, Any] | None = None


class ScreenOut(Schema):
    constructor_items: list[ConstructorItem]


class ActionOut(Schema):
    """Answer of a courier action (find_vehicle, vehicle_not_found, open_battery_door, vehicle_destroyed)."""

    status: str
    message: str


class PointCheckOut(Schema):
    status: str  # "done"


class HandoverOut(Schema):
    cell_id: str
    handed_over: bool
