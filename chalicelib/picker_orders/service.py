"""Rules of the picker flow of eats-orders-tracking (design doc 001_417a6ea162b84113).

Events (queue eats_orders_tracking_picker_orders) arrive out of order and more than once. Every write is
ONE conditional UpdateItem that compares the event's version (`created_at` + status rank) with the stored
`last_event`, so an older event never overwrites newer state and a replay changes nothing, without a read
first. An older STATUS_CHANGE still fills its own status_history field (if that field is empty or older):
history is a record of what happened, not current state.

Fallback (job picker_orders_updater): orders stuck in a status listed in the experiment for longer than its
timeout are re-read from eats-picker-orders. They are found through the status -> updated_at index, so the
job reads the stale orders only, never the whole table.

Tracking screen: which texts, buttons and banners the customer sees follows from the order's progress
(status history and status) and the picker's forwarded phone.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import time
from collections.abc import Iterable

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import clock
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import AppError, NotFound
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import is_live

from . import upstreams
from .models import HISTORY_FIELDS, PickerOrder, PickerPhone, event_version, utc_text
from .schemas import (
    CALL_PICKER_ENABLED, CALL_PLACE_ENABLED, PICKER_TEXTS, PLACE_PHONES, RETENTION_DAYS, STATUS_TEXTS,
    STATUSES_TIMEOUT, OrderState, PickerOrderMessage, ProcessingEventType, ScreenText, TrackedOrder,
    TrackedOrderBanner, TrackedOrderButton, TrackedOrderButtonContactType, TrackedOrderButtonPayload,
    UpstreamPickerOrder,
)

log = get_logger(__name__)


class Outcome(str, enum.Enum):
    APPLIED = "applied"  # the newest event so far: state written
    HISTORY_ONLY = "history_only"  # older than the stored state: only its status_history field was filled
    STALE = "stale"  # older than the stored state (or a replay): nothing changed
    IGNORED = "ignored"  # an event type this service does not use


def _retention() -> dt.timedelta:
    return dt.timedelta(days=RETENTION_DAYS.get())


# --- events -------------------------------------------------------------------------------------------

def apply_event(message: PickerOrderMessage) -> Outcome:
    if message.event_type is ProcessingEventType.STATUS_CHANGE:
        outcome = _apply_status_change(message)
    elif message.event_type is ProcessingEventType.PICKER_PHONE_FORWARDING_READY:
        outcome = _apply_phone(message)
    else:
        outcome = Outcome.IGNORED
    log.event("picker_orders.event", order_nr=message.order_nr, event_type=message.event_type.value,
              order_status=message.order_status.value, picker_id=message.picker_id, outcome=outcome.value)
    return outcome


def _apply_status_change(message: PickerOrderMessage) -> Outcome:
    now = clock.now()
    version = event_version(message.created_at, message.order_status)
    history_field = HISTORY_FIELDS.get(message.order_status)
    actions = [
        PickerOrder.status.set(message.order_status.value),
        # The doc: picker_id = event.picker_id (an event without a picker clears it).
        PickerOrder.picker_id.set(message.picker_id) if message.picker_id else PickerOrder.picker_id.remove(),
        PickerOrder.place_id.set(message.place_id),
        PickerOrder.last_event.set(version),
        PickerOrder.updated_at.set(now),
        PickerOrder.expires_at.set(now + _retention()),
    ]
    if message.customer_id:
        # An order's customer never changes: the first one seen stays.
        actions.append(PickerOrder.customer_id.set(PickerOrder.customer_id | message.customer_id))
    if history_field is not None:
        actions.append(history_field.set(message.created_at))
    try:
        PickerOrder(message.order_nr).update(
            actions=actions,
            condition=PickerOrder.last_event.does_not_exist() | (PickerOrder.last_event < version),
        )
        return Outcome.APPLIED
    except UpdateError as error:
        if not condition_failed(error):
            raise
    if history_field is None:
        return Outcome.STALE
    try:
        PickerOrder(message.order_nr).update(
            actions=[history_field.set(message.created_at)],
            condition=PickerOrder.order_nr.exists()
            & (history_field.does_not_exist() | (history_field < message.created_at)),
        )
        return Outcome.HISTORY_ONLY
    except UpdateError as error:
        if not condition_failed(error):
            raise
    return Outcome.STALE


def _apply_phone(message: PickerOrderMessage) -> Outcome:
    forwarding = message.customer_picker_phone_forwarding
    assert forwarding is not None and message.picker_id is not None  # the schema requires both for this type
    now = clock.now()
    version = utc_text(message.created_at)
    try:
        PickerPhone(message.order_nr, message.picker_id).update(
            actions=[
                PickerPhone.phone.set(forwarding.phone),
                PickerPhone.phone_expires_at.set(forwarding.expires_at),
                PickerPhone.last_event.set(version),
                PickerPhone.updated_at.set(now),
                PickerPhone.expires_at.set(now + _retention()),
            ],
            condition=PickerPhone.last_event.does_not_exist() | (PickerPhone.last_event < version),
        )
        return Outcome.APPLIED
    except UpdateError as error:
        if not condition_failed(error):
            raise
    return Outcome.STALE


# --- fallback refresh ---------------------------------------------------------------------------------

@dataclasses.dataclass
class RefreshReport:
    statuses: int = 0
    stale: int = 0  # stale orders read from the index
    refreshed: int = 0  # upstream had news: saved
    unchanged: int = 0  # upstream agrees: only updated_at moved, so the order waits another timeout
    raced: int = 0  # an event changed the order meanwhile: left alone
    failed: int = 0  # upstream error or bad answer: skipped this round
    out_of_time: bool = False


def stale_timeouts() -> dict[OrderState, int]:
    """The experiment's timeouts by status (a status listed twice keeps its shortest timeout)."""
    timeouts: dict[OrderState, int] = {}
    for setting in STATUSES_TIMEOUT.get():
        timeouts[setting.status] = min(setting.timeout, timeouts.get(setting.status, setting.timeout))
    return timeouts


