"""Rules of the picker flow of eats-orders-tracking (design doc 001_417a6ea162b84113).

Events (queue eats_orders_tracking_picker_orders) arrive out of order and more than once. Every write is
ONE conditional UpdateItem that compares the event's version (`created_at` + status rank) with the stored
`last_event`, so an older event never overwrites newer state and a replay changes nothing, without a read
first. An older STATUS_CHANGE still fills its own status_history field (if that field is empty or older):
history is a record of what happened, not current state. The customer is different: it guards who may see
the order (and the picker's phone), so the first customer_id ANY event names sticks, whatever the event's
age (if_not_exists; an older event that changes nothing else fills it with one more conditional update).

Fallback (job picker_orders_updater): orders stuck in a status listed in the experiment (evaluated per order)
for longer than its timeout are re-read from eats-picker-orders. They are found through the status -> updated_at index, so the
job reads the stale orders only, never the whole table. A failed fetch queues the order behind the other
stale ones (still stale, state untouched), and 3 upstream failures in a row end the run (circuit breaker).

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

from chalicelib.core import clock, metrics
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import AppError, NotFound, UpstreamRejected, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import is_live

from . import upstreams
from .models import HISTORY_FIELDS, PickerOrder, PickerPhone, event_version
from .schemas import (
    CALL_PICKER_ENABLED, CALL_PLACE_ENABLED, PICKER_TEXTS, PLACE_PHONES, RETENTION_DAYS, STATUS_TEXTS,
    STATUSES_TIMEOUT, OrderState, PickerOrderMessage, ProcessingEventType, ScreenText, TimeoutSettings, TrackedOrder,
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
              order_status=message.order_status.value, picker_id=message.picker_id, outcome=outcome.value,
              metrics=metrics.count("picker_orders", "Events" + outcome.value.title().replace("_", "")))
    return outcome


def _apply_status_change(message: PickerOrderMessage) -> Outcome:
    now = clock.now()
    version = event_version(message.created_at, message.order_status)
    history_field = HISTORY_FIELDS.get(message.order_status)
    customer = _keep_first_customer(message.customer_id)
    actions = [
        PickerOrder.status.set(message.order_status.value),
        # The doc: picker_id = event.picker_id (an event without a picker clears it).
        PickerOrder.picker_id.set(message.picker_id) if message.picker_id else PickerOrder.picker_id.remove(),
        PickerOrder.place_id.set(message.place_id),
        PickerOrder.last_event.set(version),
        PickerOrder.updated_at.set(now),
        PickerOrder.expires_at.set(now + _retention()),
        *customer,
    ]
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
    if history_field is not None:
        try:
            PickerOrder(message.order_nr).update(
                actions=[history_field.set(message.created_at), *customer],
                condition=PickerOrder.order_nr.exists()
                & (history_field.does_not_exist() | (history_field < message.created_at)),
            )
            return Outcome.HISTORY_ONLY
        except UpdateError as error:
            if not condition_failed(error):
                raise
    # Older than the stored state, but its customer still counts: the customer is whoever the order's events
    # name first, not whoever the newest event names (an older event may be the only one carrying it).
    if message.customer_id:
        _fill_customer(message.order_nr, message.customer_id, create=False)
    return Outcome.STALE


def _keep_first_customer(customer_id: str | None) -> list:
    """The action that stores the order's customer unless one is stored already: it never changes."""
    return [PickerOrder.customer_id.set(PickerOrder.customer_id | customer_id)] if customer_id else []


def _fill_customer(order_nr: str, customer_id: str, *, create: bool) -> bool:
    """Store the order's customer if none is stored yet, whatever the event's age. `create`: also when the
    order is not known yet (a phone event first): a stub item that holds only the customer (and a TTL), which
    the tracking route treats as unknown until a status arrives, and which the status event then completes."""
    actions = [PickerOrder.customer_id.set(customer_id)]
    condition = PickerOrder.customer_id.does_not_exist()
    if create:
        actions.append(PickerOrder.expires_at.set(PickerOrder.expires_at | (clock.now() + _retention())))
    else:
        condition &= PickerOrder.order_nr.exists()
    try:
        PickerOrder(order_nr).update(actions=actions, condition=condition)
        return True
    except UpdateError as error:
        if not condition_failed(error):
            raise
    return False


