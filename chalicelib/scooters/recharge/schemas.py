"""Payloads of the recharge flow: configs, the planning queue's message, and the upstreams' answers.

The configs the courier screens read too (the full charge) live here: the courier side may read the recharge
side, never the other way round."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, field_validator, model_validator

from chalicelib.core import config
from chalicelib.core.schema import EpochSecondsValue, Schema

# A depot id is namespaced by kind (doc: "grocery:123", "garage:321") so ids of two kinds never collide.
StoreId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(grocery|garage):[A-Za-z0-9_.-]{1,64}$")]
TaskId = Annotated[str, StringConstraints(min_length=3, max_length=300)]


def _lon_lat(value: list[float]) -> list[float]:
    lon, lat = value
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError("position is [lon, lat] in degrees")
    return [float(lon), float(lat)]


Position = Annotated[list[float], Field(min_length=2, max_length=2)]


class Contact(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    phone: Annotated[str, StringConstraints(min_length=3, max_length=32)]


class Depot(Schema):
    """A lavka or a garage: where a cabinet of charged batteries stands."""

    store_id: StoreId
    position: Position  # [lon, lat]
    address: str | None = None
    contact: Contact | None = None  # who answers at the depot (the claim's source/return contact)

    _check_position = field_validator("position")(_lon_lat)


class NearestParams(Schema):
    """Params of `nearest_with_available_acc`. A cabinet qualifies when it is within `max_distance_km` of the
    scooter (great circle) AND the courier's walk from it, at `walk_speed_kmh`, takes at most `max_walk_min`."""

    model_config = ConfigDict(defer_build=True, extra="ignore")
    max_distance_km: Annotated[float, Field(gt=0, le=500)] = 20.0
    max_walk_min: Annotated[float, Field(gt=0, le=24 * 60)] = 60.0
    walk_speed_kmh: Annotated[float, Field(gt=0, le=60)] = 5.0


NEAREST = "nearest_with_available_acc"
# The methods this build knows, and the params each takes.
ALGORITHM_PARAMS: dict[str, type[Schema]] = {NEAREST: NearestParams}


class RechargeAlgorithm(Schema):
    """`method` is read as a plain string: an unknown one is a configuration error found at planning time
    (logged, task retried later), not a value the config API refuses: the doc's experiment may name methods
    a newer build knows. A known method's params are checked here, at PUT, as the planner will read them, and
    a param it does not know is refused (a misspelt `max_walk_mins` would silently leave the default)."""

    method: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params_of_known_method(self) -> "RechargeAlgorithm":
        params_model = ALGORITHM_PARAMS.get(self.method)
        if params_model is not None:
            unknown = set(self.params) - set(params_model.model_fields)
            if unknown:
                raise ValueError(f"{self.method} takes no param {', '.join(sorted(unknown))}")
            params_model.model_validate(self.params)
        return self


class BatteryItem(Schema):
    title: str = "Аккумулятор для самоката"
    # A shared scooter's swappable battery (Ninebot-class, 36 V ~ 15 Ah): about 3.5 kg, 37 x 11 x 9 cm.
    weight_kg: Annotated[float, Field(gt=0, le=50)] = 3.5
    length_m: Annotated[float, Field(gt=0, le=2)] = 0.37
    width_m: Annotated[float, Field(gt=0, le=2)] = 0.11
    height_m: Annotated[float, Field(gt=0, le=2)] = 0.09
    cost_value: Annotated[str, StringConstraints(pattern=r"^\d+(\.\d{1,2})?$")] = "15000.00"
    cost_currency: Annotated[str, StringConstraints(min_length=3, max_length=3)] = "RUB"


class ClaimSettings(Schema):
    battery: BatteryItem = Field(default_factory=BatteryItem)
    taxi_class: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "courier"
    contact: Contact = Field(default_factory=lambda: Contact(name="Диспетчер самокатов", phone="+70000000000"))
    comment: str = "Замена аккумулятора в самокате"


class RetrySettings(Schema):
    """Delays of a rescheduled task (seconds). Each may exceed SQS's 15 minutes (the planner re-sends)."""

    no_cabinet: Annotated[int, Field(ge=1, le=7 * 86400)] = 600
    upstream_unavailable: Annotated[int, Field(ge=1, le=7 * 86400)] = 120
    claim_failed: Annotated[int, Field(ge=1, le=7 * 86400)] = 1800
    performer_not_found: Annotated[int, Field(ge=1, le=7 * 86400)] = 600
    config_error: Annotated[int, Field(ge=1, le=7 * 86400)] = 3600
    max_delay: Annotated[int, Field(ge=60, le=7 * 86400)] = 6 * 3600  # backoff cap for repeated failures


def _unique_stores(depots: list[Depot]) -> list[Depot]:
    """Checked at PUT: a store listed twice would be booked from under two positions."""
    ids = [depot.store_id for depot in depots]
    if len(set(ids)) != len(ids):
        raise ValueError("each store_id is listed once")
    return depots


