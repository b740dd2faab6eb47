"""Payloads that cross the service's boundary: the queue message, the tracking route, the upstream's
order, and the runtime configs / experiments of eats-orders-tracking's picker flow."""
from __future__ import annotations

import enum
from typing import Annotated

from pydantic import (
    AfterValidator, AliasChoices, ConfigDict, Field, StringConstraints, field_validator, model_validator,
)

from chalicelib.core.schema import Schema, UtcDatetime
from chalicelib.core import config

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
OrderNr = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=64)]


class ProcessingEventType(str, enum.Enum):
    STATUS_CHANGE = "STATUS_CHANGE"
    ITEM_ADD = "ITEM_ADD"
    ITEM_REPLACE = "ITEM_REPLACE"
    ITEM_SOFT_DELETE = "ITEM_SOFT_DELETE"
    ITEM_PICKED = "ITEM_PICKED"
    PICKER_PHONE_FORWARDING_READY = "PICKER_PHONE_FORWARDING_READY"


class OrderState(str, enum.Enum):
    """The picker order's status, in the order an order normally goes through them (cancelled last)."""

    new = "new"
    waiting_dispatch = "waiting_dispatch"
    dispatching = "dispatching"
    dispatch_failed = "dispatch_failed"
    assigned = "assigned"
    picking = "picking"
    waiting_confirmation = "waiting_confirmation"
    confirmed = "confirmed"
    picked_up = "picked_up"
    receipt_processing = "receipt_processing"
    receipt_rejected = "receipt_rejected"
    paid = "paid"
    packing = "packing"
    handing = "handing"
    complete = "complete"
    cancelled = "cancelled"


# Two events with the same created_at: the one further along the flow wins (cancelled beats everything).
STATUS_RANK = {state: index for index, state in enumerate(OrderState)}


class ExpiringPhone(Schema):
    model_config = ConfigDict(extra="forbid")  # the doc: additionalProperties: false

    phone: Phone
    expires_at: UtcDatetime


class PickerOrderMessage(Schema):
    """Queue eats_orders_tracking_picker_orders: an event of the picker's order (from procaas)."""

    model_config = ConfigDict(extra="ignore")

    event_type: ProcessingEventType
    order_nr: OrderNr
    order_status: OrderState
    place_id: NonEmpty
    customer_id: NonEmpty | None = None
    picker_id: NonEmpty | None = None
    customer_picker_phone_forwarding: ExpiringPhone | None = None
    created_at: UtcDatetime

    @model_validator(mode="after")
    def _phone_event_is_complete(self) -> "PickerOrderMessage":
        # Optional in the doc's schema, but a PICKER_PHONE_FORWARDING_READY without the phone, or without the
        # picker it belongs to, cannot be stored: a producer bug, so the message goes to the DLQ (and is logged).
        if self.event_type is ProcessingEventType.PICKER_PHONE_FORWARDING_READY:
            if self.customer_picker_phone_forwarding is None:
                raise ValueError("customer_picker_phone_forwarding is required for PICKER_PHONE_FORWARDING_READY")
            if self.picker_id is None:
                raise ValueError("picker_id is required for PICKER_PHONE_FORWARDING_READY")
        return self


# --- tracking route -----------------------------------------------------------------------------------

class TrackingQuery(Schema):
    order_nr: OrderNr


class TrackedOrderButtonContactType(str, enum.Enum):
    courier = "courier"
    place = "place"
    picker = "picker"


class TrackedOrderButtonPayload(Schema):
    contact_type: TrackedOrderButtonContactType
    phone: str


class TrackedOrderButton(Schema):
    type: str = "call"
    title: str
    payload: TrackedOrderButtonPayload


class TrackedOrderBanner(Schema):
    model_config = ConfigDict(populate_by_name=True)

    text: str
    # Banners are not clickable: appLink is always empty (the doc).
    app_link: str = Field("", serialization_alias="appLink", validation_alias=AliasChoices("appLink", "app_link"))


class TrackedOrder(Schema):
    """One tracked grocery order (flow type retail) as the order-tracking screen shows it."""

    order_nr: str
    status: OrderState
    title: str
    description: str
    buttons: list[TrackedOrderButton]
    banners: list[TrackedOrderBanner]


# --- upstream eats-picker-orders -----------------------------------------------------------------------

class UpstreamPickerOrder(Schema):
    """What GET /api/v1/order?eats_id= answers (inside "payload"); the fields this service needs."""

    model_config = ConfigDict(extra="ignore")

    eats_id: OrderNr
    status: OrderState = Field(validation_alias=AliasChoices("status", "state"))
    picker_id: NonEmpty | None = None
    status_updated_at: UtcDatetime | None = None
    # Fills a customer the events never named. Lenient: an odd value here is dropped, not the whole answer.
    customer_id: NonEmpty | None = None

    @field_validator("customer_id", mode="before")
    @classmethod
    def _blank_customer_is_none(cls, value):
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > 128:
            return None
        return value


# --- runtime configs and experiments -------------------------------------------------------------------

class TimeoutSettings(Schema):
    """Doc: an order in `status` for longer than `timeout` seconds is refreshed from eats-picker-orders."""

    model_config = ConfigDict(extra="forbid")

    status: OrderState
    timeout: Annotated[int, Field(ge=1, le=30 * 24 * 3600)]


class ScreenText(Schema):
    title: str
    description: str


