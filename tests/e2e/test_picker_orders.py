"""Picker orders on the deployed local stack: SQS -> Lambda -> DynamoDB -> API Gateway, and the scheduled refresh.

Ids are unique per run (stack.unique), so the tests hold on a long-lived `make run` stack. Lambdas run on the
real clock: events carry real timestamps, and the phone expires an hour from now.
"""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from tests.conftest import as_eats_user

QUEUE = "eats_orders_tracking_picker_orders"
TRACKING = "/eats/v1/eats-orders-tracking/v1/tracking"
UPDATER = "PickerOrdersUpdater"  # CloudFormation logical id of jobs.picker_orders_updater
UPSTREAM = "eats_picker_orders"
TIMEOUTS = "eats_orders_tracking_picker_statuses_timeout"

CALL_PLACE = "Забыли товар? Позвони нам, мы добавим его в корзину"
CALL_PICKER = "Забыли самое нужное? Просто позвоните сборщику и попросите добавить товар в заказ"
BANNER = "Позвони нам, если забыл что-то купить. Мы все сделаем"
PAYING = "Стоим в очереди на кассу, скоро оплатим"


class Order:
    """One order of one customer, driven through the queue and read through the API."""

    def __init__(self, stack, prefix: str = "po"):
        self.stack = stack
        self.order_nr = stack.unique(prefix)
        self.customer = stack.unique("cust")
        self.picker = stack.unique("picker")
        self.base = dt.datetime.now(dt.timezone.utc)

    def event(self, status: str, second: int, event_type: str = "STATUS_CHANGE", **extra) -> dict:
        body = {"event_type": event_type, "order_nr": self.order_nr, "order_status": status, "place_id": "place-1",
                "customer_id": self.customer, "picker_id": self.picker,
                "created_at": (self.base + dt.timedelta(seconds=second)).isoformat(), **extra}
        return body

    def phone_event(self, phone: str, second: int) -> dict:
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        return self.event("picking", second, event_type="PICKER_PHONE_FORWARDING_READY",
                          customer_picker_phone_forwarding={"phone": phone, "expires_at": expires.isoformat()})

    def send(self, *bodies: dict) -> None:
        for body in bodies:
            self.stack.send(QUEUE, body)

    def answer(self, customer: str | None = None):
        return self.stack.get(TRACKING, params={"order_nr": self.order_nr},
                              headers=as_eats_user(customer or self.customer))

    def screen(self) -> dict | None:
        answer = self.answer()
        return answer.json() if answer.status_code == 200 else None

    def wait_for(self, what: str, check, timeout: float = 40) -> dict:
        def probe():
            body = self.screen()
            return body if body is not None and check(body) else None

        return self.stack.wait_until(probe, timeout=timeout, what=f"{self.order_nr}: {what}")


def test_events_drive_the_tracking_screen_through_all_four_states(stack):
    order = Order(stack)
    assert order.answer().status_code == 404

    order.send(order.event("new", 0))
    body = order.wait_for("call-us screen", lambda b: b["status"] == "new")
    assert body["title"] == body["description"] == CALL_PLACE
    assert [b["payload"]["contact_type"] for b in body["buttons"]] == ["place"]
    assert body["buttons"][0]["title"] == "Связаться с нами" and body["buttons"][0]["payload"]["phone"]
    assert body["banners"] == [{"text": BANNER, "appLink": ""}]

    # Another customer never sees it.
    assert order.answer(customer=stack.unique("other")).status_code == 404

    order.send(order.event("assigned", 1), order.event("picking", 2), order.phone_event("+70009998877", 3))
    body = order.wait_for("call-the-picker screen", lambda b: b["title"] == CALL_PICKER)
    assert body["status"] == "picking"
    assert body["buttons"] == [{"type": "call", "title": "Позвонить сборщику",
                                "payload": {"contact_type": "picker", "phone": "+70009998877"}}]
    assert body["banners"] == [{"text": BANNER, "appLink": ""}]

    order.send(order.event("picked_up", 4))
    body = order.wait_for("paying screen", lambda b: b["status"] == "picked_up")
    assert (body["title"], body["description"], body["buttons"], body["banners"]) == (PAYING, PAYING, [], [])

    order.send(order.event("paid", 5))
    body = order.wait_for("default screen", lambda b: b["status"] == "paid")
    assert body["title"] not in (CALL_PLACE, CALL_PICKER, PAYING)
    assert body["buttons"] == [] and body["banners"] == []


def test_late_and_repeated_events_do_not_move_the_screen_back(stack):
    order = Order(stack, "po-late")
    order.send(order.event("paid", 10))
    order.wait_for("paid", lambda b: b["status"] == "paid")
    order.send(order.event("picking", 2), order.phone_event("+70001230000", 3), order.event("paid", 10))
    time.sleep(5)  # the late events have been handled by now (warm: milliseconds)
    body = order.screen()
    assert body is not None and body["status"] == "paid" and body["buttons"] == []