def _apply_phone(message: PickerOrderMessage) -> Outcome:
    forwarding = message.customer_picker_phone_forwarding
    assert forwarding is not None and message.picker_id is not None  # the schema requires both for this type
    now = clock.now()
    version = clock.utc_text(message.created_at)
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
        outcome = Outcome.APPLIED
    except UpdateError as error:
        if not condition_failed(error):
            raise
        outcome = Outcome.STALE
    if message.customer_id:
        # The phone is shown to the order's customer only: the customer this event names must not be lost,
        # even when it is the only event naming one.
        _fill_customer(message.order_nr, message.customer_id, create=True)
    return outcome


# --- fallback refresh ---------------------------------------------------------------------------------

@dataclasses.dataclass
class RefreshReport:
    statuses: int = 0
    stale: int = 0  # stale orders read from the index
    refreshed: int = 0  # upstream had news: saved
    unchanged: int = 0  # upstream agrees: only updated_at moved, so the order waits another timeout
    raced: int = 0  # an event changed the order meanwhile: left alone
    failed: int = 0  # upstream error or bad answer: skipped this round
    pushed_back: int = 0  # failed fetches queued behind the other stale orders (still stale)
    not_due: int = 0  # read from the index, but the experiment gives this order a longer timeout (or none)
    out_of_time: bool = False
    circuit_open: bool = False  # upstream down: the run stopped after CIRCUIT_BREAKER_FAILURES in a row


# Consecutive upstream failures (timeouts, 5xx, unreadable answers) after which a run gives up: the upstream
# is down, and each further order would only burn the Lambda's time (~4.4 s per order with retries).
CIRCUIT_BREAKER_FAILURES = 3


def _shortest(settings: Iterable[TimeoutSettings], into: dict[OrderState, int]) -> dict[OrderState, int]:
    for setting in settings:
        into[setting.status] = min(setting.timeout, into.get(setting.status, setting.timeout))
    return into


def _query_timeouts(experiment) -> dict[OrderState, int]:
    """By status, the shortest timeout ANY order can get (over every clause and the default): the index is
    read from there, and each order found is then held to its own timeout."""
    timeouts: dict[OrderState, int] = {}
    for settings in experiment.possible_values():
        _shortest(settings, timeouts)
    return timeouts


def _own_timeout(experiment, order: PickerOrder, status: OrderState) -> int | None:
    kwargs = {"order_nr": order.order_nr, "place_id": order.place_id, "user_id": order.customer_id}
    return _shortest(experiment.match(kwargs), {}).get(status)


def stale_cutoff(timeout_seconds: int, now: dt.datetime) -> dt.datetime:
    # The doc writes `now() - updated_at < timeout`, which would re-read every FRESH order each minute. A
    # fallback for lost events is meant for orders stuck LONGER than the timeout: updated_at < now - timeout.
    return now - dt.timedelta(seconds=timeout_seconds)


def stale_orders(status: OrderState, timeout_seconds: int, now: dt.datetime) -> Iterable[PickerOrder]:
    """Oldest updated_at first."""
    cutoff = stale_cutoff(timeout_seconds, now)
    for order in PickerOrder.by_status_updated.query(status.value, PickerOrder.updated_at < cutoff):
        if is_live(order.expires_at):  # TTL deletes late: an expired order is not refreshed back to life
            yield order