class StatusTexts(Schema):
    """The tracking screen's default ("old logic") texts by order status."""

    by_status: dict[OrderState, ScreenText]
    fallback: ScreenText


class PlacePhones(Schema):
    """The doc does not say where the place's phone comes from: a config, by place_id with a default."""

    default: Phone
    by_place_id: dict[NonEmpty, Phone] = Field(default_factory=dict)


class PickerScreenTexts(Schema):
    call_place_title: str
    call_place_button: str
    call_picker_title: str
    call_picker_button: str
    banner: str
    paying_title: str


# Experiments (doc 001: "регулировать отдельным экспериментом"), chosen per call. The tracking screen's
# two behaviours are evaluated with the caller and the order; the refresh timeouts with the order (the
# periodic job has no caller: user_id there is the order's customer, when known).
TRACKING_KWARGS = ("user_id", "order_nr", "place_id")
REFRESH_KWARGS = ("order_nr", "place_id", "user_id")
def _one_timeout_per_status(settings: list[TimeoutSettings]) -> list[TimeoutSettings]:
    """Checked at PUT: two timeouts for one status would leave the updater to guess which one holds."""
    statuses = [setting.status for setting in settings]
    if len(set(statuses)) != len(statuses):
        raise ValueError("each status is listed once")
    return settings


StatusTimeouts = Annotated[list[TimeoutSettings], Field(max_length=50), AfterValidator(_one_timeout_per_status)]
STATUSES_TIMEOUT = config.experiment(
    "eats_orders_tracking_picker_statuses_timeout", StatusTimeouts, [],
    "Experiment: refresh an order from eats-picker-orders when it has stayed in a listed status for longer "
    "than `timeout` seconds. Orders in unlisted statuses are never refreshed. Kwargs: the order's order_nr, "
    "place_id and customer (user_id).",
    kwargs=REFRESH_KWARGS,
)
CALL_PLACE_ENABLED = config.experiment(
    "eats_orders_tracking_picker_call_place_enabled", bool, True,
    "Experiment: before picking, or without a valid picker phone, show 'call us' texts, button and banner. "
    "Kwargs: user_id (the caller), order_nr, place_id.",
    kwargs=TRACKING_KWARGS,
)
CALL_PICKER_ENABLED = config.experiment(
    "eats_orders_tracking_picker_call_picker_enabled", bool, True,
    "Experiment: while picking with a valid forwarded phone, show 'call the picker' texts, button and banner. "
    "Kwargs: user_id (the caller), order_nr, place_id.",
    kwargs=TRACKING_KWARGS,
)
RETENTION_DAYS = config.define(
    "eats_orders_tracking_picker_retention_days", Annotated[int, Field(ge=1, le=90)], 7,
    "Picker orders and picker phones are deleted (DynamoDB TTL) this many days after their last update.",
)
PLACE_PHONES = config.define(
    "eats_orders_tracking_place_phones", PlacePhones, {"default": "+78006001210"},
    "Phone of the 'Связаться с нами' button by place_id, with a default.",
)
PICKER_TEXTS = config.define(
    "eats_orders_tracking_picker_texts", PickerScreenTexts,
    {
        "call_place_title": "Забыли товар? Позвони нам, мы добавим его в корзину",
        "call_place_button": "Связаться с нами",
        "call_picker_title": "Забыли самое нужное? Просто позвоните сборщику и попросите добавить товар в заказ",
        "call_picker_button": "Позвонить сборщику",
        "banner": "Позвони нам, если забыл что-то купить. Мы все сделаем",
        "paying_title": "Стоим в очереди на кассу, скоро оплатим",
    },
    "Texts of the picker flow on the tracking screen (the doc's wording).",
)

_ACCEPTED = {"title": "Заказ принят", "description": "Скоро начнём собирать ваш заказ"}
_PICKING = {"title": "Собираем заказ", "description": "Сборщик уже собирает ваш заказ"}
_PAYING = {"title": "Оплачиваем заказ", "description": "Заказ собран, оплачиваем его"}
_PACKING = {"title": "Упаковываем заказ", "description": "Заказ оплачен, скоро передадим его курьеру"}
STATUS_TEXTS = config.define(
    "eats_orders_tracking_picker_status_texts", StatusTexts,
    {
        "by_status": {
            OrderState.new: _ACCEPTED, OrderState.waiting_dispatch: _ACCEPTED, OrderState.dispatching: _ACCEPTED,
            OrderState.dispatch_failed: _ACCEPTED, OrderState.assigned: _ACCEPTED,
            OrderState.picking: _PICKING, OrderState.waiting_confirmation: _PICKING,
            OrderState.confirmed: _PICKING,
            OrderState.picked_up: _PAYING, OrderState.receipt_processing: _PAYING,
            OrderState.receipt_rejected: _PAYING,
            OrderState.paid: _PACKING, OrderState.packing: _PACKING,
            OrderState.handing: {"title": "Передаём заказ курьеру", "description": "Курьер уже забирает заказ"},
            OrderState.complete: {"title": "Заказ доставлен", "description": "Приятного аппетита!"},
            OrderState.cancelled: {"title": "Заказ отменён", "description": "Деньги вернутся на карту"},
        },
        "fallback": {"title": "Заказ", "description": "Следим за вашим заказом"},
    },
    "Default ('old logic') title and description of the tracking screen by order status.",
)