def test_bad_message_reaches_the_dlq_and_its_batch_mates_are_handled(stack):
    order = Order(stack, "po-bad")
    bad = order.event("lost_in_space", 0)
    stack.send_batch(QUEUE, [bad, order.event("new", 1)])
    order.wait_for("the good message", lambda b: b["status"] == "new")
    seen: list[str] = []

    def in_dlq():
        seen.extend(stack.dlq_bodies(QUEUE))
        return any(order.order_nr in body and "lost_in_space" in body for body in seen)

    # Redrive: maxReceiveCount 3 with the queue's visibility timeout (10 s locally).
    stack.wait_until(in_dlq, timeout=120, interval=3, what="the bad message in the DLQ")


@pytest.fixture
def stale_after_one_second(stack):
    previous = stack.get(f"/internal/v1/configs/{TIMEOUTS}").json()["value"]
    stack.put_config(TIMEOUTS, [{"status": "picking", "timeout": 1}])
    time.sleep(1.5)  # the Lambdas' config cache (1 s locally)
    yield
    stack.put_config(TIMEOUTS, previous)  # a `make run` stack keeps what its operator set
    stack.clear_faults(UPSTREAM)


def test_updater_refreshes_a_stuck_order_and_skips_it_while_upstream_fails(stack, stale_after_one_second):
    order = Order(stack, "po-stuck")
    order.send(order.event("picking", 0))
    order.wait_for("picking", lambda b: b["status"] == "picking")
    # Upstream fails first, so no scheduled run can refresh the order before the check below.
    stack.fault(UPSTREAM, "error", status=503)
    # The picked_up event is lost; eats-picker-orders knows.
    stack.simulator_control(f"{UPSTREAM}/order", {"eats_id": order.order_nr, "status": "picked_up",
                                                   "picker_id": order.picker, "customer_id": order.customer})
    time.sleep(1.5)  # stuck longer than the 1 s timeout
    stack.fire_schedule(UPDATER)  # a run that fails on this order must leave it as it was
    body = order.screen()
    assert body is not None and body["status"] == "picking"

    stack.clear_faults(UPSTREAM)

    def refreshed():
        stack.fire_schedule(UPDATER)  # a scheduled run holding the lease makes this one skip: try again
        body = order.screen()
        return body if body is not None and body["status"] == "picked_up" else None

    body = stack.wait_until(refreshed, timeout=60, interval=2, what="the stuck order refreshed from upstream")
    assert body["title"] == PAYING


def test_an_order_without_customer_is_shown_only_to_the_customer_eats_picker_orders_names(stack):
    import requests

    order = Order(stack, "po-nocust")
    # eats-picker-orders knows the order but names no customer yet
    stack.simulator_control(f"{UPSTREAM}/order", {"eats_id": order.order_nr, "status": "new", "customer_id": None})
    event = order.event("new", 0)
    del event["customer_id"]
    order.send(event)

    def asked_upstream():
        assert order.answer("mallory").status_code == 404
        calls = requests.get(f"{stack.simulator}/_control/calls", params={"upstream": UPSTREAM}, timeout=5).json()
        return any(call["query"].get("eats_id") == order.order_nr for call in calls["calls"])

    # The tracking route asks eats-picker-orders once the order is stored: until then, and after, nobody sees it.
    stack.wait_until(asked_upstream, timeout=40, what="the tracking route asking eats-picker-orders for the customer")
    assert order.answer().status_code == 404
    stack.simulator_control(f"{UPSTREAM}/order", {"eats_id": order.order_nr, "customer_id": order.customer})
    body = order.wait_for("shown to the customer the upstream names", lambda b: b["status"] == "new")
    assert body["title"] == CALL_PLACE
    assert order.answer("mallory").status_code == 404


def test_call_the_picker_experiment_per_user(stack):
    name = "eats_orders_tracking_picker_call_picker_enabled"
    shown, hidden = Order(stack, "po-exp-on"), Order(stack, "po-exp-off")
    previous = stack.get(f"/internal/v1/configs/{name}").json()
    assert previous["kind"] == "experiment" and "user_id" in previous["kwargs"]
    stack.put_config(name, {"clauses": [{"title": "e2e: one user", "predicate": {"eq": {"user_id": shown.customer}},
                                         "value": True}], "default": False})
    time.sleep(1.5)  # the Lambdas' config cache (1 s locally)
    try:
        for order in (shown, hidden):
            order.send(order.event("picking", 0), order.phone_event("+70001112233", 1))
        body = shown.wait_for("call-the-picker screen", lambda b: b["title"] == CALL_PICKER)
        assert body["buttons"][0]["payload"]["contact_type"] == "picker"
        body = hidden.wait_for("picking", lambda b: b["status"] == "picking")
        time.sleep(2)  # the phone event of the hidden order has surely landed too
        body = hidden.screen()
        assert body["title"] == CALL_PLACE and "+70001112233" not in json.dumps(body)
    finally:
        stack.put_config(name, previous["value"])  # a `make run` stack keeps what its operator set


def test_openapi_document_lists_the_tracking_route(stack):
    answer = stack.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert "get" in document["paths"][TRACKING]
    assert "picker" in json.dumps(document["components"]["schemas"]["TrackedOrderButtonContactType"])
