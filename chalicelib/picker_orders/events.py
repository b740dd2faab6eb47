"""Picker events (queue eats_orders_tracking_picker_orders, design doc 001) -> the picker order's state.

Events arrive out of order and more than once. Every write is ONE conditional UpdateItem that compares the
event's version (`created_at` + status rank) with the stored `last_event`, so an older event never overwrites
newer state and a replay changes nothing, without a read first. An older STATUS_CHANGE still fills its own
status_history field (if that field is empty or older): history is a record of what happened, not current state.
The customer is different: it guards who may see the order (and the picker's phone), so the first customer_id
ANY event names sticks, whatever the event's age (if_not_exists; an older event that changes nothing else fills
it with one more conditional update). The updater and the tracking screen keep to the same customer rule
(keep_first_customer, fill_customer).
"""
from __future__ import annotations

import datetime as dt
import enum

from chalicelib.core import clock, metrics
from chalicelib.core.dynamo import update_if
from chalicelib.core.logs import get_logger

from .models import HISTORY_FIELDS, PickerOrder, PickerPhone, event_version
from .schemas import RETENTION_DAYS, PickerOrderMessage, ProcessingEventType

log = get_logger(__name__)


class Outcome(str, enum.Enum):
    APPLIED = "applied"  # the newest event so far: state written
    HISTORY_ONLY = "history_only"  # older than the stored state: only its status_history field was filled
    STALE = "stale"  # older than the stored state (or a replay): nothing changed
    IGNORED = "ignored"  # an event type this service does not use


def retention() -> dt.timedelta:
    return dt.timedelta(days=RETENTION_DAYS.get())


def apply_event(message: PickerOrderMessage) -> Outcome:
    if message.event_type is ProcessingEventType.STATUS_CHANGE:
        outcome = _apply_status_change(message)
    elif message.event_type is ProcessingEventType.PICKER_PHONE_FORWARDING_READY:
        outcome = _apply_phone(message)
    else:
        outcome = Outcome.IGNORED
    log.event("picker_orders.event", order_nr=message.order_nr, event_type=message.event_type.value,
              order_status=message.order_status.value, picker_id=message.picker_id, outcome=outcome.value,
              metrics=metrics.count("picker_orders", "Events" + outcome.value.title().replace("_", "")))
    return outcome


def _apply_status_change(message: PickerOrderMessage) -> Outcome:
    now = clock.now()
    version = event_version(message.created_at, message.order_status)
    history_field = HISTORY_FIELDS.get(message.order_status)
    customer = keep_first_customer(message.customer_id)
    actions = [
        PickerOrder.status.set(message.order_status.value),
        # The doc: picker_id = event.picker_id (an event without a picker clears it).
        PickerOrder.picker_id.set(message.picker_id) if message.picker_id else PickerOrder.picker_id.remove(),
        PickerOrder.place_id.set(message.place_id),
        PickerOrder.last_event.set(version),
        PickerOrder.updated_at.set(now),
        PickerOrder.expires_at.set(now + retention()),
        *customer,
    ]
    if history_field is not None:
        actions.append(history_field.set(message.created_at))
    if update_if(PickerOrder(message.order_nr), actions,
                 PickerOrder.last_event.does_not_exist() | (PickerOrder.last_event < version)):
        return Outcome.APPLIED
    if history_field is not None and update_if(
            PickerOrder(message.order_nr), [history_field.set(message.created_at), *customer],
            PickerOrder.order_nr.exists() & (history_field.does_not_exist() | (history_field < message.created_at))):
        return Outcome.HISTORY_ONLY
    # Older than the stored state, but its customer still counts: the customer is whoever the order's events
    # name first, not whoever the newest event names (an older event may be the only one carrying it).
    if message.customer_id:
        fill_customer(message.order_nr, message.customer_id, create=False)
    return Outcome.STALE


def keep_first_customer(customer_id: str | None) -> list:
    """The action that stores the order's customer unless one is stored already: it never changes."""
    return [PickerOrder.customer_id.set(PickerOrder.customer_id | customer_id)] if customer_id else []


def fill_customer(order_nr: str, customer_id: str, *, create: bool) -> bool:
    """Store the order's customer if none is stored yet, whatever the event's age. `create`: also when the
    order is not known yet (a phone event first): a stub item that holds only the customer (and a TTL), which
    the tracking route treats as unknown until a status arrives, and which the status event then completes."""
    actions = [PickerOrder.customer_id.set(customer_id)]
    condition = PickerOrder.customer_id.does_not_exist()
    if create:
        actions.append(PickerOrder.expires_at.set(PickerOrder.expires_at | (clock.now() + retention())))
    else:
        condition &= PickerOrder.order_nr.exists()
    return update_if(PickerOrder(order_nr), actions, condition)


def _apply_phone(message: PickerOrderMessage) -> Outcome:
    forwarding = message.customer_picker_phone_forwarding
    assert forwarding is not None and message.picker_id is not None  # the schema requires both for this type
    now = clock.now()
    version = clock.utc_text(message.created_at)
    applied = update_if(
        PickerPhone(message.order_nr, message.picker_id),
        [PickerPhone.phone.set(forwarding.phone), PickerPhone.phone_expires_at.set(forwarding.expires_at),
         PickerPhone.last_event.set(version), PickerPhone.updated_at.set(now),
         PickerPhone.expires_at.set(now + retention())],
        PickerPhone.last_event.does_not_exist() | (PickerPhone.last_event < version))
    outcome = Outcome.APPLIED if applied else Outcome.STALE
    if message.customer_id:
        # The phone is shown to the order's customer only: the customer this event names must not be lost,
        # even when it is the only event naming one.
        fill_customer(message.order_nr, message.customer_id, create=True)
    return outcome
