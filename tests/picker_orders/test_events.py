"""Queue eats_orders_tracking_picker_orders: events drive the stored order and the tracking screen."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core import clock
from chalicelib.picker_orders.models import PickerOrder, PickerPhone
from tests.picker_orders.helpers import (
    CALL_PICKER, CALL_PLACE, PAYING, at, phone_event, put_config, screen, send, status_event, track,
)


def test_status_change_stores_status_picker_and_its_history_field(client):
    clock.freeze(at(0))
    assert send(client, status_event("o1", "new", at(0))) == []
    order = PickerOrder.get("o1")
    assert (order.status, order.picker_id, order.place_id, order.customer_id) == ("new", None, "place-1", "c1")
    assert order.new_at == at(0)
    assert order.updated_at == at(0)


def test_each_status_fills_its_own_history_field_and_others_none(client):
    flow = [("new", 0), ("waiting_dispatch", 1), ("dispatching", 2), ("assigned", 3), ("picking", 4),
            ("waiting_confirmation", 5), ("confirmed", 6), ("picked_up", 7), ("receipt_processing", 8),
            ("paid", 9), ("packing", 10)]
    for status, minute in flow:
        assert send(client, status_event("o1", status, at(minute), picker_id="p1")) == []
    order = PickerOrder.get("o1")
    assert order.status == "packing"
    assert (order.new_at, order.assigned_at, order.picking_at, order.picked_up_at, order.paid_at) == (
        at(0), at(3), at(4), at(7), at(9))
    # Statuses without a history field (dispatching, confirmed, ...) touched none: each field kept its own time.


def test_dispatching_touches_no_history_field(client):
    send(client, status_event("o1", "dispatching", at(0)))
    order = PickerOrder.get("o1")
    assert order.status == "dispatching"
    assert [order.new_at, order.assigned_at, order.picking_at, order.picked_up_at, order.paid_at] == [None] * 5


def test_older_event_never_overwrites_newer_state_but_fills_its_history(client):
    clock.freeze(at(10))
    assert send(client, status_event("o1", "picking", at(5), picker_id="p2")) == []
    assert send(client, status_event("o1", "assigned", at(3), picker_id="p1")) == []
    assert send(client, status_event("o1", "new", at(1))) == []
    order = PickerOrder.get("o1")
    assert (order.status, order.picker_id) == ("picking", "p2")
    assert (order.new_at, order.assigned_at, order.picking_at) == (at(1), at(3), at(5))
    assert screen(client, "o1")["status"] == "picking"


def test_late_picking_event_does_not_bring_back_the_picker_screen_after_payment(client):
    clock.freeze(at(20))
    send(client, status_event("o1", "paid", at(15), picker_id="p1"),
         phone_event("o1", "p1", "+70001112233", at(60), at(6)))
    send(client, status_event("o1", "picking", at(5), picker_id="p1"))
    body = screen(client, "o1")
    assert body["status"] == "paid"
    assert body["title"] == "Упаковываем заказ" and body["buttons"] == [] and body["banners"] == []


def test_replayed_event_changes_nothing(client):
    clock.freeze(at(1))
    event = status_event("o1", "picking", at(1), picker_id="p1")
    send(client, event)
    first = PickerOrder.get("o1")
    clock.freeze(at(30))
    # Redelivered alone and twice within one batch.
    assert send(client, event) == []
    assert send(client, event, event, ids=["a", "b"]) == []
    again = PickerOrder.get("o1")
    assert again.updated_at == first.updated_at == at(1)
    assert again.expires_at == first.expires_at
    assert again.last_event == first.last_event


def test_events_with_the_same_created_at_resolve_the_same_in_any_order(client):
    send(client, status_event("a", "picking", at(5), picker_id="p1"), status_event("a", "picked_up", at(5), picker_id="p1"))
    send(client, status_event("b", "picked_up", at(5), picker_id="p1"), status_event("b", "picking", at(5), picker_id="p1"))
    assert PickerOrder.get("a").status == PickerOrder.get("b").status == "picked_up"


def test_new_picker_does_not_inherit_the_old_pickers_phone(client):
    clock.freeze(at(10))
    send(client, status_event("o1", "picking", at(1), picker_id="p1"),
         phone_event("o1", "p1", "+70000000001", at(60), at(2)))
    body = screen(client, "o1")
    assert body["buttons"][0]["payload"] == {"contact_type": "picker", "phone": "+70000000001"}

    send(client, status_event("o1", "picking", at(3), picker_id="p2"))
    body = screen(client, "o1")
    assert body["title"] == CALL_PLACE
    assert body["buttons"][0]["payload"]["contact_type"] == "place"
    assert "+70000000001" not in str(body)

    send(client, phone_event("o1", "p2", "+70000000002", at(60), at(4)))
    assert screen(client, "o1")["buttons"][0]["payload"] == {"contact_type": "picker", "phone": "+70000000002"}


def test_same_picker_on_two_orders_keeps_each_orders_forwarding(client):
    clock.freeze(at(10))
    send(client, status_event("o1", "picking", at(1), picker_id="p1", customer_id="c1"),
         status_event("o2", "picking", at(1), picker_id="p1", customer_id="c2"),
         phone_event("o1", "p1", "+70000000001", at(60), at(2), customer_id="c1"),
         phone_event("o2", "p1", "+70000000002", at(60), at(2), customer_id="c2"))
    assert screen(client, "o1", "c1")["buttons"][0]["payload"]["phone"] == "+70000000001"
    assert screen(client, "o2", "c2")["buttons"][0]["payload"]["phone"] == "+70000000002"


def test_older_phone_event_does_not_replace_a_newer_phone(client):
    clock.freeze(at(10))
    send(client, status_event("o1", "picking", at(1), picker_id="p1"))
    send(client, phone_event("o1", "p1", "+70000000009", at(90), at(8)))
    send(client, phone_event("o1", "p1", "+70000000001", at(60), at(2)))
    phone = PickerPhone.get("o1", "p1")
    assert (phone.phone, phone.phone_expires_at) == ("+70000000009", at(90))
    assert screen(client, "o1")["buttons"][0]["payload"]["phone"] == "+70000000009"


def test_phone_is_valid_until_its_own_expiry(client):
    clock.freeze(at(2))
    send(client, status_event("o1", "picking", at(1), picker_id="p1"),
         phone_event("o1", "p1", "+70000000001", at(10), at(2)))
    clock.freeze(at(9, 59))
    assert screen(client, "o1")["title"] == CALL_PICKER
    clock.freeze(at(10))
    body = screen(client, "o1")
    assert body["title"] == CALL_PLACE
    assert body["buttons"][0]["payload"]["contact_type"] == "place"
    # A new phone for the same picker arrives: the picker button is back.
    send(client, phone_event("o1", "p1", "+70000000002", at(30), at(10)))
    assert screen(client, "o1")["buttons"][0]["payload"] == {"contact_type": "picker", "phone": "+70000000002"}


def test_phone_arriving_before_the_status_is_used_once_the_order_is_known(client):
    clock.freeze(at(5))
    send(client, phone_event("o1", "p1", "+70000000001", at(60), at(2)))
    assert track(client, "o1").status_code == 404
    send(client, status_event("o1", "picking", at(1), picker_id="p1"))
    assert screen(client, "o1")["title"] == CALL_PICKER


@pytest.mark.parametrize("event_type", ["ITEM_ADD", "ITEM_REPLACE", "ITEM_SOFT_DELETE", "ITEM_PICKED"])
def test_other_event_types_are_acknowledged_and_ignored(client, event_type):
    body = status_event("o1", "picking", at(1), picker_id="p1")
    body["event_type"] = event_type
    assert send(client, body) == []
    assert track(client, "o1").status_code == 404
    send(client, status_event("o1", "new", at(0)))
    send(client, {**body, "created_at": at(9).isoformat()})
    assert PickerOrder.get("o1").status == "new"


def test_bad_messages_fail_alone_and_are_logged_without_the_phone(client, app_logs):
    good = [status_event(f"ok{i}", "new", at(i)) for i in range(3)]
    unknown_status = status_event("bad1", "lost", at(1))
    unknown_type = {**status_event("bad2", "new", at(1)), "event_type": "ORDER_EATEN"}
    missing_created = status_event("bad3", "new", at(1))
    del missing_created["created_at"]
    missing_place = status_event("bad4", "new", at(1))
    del missing_place["place_id"]
    phone_without_phone = phone_event("bad5", "p1", "+79991234567", at(60), at(1))
    del phone_without_phone["customer_picker_phone_forwarding"]
    phone_extra_field = phone_event("bad6", "p1", "+79991234567", at(60), at(1))
    phone_extra_field["customer_picker_phone_forwarding"]["ttl"] = 60
    phone_without_picker = phone_event("bad7", "p1", "+79991234567", at(60), at(1))
    del phone_without_picker["picker_id"]
    bodies = [good[0], unknown_status, unknown_type, missing_created, good[1], missing_place, phone_without_phone,
              phone_extra_field, phone_without_picker, "not json", good[2]]
    ids = [f"m{i}" for i in range(len(bodies))]
    failed = send(client, *bodies, ids=ids)
    assert sorted(failed) == sorted(["m1", "m2", "m3", "m5", "m6", "m7", "m8", "m9"])
    assert [o.order_nr for o in PickerOrder.scan()] and sorted(o.order_nr for o in PickerOrder.scan()) == [
        "ok0", "ok1", "ok2"]
    invalid = app_logs.events("queue.message_invalid")
    assert sorted(e["message_id"] for e in invalid) == sorted(failed)
    assert "9991234567" not in app_logs.text()


def test_phone_number_never_reaches_the_logs(client, app_logs):
    clock.freeze(at(2))
    send(client, status_event("o1", "picking", at(1), picker_id="p1"),
         phone_event("o1", "p1", "+79991234567", at(60), at(2)))
    screen(client, "o1")
    assert app_logs.records, "the handler logs its events"
    assert "9991234567" not in app_logs.text()


def test_orders_and_phones_expire_after_the_retention_since_last_update(client):
    clock.freeze(at(0))
    send(client, status_event("o1", "picking", at(0), picker_id="p1"),
         phone_event("o1", "p1", "+70000000001", at(0) + dt.timedelta(days=30), at(0)))
    clock.freeze(at(0) + dt.timedelta(days=3))
    send(client, status_event("o1", "picked_up", at(0) + dt.timedelta(days=3), picker_id="p1"))
    order = PickerOrder.get("o1")
    assert order.expires_at == at(0) + dt.timedelta(days=10)  # 7 days after the last update
    assert PickerPhone.get("o1", "p1").expires_at == at(0) + dt.timedelta(days=7)
    clock.freeze(at(0) + dt.timedelta(days=10, seconds=-1))
    assert track(client, "o1").status_code == 200
    clock.freeze(at(0) + dt.timedelta(days=10))
    # moto never deletes: the read itself ignores the expired item.
    answer = track(client, "o1")
    assert answer.status_code == 404 and answer.json_body["code"] == "order_not_found"


def test_retention_is_configurable(client):
    put_config(client, "eats_orders_tracking_picker_retention_days", 2)
    clock.freeze(at(0))
    send(client, status_event("o1", "picked_up", at(0), picker_id="p1"))
    clock.freeze(at(0) + dt.timedelta(days=2, seconds=-1))
    assert screen(client, "o1")["title"] == PAYING
    clock.freeze(at(0) + dt.timedelta(days=2))
    assert track(client, "o1").status_code == 404
