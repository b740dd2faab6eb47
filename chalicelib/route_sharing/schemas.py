"""Payloads that cross the service's boundary: queue messages, routes, and its runtime configs."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from chalicelib.core.schema import Schema, UtcDatetime
from chalicelib.core import config

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
SharingKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,128}$")]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# An order's phones: doc 000 saves the phone "if the order has one", so none is a well-formed order (its key
# still serves the shared-route pages). A cargo claim is registered FOR its recipients: it needs one.
OrderPhoneIds = Annotated[list[NonEmpty], Field(min_length=0, max_length=5), AfterValidator(_unique)]
PhoneIds = Annotated[list[NonEmpty], Field(min_length=1, max_length=5), AfterValidator(_unique)]


class SaveKeyMessage(Schema):
    """Queue order_route_sharing_save_key: an order was created; share it with these phones."""

    model_config = ConfigDict(extra="ignore")

    order_id: NonEmpty
    tariff_class: NonEmpty
    # The recipient at point B; for third-party orders also the sender at A; none when the order has none.
    phone_ids: OrderPhoneIds = []
    corp_client_id: NonEmpty | None = None
    sharing_key: SharingKey | None = None
    created_at: UtcDatetime


class FinishOrderMessage(Schema):
    """Queue order_route_sharing_finish_order: the order finished (completed, cancelled, ...)."""

    model_config = ConfigDict(extra="ignore")

    order_id: NonEmpty
    finished_at: UtcDatetime
    # Optional: processing sends finishes for every order; with it, a finish of an unshared tariff that
    # arrives before (or without) any save leaves nothing behind.
    tariff_class: NonEmpty | None = None


class PhoneHeaders(Schema):
    phone_id: NonEmpty = Field(alias="x-yataxi-phoneid")


class SharingKeysOut(Schema):
    sharing_keys: list[str]


class SharingKeyQuery(Schema):
    sharing_key: SharingKey


class CorpInfo(Schema):
    name: str


class CorpInfoOut(Schema):
    corp_info: CorpInfo


class SharedRouteQuery(Schema):
    key: SharingKey


class SharedRouteInfo(Schema):
    """The protocol's sharedroute answer, passed through, plus the enrichment this service adds."""

    model_config = ConfigDict(extra="allow")

    status: str | None = None
    popup_title: str | None = None
    status_title: str | None = None
    status_icon: str | None = None
    client_flags: dict[str, bool] | None = None
    corp_info: CorpInfo | None = None


class SharedRouteTrack(Schema):
    model_config = ConfigDict(extra="allow")


# A claim is stored as the order "cargo_claim:<claim_id>" (service.cargo_claim_order_id), whose id is a NonEmpty.
CARGO_CLAIM_PREFIX = "cargo_claim:"
ClaimId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128 - len(CARGO_CLAIM_PREFIX))]


class CargoClaimIn(Schema):
    claim_id: ClaimId
    phone_ids: PhoneIds
    corp_client_id: NonEmpty | None = None


class CargoClaimOut(Schema):
    claim_id: str
    sharing_key: str


# --- runtime configs -------------------------------------------------------------------------------

class StatusText(Schema):
    title: str
    icon: str


class SharedRouteTexts(Schema):
    """Texts of the recipient's screen by tariff class and order status."""

    popup_titles: dict[str, str]
    statuses: dict[str, dict[str, StatusText]]
    fallback: StatusText


_DEFAULT_STATUSES = {
    "search": {"title": "Ищем курьера", "icon": "express_search_icon"},
    "driving": {"title": "Магазин собирает заказ", "icon": "express_shared_icon"},
    "waiting": {"title": "Курьер забирает заказ", "icon": "express_shared_icon"},
    "transporting": {"title": "Курьер в пути", "icon": "express_transporting_icon"},
    "complete": {"title": "Заказ доставлен", "icon": "express_complete_icon"},
    "cancelled": {"title": "Заказ отменён", "icon": "express_cancelled_icon"},
}

TARIFF_CLASSES = config.define(
    "order_route_sharing_tariff_classes", list[NonEmpty], ["express", "courier"],
    "Tariff classes whose orders are shared with their recipients; other orders are dropped.",
)
KEEP_AFTER_FINISH_HOURS = config.define(
    "order_route_sharing_keep_after_finish_hours", Annotated[int, Field(ge=1, le=24 * 30)], 24,
    "How long a finished order stays visible to its recipients.",
)
CORP_NAMES = config.define(
    "order_route_sharing_corp_names", dict[NonEmpty, NonEmpty], {},
    "Seller name by corp_client_id, shown as the order's sender.",
)
SHOW_TRACK_STATUSES = config.define(
    "order_route_sharing_show_track_statuses", list[NonEmpty], ["driving", "waiting", "transporting"],
    "Order statuses in which the recipient sees the courier's track on the map.",
)
SCREEN_TEXTS = config.define(
    "order_route_sharing_screen_texts", SharedRouteTexts,
    {
        # Doc 000 wants the word "Доставка" in the top bar: "Курьер" would read as the tariff the user called.
        "popup_titles": {"express": "Доставка", "courier": "Доставка", "cargo": "Грузовой"},
        "statuses": {"express": _DEFAULT_STATUSES, "courier": _DEFAULT_STATUSES, "cargo": _DEFAULT_STATUSES},
        "fallback": {"title": "Доставка", "icon": "express_shared_icon"},
    },
    "Popup title per tariff class; status title and icon per tariff class and order status.",
)
MAX_ORDER_DAYS = config.define(
    "order_route_sharing_max_order_days", Annotated[int, Field(ge=1, le=90)], 7,
    "Safety net: a key whose finish never arrives disappears this many days after the order was created.",
)