def stale_orders(status: OrderState, timeout_seconds: int, now: dt.datetime) -> Iterable[PickerOrder]:
    # The doc writes `now() - updated_at < timeout`, which would re-read every FRESH order each minute. A
    # fallback for lost events is meant for orders stuck LONGER than the timeout: updated_at < now - timeout.
    cutoff = now - dt.timedelta(seconds=timeout_seconds)
    for order in PickerOrder.by_status_updated.query(status.value, PickerOrder.updated_at < cutoff):
        if is_live(order.expires_at):  # TTL deletes late: an expired order is not refreshed back to life
            yield order


def refresh_stale_orders(deadline: float | None = None) -> RefreshReport:
    """Refresh every stale order of the listed statuses; `deadline` is a time.monotonic() to stop at."""
    report = RefreshReport()
    now = clock.now()
    timeouts = stale_timeouts()
    report.statuses = len(timeouts)
    for status, timeout in timeouts.items():
        for order in stale_orders(status, timeout, now):
            if deadline is not None and time.monotonic() >= deadline:
                # What is left is still stale: the next run (a minute later) takes it first.
                report.out_of_time = True
                log.warning_event("picker_orders.refresh_out_of_time", **dataclasses.asdict(report))
                return report
            report.stale += 1
            _refresh_one(order, report)
    log.event("picker_orders.refresh_done", **dataclasses.asdict(report))
    return report


