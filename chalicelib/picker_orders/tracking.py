"""The customer's order-tracking screen (design doc 001): texts, call buttons and banners.

Which texts, buttons and banners the customer sees follows from the order's progress (status history and
status) and the picker's forwarded phone, chosen by two experiments per caller and order. Only the order's
customer sees it: one customer never learns about another's orders.
"""
from __future__ import annotations

import enum

from chalicelib.core import clock
from chalicelib.core.errors import NotFound, UpstreamRejected
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import get_live

from . import upstreams
from .events import fill_customer
from .models import PickerOrder, PickerPhone
from .schemas import (
    CALL_PICKER_ENABLED, CALL_PLACE_ENABLED, PICKER_TEXTS, PLACE_PHONES, STATUS_TEXTS, OrderState, ScreenText,
    TrackedOrder, TrackedOrderBanner, TrackedOrderButton, TrackedOrderButtonContactType, TrackedOrderButtonPayload,
)

log = get_logger(__name__)


class Phase(str, enum.Enum):
    BEFORE_PICKING = "before_picking"
    PICKING = "picking"
    PAYING = "paying"  # picked up, not paid yet
    DONE = "done"  # paid or later, or cancelled: the default texts


_PICKING = {OrderState.picking, OrderState.waiting_confirmation, OrderState.confirmed}
_PAYING = {OrderState.picked_up, OrderState.receipt_processing, OrderState.receipt_rejected}
# Cancelled is here too: the doc's rules do not name it, and "call us to add a forgotten item" on a cancelled
# order would be wrong, so a cancelled order shows its default texts.
_DONE = {OrderState.paid, OrderState.packing, OrderState.handing, OrderState.complete, OrderState.cancelled}


def phase(order: PickerOrder) -> Phase:
    """The doc decides by status_history; the status counts too (a refreshed order may lack history)."""
    status = OrderState(order.status)
    if order.paid_at is not None or status in _DONE:
        return Phase.DONE
    if order.picked_up_at is not None or status in _PAYING:
        return Phase.PAYING
    if order.picking_at is not None or status in _PICKING:
        return Phase.PICKING
    return Phase.BEFORE_PICKING


def _live_order(order_nr: str) -> PickerOrder:
    order = get_live(PickerOrder, order_nr)
    if order is None or order.status is None:
        # No status yet: a stub that a phone event created to keep the customer; no status event arrived.
        raise NotFound("order not found", code="order_not_found")
    return order


def valid_picker_phone(order: PickerOrder) -> str | None:
    """The current picker's forwarded phone while it is valid. The doc's `now() < updated_at + phone_ttl`
    treats the TTL as a duration; the message carries the phone's absolute expiry, which is what counts."""
    if not order.picker_id:
        return None
    phone = get_live(PickerPhone, order.order_nr, order.picker_id)
    if phone is None or clock.now() >= phone.phone_expires_at:
        return None
    return phone.phone


def _place_phone(place_id: str | None) -> str:
    phones = PLACE_PHONES.get()
    return phones.by_place_id.get(place_id or "", phones.default)


def _customer_of(order: PickerOrder) -> str | None:
    """The order's customer: the one its events named first, else the one eats-picker-orders names (stored,
    so it is asked once). None when nobody names one. Upstream down: UpstreamUnavailable (503), so an order
    whose customer is unknown is never shown on a guess (fail closed)."""
    if order.customer_id is not None:
        return order.customer_id
    try:
        fresh = upstreams.fetch_order(order.order_nr)
    except UpstreamRejected:  # it does not know the order (404) or refuses: nobody is named
        log.event("picker_orders.customer_unknown", order_nr=order.order_nr, source="upstream_rejected")
        return None
    if fresh.customer_id is None:
        log.event("picker_orders.customer_unknown", order_nr=order.order_nr, source="upstream_names_none")
        return None
    if not fill_customer(order.order_nr, fresh.customer_id, create=False):
        order.refresh()  # an event named the customer meanwhile: the first one sticks
        return order.customer_id
    log.event("picker_orders.customer_fetched", order_nr=order.order_nr)
    return fresh.customer_id


def tracked_order(order_nr: str, user_id: str) -> TrackedOrder:
    order = _live_order(order_nr)
    customer = _customer_of(order)
    if customer is None or customer != user_id:
        # The same answer as for an unknown order: one customer never learns about another's orders, and an
        # order nobody has named a customer of is nobody's yet (its screen can carry the picker's phone).
        log.event("picker_orders.tracking_customer_mismatch", order_nr=order_nr, customer_known=customer is not None)
        raise NotFound("order not found", code="order_not_found")
    status = OrderState(order.status)
    texts = PICKER_TEXTS.get()
    current = phase(order)
    buttons: list[TrackedOrderButton] = []
    banners: list[TrackedOrderBanner] = []
    screen: ScreenText | None = None

    picker_phone = None
    # The experiments are chosen for this caller and order.
    kwargs = {"user_id": user_id, "order_nr": order.order_nr, "place_id": order.place_id}
    if current is Phase.PICKING and CALL_PICKER_ENABLED.get(**kwargs):
        picker_phone = valid_picker_phone(order)
    if picker_phone is not None:
        screen = ScreenText(title=texts.call_picker_title, description=texts.call_picker_title)
        buttons.append(_call_button(texts.call_picker_button, TrackedOrderButtonContactType.picker, picker_phone))
        banners.append(TrackedOrderBanner(text=texts.banner))
    elif current in (Phase.BEFORE_PICKING, Phase.PICKING) and CALL_PLACE_ENABLED.get(**kwargs):
        # Also while picking without a valid picker phone (not generated yet, expired, or the picker
        # experiment switched off): the customer can still ask to add a forgotten item.
        screen = ScreenText(title=texts.call_place_title, description=texts.call_place_title)
        buttons.append(_call_button(texts.call_place_button, TrackedOrderButtonContactType.place,
                                    _place_phone(order.place_id)))
        banners.append(TrackedOrderBanner(text=texts.banner))
    elif current is Phase.PAYING:
        screen = ScreenText(title=texts.paying_title, description=texts.paying_title)
    if screen is None:
        defaults = STATUS_TEXTS.get()
        screen = defaults.by_status.get(status, defaults.fallback)
    return TrackedOrder(order_nr=order.order_nr, status=status, title=screen.title, description=screen.description,
                        buttons=buttons, banners=banners)


def _call_button(title: str, contact_type: TrackedOrderButtonContactType, phone: str) -> TrackedOrderButton:
    return TrackedOrderButton(title=title, payload=TrackedOrderButtonPayload(contact_type=contact_type, phone=phone))
