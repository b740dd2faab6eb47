"""Whose order is it: an order whose events named no customer is shown to nobody until eats-picker-orders
names one (issue 7, defect 1); the picker's phone never reaches anyone else."""
from __future__ import annotations

from chalicelib.core import clock
from chalicelib.picker_orders.models import PickerOrder
from tests.picker_orders.helpers import CALL_PICKER, at, phone_event, screen, send, status_event, track

PHONE = "+70001112233"


def picking_without_customer(client) -> None:
    clock.freeze(at(2))
    assert send(client, status_event("o1", "picking", at(0), picker_id="p1", customer_id=None),
                phone_event("o1", "p1", PHONE, at(60), at(1), customer_id=None)) == []
    assert PickerOrder.get("o1").customer_id is None


def test_an_order_no_one_names_a_customer_of_is_shown_to_no_one(client, sim):
    picking_without_customer(client)  # and eats-picker-orders does not know the order either
    for user in ("alice", "mallory", "c1"):
        answer = track(client, "o1", user)
        assert answer.status_code == 404, (user, answer.body)
        assert PHONE not in answer.body.decode()


def test_the_customer_is_fetched_from_eats_picker_orders_and_kept(client, sim):
    picking_without_customer(client)
    sim.order("o1", status="picking", picker_id="p1", customer_id="alice")
    answer = track(client, "o1", "mallory")
    assert answer.status_code == 404 and PHONE not in answer.body.decode()
    assert PickerOrder.get("o1").customer_id == "alice"
    body = screen(client, "o1", "alice")
    assert body["title"] == CALL_PICKER and body["buttons"][0]["payload"]["phone"] == PHONE
    assert sim.asked() == ["o1"]  # fetched once, then stored


def test_an_upstream_that_names_no_customer_shows_the_order_to_no_one(client, sim):
    picking_without_customer(client)
    sim.order("o1", status="picking", picker_id="p1")  # customer_id null
    assert track(client, "o1", "alice").status_code == 404
    assert PickerOrder.get("o1").customer_id is None


def test_upstream_down_while_the_customer_is_unknown_refuses_and_shows_nothing(client, sim):
    picking_without_customer(client)
    sim.fault(mode="error", status=500)
    answer = track(client, "o1", "alice")
    assert answer.status_code == 503 and answer.json_body["code"] == "upstream_unavailable"
    assert PHONE not in answer.body.decode()
    sim.fault(mode="ok")
    sim.order("o1", status="picking", picker_id="p1", customer_id="alice")
    assert screen(client, "o1", "alice")["buttons"][0]["payload"]["phone"] == PHONE
