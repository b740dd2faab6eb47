"""Job picker_orders_updater: orders stuck in a listed status are refreshed from eats-picker-orders."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from pynamodb.connection.base import Connection

from chalicelib.core import clock, lease
from chalicelib.core.errors import UpstreamUnavailable
from chalicelib.picker_orders.models import PickerOrder
from tests.picker_orders.helpers import (
    CALL_PICKER, CALL_PLACE, PAYING, at, phone_event, put_config, run_job, screen, send, status_event, track,
)

TIMEOUTS = "eats_orders_tracking_picker_statuses_timeout"


def order_at(client, order_nr: str, status: str, minute: float, picker_id: str | None = "p1") -> None:
    """An order whose last event (and last write) happened at `minute`."""
    clock.freeze(at(minute))
    assert send(client, status_event(order_nr, status, at(minute), picker_id=picker_id)) == []


def test_only_stale_orders_in_listed_statuses_are_refreshed(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 300}, {"status": "new", "timeout": 600}])
    order_at(client, "stale-picking", "picking", 0)
    order_at(client, "fresh-picking", "picking", 8)
    order_at(client, "stale-assigned", "assigned", 0)  # unlisted status: never fetched
    order_at(client, "fresh-new", "new", 1)  # listed, but 9 minutes < 10
    for order_nr in ("stale-picking", "fresh-picking", "stale-assigned", "fresh-new"):
        sim.order(order_nr, status="picked_up", picker_id="p1", status_updated_at=at(9).isoformat())

    clock.freeze(at(10))
    run_job(client)

    assert sim.asked() == ["stale-picking"]
    assert screen(client, "stale-picking")["title"] == PAYING
    assert PickerOrder.get("stale-picking").picked_up_at == at(9)
    for order_nr, status in (("fresh-picking", "picking"), ("stale-assigned", "assigned"), ("fresh-new", "new")):
        assert PickerOrder.get(order_nr).status == status


def test_stale_means_stuck_longer_than_the_timeout(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 300}])
    order_at(client, "o1", "picking", 0)
    sim.order("o1", status="picked_up", picker_id="p1")
    clock.freeze(at(5))  # exactly the timeout: not yet
    run_job(client)
    assert sim.asked() == []
    clock.freeze(at(5, 1))
    run_job(client)
    assert sim.asked() == ["o1"]
    assert PickerOrder.get("o1").status == "picked_up"


def test_upstream_5xx_skips_that_order_this_round_and_goes_on(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    order_at(client, "first", "picking", 0)
    order_at(client, "second", "picking", 1)
    sim.order("first", status="paid", picker_id="p1")
    sim.order("second", status="paid", picker_id="p1")
    sim.fault(mode="error", status=503, count=3)  # the first order's call and both of its retries

    clock.freeze(at(10))
    assert run_job(client) == 1  # the job itself does not fail; it reports the one order it handled
    assert PickerOrder.get("first").status == "picking"
    assert PickerOrder.get("second").status == "paid"
    # Still stale: the next run takes it.
    clock.freeze(at(11))
    run_job(client)
    assert PickerOrder.get("first").status == "paid"


def test_full_upstream_outage_leaves_every_order_for_a_later_run(client, sim, app_logs):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    order_at(client, "a", "picking", 0)
    order_at(client, "b", "picking", 0)
    sim.order("a", status="paid")
    sim.order("b", status="paid")
    sim.fault(mode="error", status=500)
    clock.freeze(at(10))
    run_job(client)
    assert {PickerOrder.get("a").status, PickerOrder.get("b").status} == {"picking"}
    assert sorted(e["order_nr"] for e in app_logs.events("picker_orders.refresh_upstream_failed")) == ["a", "b"]


def test_upstream_unknown_order_is_skipped(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    order_at(client, "gone", "picking", 0)
    order_at(client, "known", "picking", 0)
    sim.order("known", status="paid")
    clock.freeze(at(10))
    run_job(client)
    assert PickerOrder.get("gone").status == "picking"
    assert PickerOrder.get("known").status == "paid"


def test_unchanged_order_waits_another_timeout_before_the_next_fetch(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 300}])
    order_at(client, "o1", "picking", 0)
    sim.order("o1", status="picking", picker_id="p1")
    for minute in (6, 7, 8, 10, 11, 12):
        clock.freeze(at(minute))
        run_job(client)
    assert sim.asked() == ["o1", "o1"]  # at 6; then not before 6 + 5 min have passed: at 12
    assert PickerOrder.get("o1").status == "picking"


def test_event_arriving_during_the_refresh_wins(client, sim, monkeypatch):
    from chalicelib.picker_orders import upstreams

    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    order_at(client, "o1", "picking", 0)
    real_fetch = upstreams.fetch_order

    def fetch_while_an_event_lands(order_nr):
        fresh = real_fetch(order_nr)
        send(client, status_event("o1", "paid", at(9), picker_id="p1"))
        return fresh

    monkeypatch.setattr(upstreams, "fetch_order", fetch_while_an_event_lands)
    sim.order("o1", status="picked_up", picker_id="p1")
    clock.freeze(at(10))
    run_job(client)
    assert PickerOrder.get("o1").status == "paid"


def test_lagging_upstream_never_steps_back(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picked_up", "timeout": 60}])
    order_at(client, "o1", "picked_up", 5)
    sim.order("o1", status="picking", picker_id="p1", status_updated_at=at(2).isoformat())
    clock.freeze(at(10))
    run_job(client)
    order = PickerOrder.get("o1")
    assert order.status == "picked_up"
    assert order.updated_at == at(10)  # looked at: waits another timeout


def test_refresh_to_a_new_picker_drops_the_old_pickers_phone(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    clock.freeze(at(0))
    send(client, status_event("o1", "picking", at(0), picker_id="p1"),
         phone_event("o1", "p1", "+70001112233", at(600), at(0)))
    assert screen(client, "o1")["title"] == CALL_PICKER
    sim.order("o1", status="picking", picker_id="p2", status_updated_at=at(0).isoformat())
    clock.freeze(at(10))
    run_job(client)
    body = screen(client, "o1")
    assert body["title"] == CALL_PLACE and "+70001112233" not in str(body)


def test_job_reads_only_the_stale_orders(client, sim, monkeypatch):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 300}])
    for i in range(3):
        order_at(client, f"stale-{i}", "picking", i * 0.1)
        sim.order(f"stale-{i}", status="picking", picker_id="p1")
    for i in range(30):
        order_at(client, f"fresh-{i}", "picking", 9)
        order_at(client, f"other-{i}", "assigned", 0)
    reads = {"items": 0, "scans": 0}
    original = Connection._make_api_call

    def counting(self, operation, kwargs):
        answer = original(self, operation, kwargs)
        if kwargs.get("TableName") == "picker_orders":
            if operation == "Scan":
                reads["scans"] += 1
            if operation in ("Query", "Scan"):
                reads["items"] += answer.get("ScannedCount", 0)
            if operation in ("GetItem", "BatchGetItem"):
                reads["items"] += 1
        return answer

    monkeypatch.setattr(Connection, "_make_api_call", counting)
    clock.freeze(at(10))
    run_job(client)
    assert sorted(sim.asked()) == ["stale-0", "stale-1", "stale-2"]
    assert reads == {"items": 3, "scans": 0}


def test_expired_orders_are_not_refreshed(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    order_at(client, "o1", "picking", 0)
    sim.order("o1", status="paid")
    clock.freeze(at(0) + dt.timedelta(days=7, seconds=1))
    run_job(client)
    assert sim.asked() == []


def test_job_skips_while_another_runner_holds_the_lease(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    order_at(client, "o1", "picking", 0)
    sim.order("o1", status="paid")
    clock.freeze(at(10))
    assert lease.acquire("picker_orders_updater", 55, owner="someone-else")
    run_job(client)
    assert sim.asked() == [] and PickerOrder.get("o1").status == "picking"
    clock.freeze(at(11))  # the lease ran out
    run_job(client)
    assert PickerOrder.get("o1").status == "paid"


def test_no_listed_statuses_no_fetch(client, sim):
    order_at(client, "o1", "picking", 0)
    sim.order("o1", status="paid")
    clock.freeze(at(60))
    run_job(client)  # the experiment's default is an empty list
    assert sim.asked() == []


@pytest.mark.parametrize("value", [
    [{"status": "lost", "timeout": 60}],
    [{"status": "picking", "timeout": 0}],
    [{"status": "picking", "timeout": 60, "extra": 1}],
    [{"status": "picking"}],
    {"status": "picking", "timeout": 60},
])
def test_timeouts_experiment_is_validated(client, value):
    answer = client.http.put(f"/internal/v1/configs/{TIMEOUTS}", headers={"Content-Type": "application/json"},
                             body=json.dumps({"value": value}))
    assert answer.status_code == 400
    assert answer.json_body["code"] == "invalid_config_value"


# --- a customer the events never named comes from the upstream ---------------------------------------------

def test_refresh_fills_a_missing_customer_and_keeps_an_existing_one(client, sim):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    clock.freeze(at(0))
    send(client, status_event("o1", "picking", at(0), picker_id="p1", customer_id=None),
         status_event("o2", "picking", at(0), picker_id="p1", customer_id="bob"))
    sim.order("o1", status="picking", picker_id="p1", customer_id="alice", status_updated_at=at(0).isoformat())
    sim.order("o2", status="picking", picker_id="p1", customer_id="alice", status_updated_at=at(0).isoformat())
    clock.freeze(at(10))
    run_job(client)
    assert (PickerOrder.get("o1").customer_id, PickerOrder.get("o2").customer_id) == ("alice", "bob")
    assert track(client, "o1", "mallory").status_code == 404


# --- failing orders do not starve the others; a down upstream does not burn the run ---------------------

class Fetches:
    """upstreams.fetch_order, recorded (one entry per fetch, retries inside it not counted), with per-order
    failures and a fake monotonic clock that a failing fetch advances like a timed-out upstream does."""

    def __init__(self, real) -> None:
        self.real = real
        self.asked: list[str] = []
        self.failing: set[str] = set()
        self.monotonic = 1000.0
        self.failure_seconds = 0.0

    def __call__(self, order_nr: str):
        self.asked.append(order_nr)
        if order_nr in self.failing:
            self.monotonic += self.failure_seconds
            raise UpstreamUnavailable("eats_picker_orders timed out")
        return self.real(order_nr)

    def take(self) -> list[str]:
        asked, self.asked = self.asked, []
        return asked


@pytest.fixture
def fetches(monkeypatch):
    from chalicelib.picker_orders import updater, upstreams

    recorder = Fetches(upstreams.fetch_order)
    monkeypatch.setattr(upstreams, "fetch_order", recorder)
    monkeypatch.setattr(updater.time, "monotonic", lambda: recorder.monotonic)
    return recorder


def test_upstream_down_stops_the_run_after_three_failures(client, sim, fetches, app_logs):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    for i in range(6):
        order_at(client, f"o{i}", "picking", i * 0.1)
    sim.fault(mode="error", status=500)
    clock.freeze(at(10))
    assert run_job(client) == 0  # no failure of the job: nothing handled
    assert fetches.take() == ["o0", "o1", "o2"]
    [opened] = app_logs.events("picker_orders.refresh_circuit_open")
    assert (opened["failed"], opened["circuit_open"]) == (3, True)
    assert all(PickerOrder.get(f"o{i}").status == "picking" for i in range(6))


def test_failed_order_is_retried_after_the_other_stale_orders_and_is_not_marked_refreshed(client, sim, fetches):
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    for i, name in enumerate("abcd"):
        order_at(client, name, "picking", i * 0.1)
        sim.order(name, status="paid", picker_id="p1", status_updated_at=at(9).isoformat())
    before = PickerOrder.get("a")
    sim.fault(mode="error", status=500)
    clock.freeze(at(10))
    run_job(client)
    assert fetches.take() == ["a", "b", "c"]
    after = PickerOrder.get("a")
    # Not refreshed: state, history and version are untouched; only its place in the queue moved.
    assert (after.status, after.picker_id, after.picking_at, after.paid_at, after.last_event, after.expires_at) == (
        before.status, before.picker_id, before.picking_at, None, before.last_event, before.expires_at)
    assert after.refresh_failed_at == at(10)

    sim.fault(mode="ok")
    clock.freeze(at(11))
    run_job(client)
    assert fetches.take() == ["d", "a", "b", "c"]  # still stale, behind the order not tried yet
    assert all(PickerOrder.get(name).status == "paid" for name in "abcd")
    assert PickerOrder.get("a").refresh_failed_at is None


def test_an_order_whose_fetch_keeps_timing_out_does_not_starve_the_others(client, sim, fetches):
    from chalicelib.picker_orders import updater

    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    for i, name in enumerate(["A", "B", "C"]):
        order_at(client, name, "picking", i * 0.1)
        sim.order(name, status="paid", picker_id="p1", status_updated_at=at(9).isoformat())
    fetches.failing = {"A"}
    fetches.failure_seconds = 4.4  # connect + read timeouts, retried
    for minute in (10, 11):  # two runs, each with less time left than A's timeout takes
        clock.freeze(at(minute))
        updater.refresh_stale_orders(deadline=fetches.monotonic + 4.0)
    assert PickerOrder.get("B").status == PickerOrder.get("C").status == "paid"
    assert fetches.take() == ["A", "B", "C", "A"]
    order = PickerOrder.get("A")
    assert (order.status, order.paid_at) == ("picking", None)
    clock.freeze(at(12))
    updater.refresh_stale_orders(deadline=fetches.monotonic + 4.0)
    assert fetches.take() == ["A"]  # never given up on


def test_only_failures_in_a_row_open_the_circuit(client, sim, fetches):
    from chalicelib.picker_orders import updater

    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    names = [f"o{i}" for i in range(7)]
    for i, name in enumerate(names):
        order_at(client, name, "picking", i * 0.1)
        sim.order(name, status="paid", picker_id="p1", status_updated_at=at(9).isoformat())
    fetches.failing = {"o0", "o1", "o3", "o4"}
    sim.order("o5", gone=True)  # the upstream answers 404: it is up, whatever this order is
    sim.order("o6", gone=True)
    clock.freeze(at(10))
    report = updater.refresh_stale_orders()
    assert fetches.take() == names
    assert (report.failed, report.refreshed, report.pushed_back, report.circuit_open) == (6, 1, 6, False)


def test_an_upstream_timestamp_outside_the_sane_range_is_that_upstream_failing(client, sim):
    """eats-picker-orders answering status_updated_at = 9999-12-31T23:00-05:00 used to raise OverflowError out of
    the run; now the answer is invalid, the order is skipped this round like any upstream failure, and the next
    order is refreshed."""
    put_config(client, TIMEOUTS, [{"status": "picking", "timeout": 60}])
    order_at(client, "odd", "picking", 0)
    order_at(client, "fine", "picking", 0.5)
    sim.order("odd", status="picked_up", picker_id="p1", status_updated_at="9999-12-31T23:00:00-05:00")
    sim.order("fine", status="picked_up", picker_id="p1", status_updated_at=at(2).isoformat())
    clock.freeze(at(5))
    run_job(client)
    assert sim.asked() == ["odd", "fine"]
    assert PickerOrder.get("odd").status == "picking" and PickerOrder.get("fine").status == "picked_up"