def refresh_stale_orders(deadline: float | None = None) -> RefreshReport:
    """Refresh every stale order of the listed statuses; `deadline` is a time.monotonic() to stop at.

    An order whose fetch fails is pushed back behind the other stale orders (see _push_back), so a few
    failing orders cannot take every run's time; CIRCUIT_BREAKER_FAILURES failures in a row end the run.
    The timeouts are an experiment evaluated per order: the index is read from the shortest timeout any
    order can get, and an order whose own clause gives it longer (or does not list its status) is skipped.
    With no clauses (one timeout per status for everybody) an order's own timeout is the one the index was
    read with: nothing is skipped."""
    report = RefreshReport()
    now = clock.now()
    experiment = STATUSES_TIMEOUT.snapshot()  # one version of the experiment for the whole run
    timeouts = _query_timeouts(experiment)
    report.statuses = len(timeouts)
    failures_in_a_row = 0
    for status, timeout in timeouts.items():
        cutoff = stale_cutoff(timeout, now)
        for order in stale_orders(status, timeout, now):
            if deadline is not None and time.monotonic() >= deadline:
                # What is left is still stale: the next run (a minute later) takes it first.
                report.out_of_time = True
                log.warning_event("picker_orders.refresh_out_of_time", **dataclasses.asdict(report))
                return report
            own = _own_timeout(experiment, order, status)
            if own is None or order.updated_at >= stale_cutoff(own, now):
                report.not_due += 1
                continue
            report.stale += 1
            upstream_down = _refresh_one(order, cutoff, now, report)
            failures_in_a_row = failures_in_a_row + 1 if upstream_down else 0
            if failures_in_a_row >= CIRCUIT_BREAKER_FAILURES:
                # The orders not reached are still stale; the failed ones wait behind them.
                report.circuit_open = True
                log.warning_event("picker_orders.refresh_circuit_open", **dataclasses.asdict(report))
                return report
    log.event("picker_orders.refresh_done", **dataclasses.asdict(report))
    return report


def _refresh_one(order: PickerOrder, cutoff: dt.datetime, now: dt.datetime, report: RefreshReport) -> bool:
    """Returns True when the upstream looked down for this order (counts towards the circuit breaker)."""
    try:
        fresh = upstreams.fetch_order(order.order_nr)
    except AppError as error:
        report.failed += 1
        log.warning_event("picker_orders.refresh_upstream_failed", order_nr=order.order_nr, status=order.status,
                          code=error.code, error=error.message)
        _push_back(order, cutoff, now, report)
        # A definite 4xx (say, an order the upstream does not know) is an answer: the upstream is up.
        return not isinstance(error, UpstreamRejected)
    try:
        changed = _save_refreshed(order, fresh)
    except UpdateError as error:
        if not condition_failed(error):
            report.failed += 1
            log.error_event("picker_orders.refresh_save_failed", order_nr=order.order_nr, error=describe(error))
            return False
        report.raced += 1
        log.event("picker_orders.refresh_raced", order_nr=order.order_nr)
        return False
    if changed:
        report.refreshed += 1
    else:
        report.unchanged += 1
    log.event("picker_orders.refreshed", order_nr=order.order_nr, old_status=order.status,
              status=fresh.status.value, changed=changed)
    return False


def _push_back(order: PickerOrder, cutoff: dt.datetime, now: dt.datetime, report: RefreshReport) -> None:
    """Queue a failed order behind every other stale order of its status, without pretending it was refreshed:
    status, picker, history and last_event stay; updated_at becomes this run's cutoff. The index query is
    `updated_at < cutoff`, so this run does not meet the order again (and never fetches it twice), while the
    next run's cutoff is later: the order is still stale then, after the orders stuck before it and before
    the ones that got stuck since. refresh_failed_at records the failure."""
    try:
        order.update(actions=[PickerOrder.updated_at.set(cutoff), PickerOrder.refresh_failed_at.set(now)],
                     condition=PickerOrder.last_event == order.last_event)
        report.pushed_back += 1
    except UpdateError as error:
        # An event landed meanwhile (it moved updated_at itself), or DynamoDB failed: the order keeps its
        # place, as before this fix, and is retried next run.
        if not condition_failed(error):
            log.error_event("picker_orders.refresh_push_back_failed", order_nr=order.order_nr, error=describe(error))


def _save_refreshed(order: PickerOrder, fresh: UpstreamPickerOrder) -> bool:
    now = clock.now()
    changed_at = fresh.status_updated_at or now
    version = event_version(changed_at, fresh.status)
    changed = (fresh.status.value, fresh.picker_id) != (order.status, order.picker_id)
    # Upstream may lag behind an event we already applied: never step back to an older version.
    apply = changed and version >= order.last_event
    actions = [PickerOrder.updated_at.set(now), PickerOrder.refresh_failed_at.remove()]
    if order.customer_id is None:
        # The upstream knows the customer too: an order whose events named none gets it (first one sticks).
        actions += _keep_first_customer(fresh.customer_id)
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
    if order.status is None or not is_live(order.expires_at):
        # No status yet: a stub that a phone event created to keep the customer; no status event arrived.
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
    if not _fill_customer(order.order_nr, fresh.customer_id, create=False):
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