DEPOTS = config.define(
    "scooters_depots", Annotated[list[Depot], Field(max_length=10_000), AfterValidator(_unique_stores)], [],
    "Depots (lavkas and garages) with a battery cabinet: [{\"store_id\": \"grocery:123\", \"position\": [lon, lat]}]."
    " Ids are namespaced grocery: / garage:.",
)
ALGORITHM_DEFAULT = {"method": "nearest_with_available_acc", "params": {"max_distance_km": 20, "max_walk_min": 60}}
CLAIM_SETTINGS = config.define(
    "scooters_claim_settings", ClaimSettings, {},
    "The recharge claim's battery item (real weight and size), tariff class and contact.",
)
RETRY_DELAYS = config.define(
    "scooters_recharge_retry_delays", RetrySettings, {},
    "Seconds before a recharge task is planned again, by reason.",
)


class ReconcileSettings(Schema):
    """ScootersReconcileClaims: a claim whose state nobody confirmed (an applied event, or a look of the reconciler)
    for `stale_after_seconds` is asked for with claims/info; at most `max_claims_per_run` a run (the oldest first,
    the rest the next run), `concurrency` calls at once."""

    stale_after_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] = 600
    max_claims_per_run: Annotated[int, Field(ge=1, le=10_000)] = 500
    concurrency: Annotated[int, Field(ge=1, le=32)] = 8


RECONCILE = config.define(
    "scooters_reconcile_settings", ReconcileSettings, {},
    "ScootersReconcileClaims: claims/info for open claims with no applied event for stale_after_seconds (600);"
    " max_claims_per_run (500), concurrency (8).",
)
EXCLUDED_TAGS = config.define(
    "scooters_finder_excluded_tags",
    Annotated[list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]], Field(max_length=50)],
    ["scooter_missing", "scooter_destroyed"],
    "Tags that keep a scooter out of recharging: the poll's filter excludes them, and a task whose scooter got one"
    " is given up at its next planning attempt.",
)
FULL_CHARGE = config.define(
    "scooters_full_charge_percent", Annotated[int, Field(ge=1, le=100)], 95,
    "\"Battery swapped\" means a different battery id charged at or above this percentage.",
)


class PlanMessage(Schema):
    """The planning queue's message: one task. `attempt` ties it to the task's planning attempt (an older
    attempt's message is dropped); `not_before` (epoch seconds) carries a delay beyond SQS's 15 minutes."""

    model_config = ConfigDict(defer_build=True, extra="ignore")
    task_id: TaskId
    attempt: Annotated[int, Field(ge=1)] = 1
    not_before: EpochSecondsValue | None = None


# --- upstream answers (extra fields ignored: upstreams add fields) --------------------------------------

class _Upstream(Schema):
    model_config = ConfigDict(defer_build=True, extra="ignore")


class ListedCar(_Upstream):
    car_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    tags: list[str] = Field(default_factory=list)


class CarList(_Upstream):
    cars: list[ListedCar]


class CarTag(_Upstream):
    tag_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    tag: str


class Battery(_Upstream):
    id: str
    level: float


class CarInfo(_Upstream):
    car_id: str
    position: Position
    battery: Battery | None = None
    tags: list[CarTag] = Field(default_factory=list)


class StoreAvailability(_Upstream):
    store_id: str
    cabinet_id: str
    available: int


class Availability(_Upstream):
    stores: list[StoreAvailability]


class Booking(_Upstream):
    book_id: Annotated[str, StringConstraints(min_length=1)]
    cabinet_id: str | None = None
    cell_ids: list[str] | None = None


class RoutePoint(_Upstream):
    id: int | str
    type: str
    external_order_id: str | None = None
    address: dict | None = None


class PerformerInfo(_Upstream):
    park_id: str | None = None
    driver_profile_id: str | None = None


class Claim(_Upstream):
    id: Annotated[str, StringConstraints(min_length=1)]
    status: str
    version: int
    revision: int | None = None
    items: list[dict] = Field(default_factory=list)
    route_points: list[RoutePoint] = Field(default_factory=list)
    current_point_id: int | str | None = None
    performer_info: PerformerInfo | None = None


class JournalEvent(_Upstream):
    operation_id: int | str | None = None
    claim_id: str
    change_type: str | None = None
    new_status: str | None = None
    updated_ts: str | None = None
    revision: int
    current_point_id: int | str | None = None
    resolution: str | None = None


class JournalPage(_Upstream):
    cursor: str | None = None
    events: list[JournalEvent] = Field(default_factory=list)


# The doc's experiment, chosen per scooter (kwargs: car_id, e.g. a percent of the fleet on another method).
ALGORITHM = config.experiment(
    "scooters_recharge_algorithm", RechargeAlgorithm, ALGORITHM_DEFAULT,
    "Experiment: how a cabinet is chosen for a discharged scooter: {\"method\": "
    "\"nearest_with_available_acc\", \"params\": {\"max_distance_km\": 20, \"max_walk_min\": 60}}. "
    "An unknown method is a configuration error (logged, the task retried later).",
    kwargs=("car_id",),
)