def _refresh_one(order: PickerOrder, report: RefreshReport) -> None:
    try:
        fresh = upstreams.fetch_order(order.order_nr)
    except AppError as error:
        report.failed += 1
        log.warning_event("picker_orders.refresh_upstream_failed", order_nr=order.order_nr, status=order.status,
                          code=error.code, error=error.message)
        return
    try:
        changed = _save_refreshed(order, fresh)
    except UpdateError as error:
        if not condition_failed(error):
            report.failed += 1
            log.error_event("picker_orders.refresh_save_failed", order_nr=order.order_nr, error=repr(error))
            return
        report.raced += 1
        log.event("picker_orders.refresh_raced", order_nr=order.order_nr)
        return
    if changed:
        report.refreshed += 1
    else:
        report.unchanged += 1
    log.event("picker_orders.refreshed", order_nr=order.order_nr, old_status=order.status,
              status=fresh.status.value, changed=changed)


def _save_refreshed(order: PickerOrder, fresh: UpstreamPickerOrder) -> bool:
    now = clock.now()
    changed_at = fresh.status_updated_at or now
    version = event_version(changed_at, fresh.status)
    changed = (fresh.status.value, fresh.picker_id) != (order.status, order.picker_id)
    # Upstream may lag behind an event we already applied: never step back to an older version.
    apply = changed and version >= order.last_event
    actions = [PickerOrder.updated_at.set(now)]
    if apply:
        actions += [
            PickerOrder.status.set(fresh.status.value),
            PickerOrder.picker_id.set(fresh.picker_id) if fresh.picker_id else PickerOrder.picker_id.remove(),
            PickerOrder.last_event.set(version),
            PickerOrder.expires_at.set(now + _retention()),
        ]
        history_field = HISTORY_FIELDS.get(fresh.status)
        if history_field is not None:
            actions.append(history_field.set(history_field | changed_at))
    # Optimistic: if an event landed since the index was read, it is newer than this refresh; keep it.
    order.update(actions=actions, condition=PickerOrder.last_event == order.last_event)
    return apply


# --- tracking screen ----------------------------------------------------------------------------------

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
    try:
        order = PickerOrder.get(order_nr)
    except DoesNotExist:
        raise NotFound("order not found", code="order_not_found") from None
    if not is_live(order.expires_at):
        raise NotFound("order not found", code="order_not_found")
    return order


def valid_picker_phone(order: PickerOrder) -> str | None:
    """The current picker's forwarded phone while it is valid. The doc's `now() < updated_at + phone_ttl`
    treats the TTL as a duration; the message carries the phone's absolute expiry, which is what counts."""
    if not order.picker_id:
        return None
    try:
        phone = PickerPhone.get(order.order_nr, order.picker_id)
    except DoesNotExist:
        return None
    if not is_live(phone.expires_at) or clock.now() >= phone.phone_expires_at:
        return None
    return phone.phone


def _place_phone(place_id: str | None) -> str:
    phones = PLACE_PHONES.get()
    return phones.by_place_id.get(place_id or "", phones.default)


def tracked_order(order_nr: str, user_id: str) -> TrackedOrder:
    order = _live_order(order_nr)
    if order.customer_id is not None and order.customer_id != user_id:
        # The same answer as for an unknown order: one customer never learns about another's orders.
        log.event("picker_orders.tracking_customer_mismatch", order_nr=order_nr)
        raise NotFound("order not found", code="order_not_found")
    status = OrderState(order.status)
    texts = PICKER_TEXTS.get()
    current = phase(order)
    buttons: list[TrackedOrderButton] = []
    banners: list[TrackedOrderBanner] = []
    screen: ScreenText | None = None

    picker_phone = None
    if current is Phase.PICKING and CALL_PICKER_ENABLED.get():
        picker_phone = valid_picker_phone(order)
    if picker_phone is not None:
        screen = ScreenText(title=texts.call_picker_title, description=texts.call_picker_title)
        buttons.append(_call_button(texts.call_picker_button, TrackedOrderButtonContactType.picker, picker_phone))
        banners.append(TrackedOrderBanner(text=texts.banner))
    elif current in (Phase.BEFORE_PICKING, Phase.PICKING) and CALL_PLACE_ENABLED.get():
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
