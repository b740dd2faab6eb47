"""The fallback refresh (job picker_orders_updater, design doc 001): orders stuck in a status are re-read.

Orders stuck in a status listed in the experiment (evaluated per order) for longer than its timeout are re-read
from eats-picker-orders. They are found through the status -> updated_at index, so the job reads the stale
orders only, never the whole table. A failed fetch queues the order behind the other stale ones (still stale,
state untouched), and 3 upstream failures in a row end the run (circuit breaker). A refresh never steps an order
back behind an event already applied (events.py keeps the versions).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterable

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock
from chalicelib.core.dynamo import update_if
from chalicelib.core.errors import AppError, UpstreamRejected, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import is_live

from . import upstreams
from .events import keep_first_customer, retention
from .models import HISTORY_FIELDS, PickerOrder, event_version
from .schemas import STATUSES_TIMEOUT, OrderState, TimeoutSettings, UpstreamPickerOrder

log = get_logger(__name__)


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
        report.failed += 1
        log.error_event("picker_orders.refresh_save_failed", order_nr=order.order_nr, error=describe(error))
        return False
    if changed is None:
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
    # Not pushed back when an event landed meanwhile (it moved updated_at itself) or DynamoDB failed: the order
    # keeps its place and is retried next run.
    try:
        if update_if(order, [PickerOrder.updated_at.set(cutoff), PickerOrder.refresh_failed_at.set(now)],
                     PickerOrder.last_event == order.last_event):
            report.pushed_back += 1
    except UpdateError as error:
        log.error_event("picker_orders.refresh_push_back_failed", order_nr=order.order_nr, error=describe(error))


def _save_refreshed(order: PickerOrder, fresh: UpstreamPickerOrder) -> bool | None:
    """Whether the order changed; None when an event landed since the index was read (it is newer: kept)."""
    now = clock.now()
    changed_at = fresh.status_updated_at or now
    version = event_version(changed_at, fresh.status)
    changed = (fresh.status.value, fresh.picker_id) != (order.status, order.picker_id)
    # Upstream may lag behind an event we already applied: never step back to an older version.
    apply = changed and version >= order.last_event
    actions = [PickerOrder.updated_at.set(now), PickerOrder.refresh_failed_at.remove()]
    if order.customer_id is None:
        # The upstream knows the customer too: an order whose events named none gets it (first one sticks).
        actions += keep_first_customer(fresh.customer_id)
    if apply:
        actions += [
            PickerOrder.status.set(fresh.status.value),
            PickerOrder.picker_id.set(fresh.picker_id) if fresh.picker_id else PickerOrder.picker_id.remove(),
            PickerOrder.last_event.set(version),
            PickerOrder.expires_at.set(now + retention()),
        ]
        history_field = HISTORY_FIELDS.get(fresh.status)
        if history_field is not None:
            actions.append(history_field.set(history_field | changed_at))
    # Optimistic: if an event landed since the index was read, it is newer than this refresh; keep it.
    if not update_if(order, actions, PickerOrder.last_event == order.last_event):
        return None
    return apply
