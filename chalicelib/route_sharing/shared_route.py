"""The keyed routes (no auth: the key is the secret): the recipient's screen and the seller of a key's order.

A key saved here is served while live and is 404 once expired (its item outlives its expiry). Before the move
these routes served ANY order's key (a ride shared by SMS link, an order older than this service): a key unknown
here is the protocol's to answer, 404 only when the protocol says so.
"""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.core.errors import NotFound, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import is_live

from . import upstreams
from .models import SharingKeyItem
from .schemas import CORP_NAMES, SCREEN_TEXTS, SHOW_TRACK_STATUSES

log = get_logger(__name__)


def _saved_key(sharing_key: str) -> SharingKeyItem | None:
    """The key's item if this service saved it and it is live; None if this service never saved it.
    A key saved here that has expired is NotFound (its item outlives its expiry: see models.SharingKeyItem)."""
    try:
        item = SharingKeyItem.get(sharing_key)
    except DoesNotExist:
        return None
    if not is_live(item.expires_at):
        raise NotFound("sharing key not found", code="sharing_key_not_found")
    return item


def live_key(sharing_key: str) -> SharingKeyItem:
    item = _saved_key(sharing_key)
    if item is None:
        raise NotFound("sharing key not found", code="sharing_key_not_found")
    return item


def _seller_name(corp_client_id: str | None) -> str | None:
    if not corp_client_id:
        return None
    return CORP_NAMES.get().get(corp_client_id)


def corp_info(sharing_key: str) -> str:
    """The seller's name for a key's order; NotFound when the order has no known seller."""
    name = _seller_name(live_key(sharing_key).corp_client_id)
    if name is None:
        raise NotFound("the order has no known seller", code="corp_info_not_found")
    return name


def _try(enrichment: str, key_item: SharingKeyItem | None, fn):
    """An enrichment that fails is left out: the recipient still sees the order."""
    try:
        return fn()
    except Exception as error:
        log.warning_event("route_sharing.enrichment_failed", enrichment=enrichment,
                          order_id=key_item.order_id if key_item else None, error=describe(error))
        return None


def _screen_texts(info: dict, tariff_class: str) -> None:
    texts = SCREEN_TEXTS.get()
    status_text = texts.statuses.get(tariff_class, {}).get(info.get("status") or "") or texts.fallback
    info["popup_title"] = texts.popup_titles.get(tariff_class, texts.fallback.title)
    info["status_title"] = status_text.title
    info["status_icon"] = status_text.icon


def _client_flags(info: dict, key_item: SharingKeyItem | None) -> None:
    info["client_flags"] = {
        # Corp orders show the seller instead of point A; person-to-person orders (and orders not saved here,
        # whose seller is unknown) show point A.
        "show_point_a": key_item is None or key_item.corp_client_id is None,
        "show_track": info.get("status") in SHOW_TRACK_STATUSES.get(),
    }


def _phone_gateway(info: dict, key_item: SharingKeyItem) -> None:
    driver = info.get("driver")
    if isinstance(driver, dict) and driver.get("call_mode") == "on_demand":
        driver["phone_gateway"] = upstreams.order_contact(key_item.order_id).model_dump(exclude_none=True)


def _corp_info(info: dict, key_item: SharingKeyItem) -> None:
    name = _seller_name(key_item.corp_client_id)
    if name:
        info["corp_info"] = {"name": name}


def shared_route_info(sharing_key: str) -> dict:
    """The protocol's sharedroute, enriched for the recipient's screen.

    Before the move these routes served ANY order's key (a ride shared by SMS link, an order older than this
    service): a key unknown here is the protocol's to answer (404 only when it says so), enriched with what
    needs no saved order. A key saved here that has expired is 404 without asking the protocol."""
    key_item = _saved_key(sharing_key)
    info = upstreams.shared_route(sharing_key)
    if key_item is None:
        # Tariff texts need the tariff, the courier's phone the order id, the seller the corp client: all
        # from the save. The track flag follows the protocol's status alone.
        _try("client_flags", None, lambda: _client_flags(info, None))
        return info
    for name, enrich in (("screen_texts", lambda: _screen_texts(info, key_item.tariff_class)),
                         ("client_flags", lambda: _client_flags(info, key_item)),
                         ("phone_gateway", lambda: _phone_gateway(info, key_item)),
                         ("corp_info", lambda: _corp_info(info, key_item))):
        _try(name, key_item, enrich)
    return info


def shared_route_track(sharing_key: str) -> dict:
    _saved_key(sharing_key)  # an expired key saved here is 404; an unknown one is the protocol's to answer
    return upstreams.shared_route_track(sharing_key)
