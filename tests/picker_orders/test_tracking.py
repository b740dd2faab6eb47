"""GET /eats/v1/eats-orders-tracking/v1/tracking: what the customer sees in each phase of a retail order."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core import clock
from chalicelib.core.openapi import build_document
from chalicelib.picker_orders.models import PickerOrder
from tests.conftest import as_eats_user
from tests.picker_orders.helpers import (
    BANNER, CALL_PICKER, CALL_PLACE, DEFAULT_PLACE_PHONE, PAYING, at, phone_event, put_config, screen, send,
    status_event, track,
)

PLACE_SCREEN = {
    "order_nr": "o1", "title": CALL_PLACE, "description": CALL_PLACE,
    "buttons": [{"type": "call", "title": "Связаться с нами",
                 "payload": {"contact_type": "place", "phone": DEFAULT_PLACE_PHONE}}],
    "banners": [{"text": BANNER, "appLink": ""}],
}


def test_the_screen_goes_through_all_four_phases(client):
    clock.freeze(at(0))
    send(client, status_event("o1", "new", at(0)))
    assert screen(client, "o1") == {**PLACE_SCREEN, "status": "new"}

    send(client, status_event("o1", "assigned", at(1), picker_id="p1"))
    assert screen(client, "o1") == {**PLACE_SCREEN, "status": "assigned"}

    # Picking, but the forwarded phone is not generated yet: still "call us".
    send(client, status_event("o1", "picking", at(2), picker_id="p1"))
    assert screen(client, "o1") == {**PLACE_SCREEN, "status": "picking"}

    send(client, phone_event("o1", "p1", "+70001112233", at(60), at(3)))
    assert screen(client, "o1") == {
        "order_nr": "o1", "status": "picking", "title": CALL_PICKER, "description": CALL_PICKER,
        "buttons": [{"type": "call", "title": "Позвонить сборщику",
                     "payload": {"contact_type": "picker", "phone": "+70001112233"}}],
        "banners": [{"text": BANNER, "appLink": ""}],
    }
    send(client, status_event("o1", "confirmed", at(4), picker_id="p1"))
    assert screen(client, "o1")["title"] == CALL_PICKER

    send(client, status_event("o1", "picked_up", at(5), picker_id="p1"))
    assert screen(client, "o1") == {"order_nr": "o1", "status": "picked_up", "title": PAYING, "description": PAYING,
                                    "buttons": [], "banners": []}
    send(client, status_event("o1", "receipt_processing", at(6), picker_id="p1"))
    assert screen(client, "o1")["title"] == PAYING

    send(client, status_event("o1", "paid", at(7), picker_id="p1"))
    assert screen(client, "o1") == {"order_nr": "o1", "status": "paid", "title": "Упаковываем заказ",
                                    "description": "Заказ оплачен, скоро передадим его курьеру",
                                    "buttons": [], "banners": []}
    send(client, status_event("o1", "complete", at(40), picker_id="p1"))
    body = screen(client, "o1")
    assert (body["status"], body["title"], body["buttons"], body["banners"]) == ("complete", "Заказ доставлен", [], [])


def test_cancelled_order_shows_its_default_texts(client):
    clock.freeze(at(0))
    send(client, status_event("o1", "new", at(0)), status_event("o1", "cancelled", at(1)))
    body = screen(client, "o1")
    assert (body["title"], body["buttons"], body["banners"]) == ("Заказ отменён", [], [])


def test_place_phone_comes_from_the_config_by_place_id(client):
    put_config(client, "eats_orders_tracking_place_phones",
               {"default": "+70000000000", "by_place_id": {"place-42": "+74950000042"}})
    send(client, status_event("o1", "new", at(0), place_id="place-42"),
         status_event("o2", "new", at(0), place_id="place-7"))
    assert screen(client, "o1")["buttons"][0]["payload"] == {"contact_type": "place", "phone": "+74950000042"}
    assert screen(client, "o2")["buttons"][0]["payload"] == {"contact_type": "place", "phone": "+70000000000"}


def test_call_place_experiment_off_shows_default_texts_before_picking(client):
    put_config(client, "eats_orders_tracking_picker_call_place_enabled", False)
    send(client, status_event("o1", "new", at(0)))
    body = screen(client, "o1")
    assert (body["title"], body["description"], body["buttons"], body["banners"]) == (
        "Заказ принят", "Скоро начнём собирать ваш заказ", [], [])


def test_call_picker_experiment_off_hides_the_picker_phone(client):
    clock.freeze(at(5))
    send(client, status_event("o1", "picking", at(1), picker_id="p1"),
         phone_event("o1", "p1", "+70001112233", at(60), at(2)))
    put_config(client, "eats_orders_tracking_picker_call_picker_enabled", False)
    body = screen(client, "o1")
    assert body["title"] == CALL_PLACE and body["buttons"][0]["payload"]["contact_type"] == "place"
    assert "+70001112233" not in str(body)
    put_config(client, "eats_orders_tracking_picker_call_place_enabled", False)
    body = screen(client, "o1")
    assert (body["title"], body["buttons"], body["banners"]) == ("Собираем заказ", [], [])


def test_paying_screen_is_not_behind_the_experiments(client):
    put_config(client, "eats_orders_tracking_picker_call_place_enabled", False)
    put_config(client, "eats_orders_tracking_picker_call_picker_enabled", False)
    send(client, status_event("o1", "picked_up", at(1), picker_id="p1"))
    assert screen(client, "o1")["title"] == PAYING


def test_another_customer_never_sees_the_order(client):
    send(client, status_event("o1", "new", at(0), customer_id="alice"))
    assert track(client, "o1", "alice").status_code == 200
    answer = track(client, "o1", "mallory")
    assert answer.status_code == 404
    assert answer.json_body == {"code": "order_not_found", "message": "order not found"}
    # Indistinguishable from an unknown order.
    assert track(client, "nope", "mallory").json_body == answer.json_body


def test_order_without_a_customer_is_shown_to_no_caller(client):
    # Neither the events nor eats-picker-orders name a customer (tests/picker_orders/test_customer.py has more).
    send(client, status_event("o1", "new", at(0), customer_id=None))
    assert track(client, "o1", "anyone").status_code == 404


def test_customer_is_the_first_one_seen(client):
    send(client, status_event("o1", "new", at(0), customer_id="alice"),
         status_event("o1", "assigned", at(1), customer_id="mallory"))
    assert track(client, "o1", "mallory").status_code == 404
    assert track(client, "o1", "alice").status_code == 200


def test_unknown_order_is_404(client):
    answer = track(client, "o-unknown")
    assert answer.status_code == 404 and answer.json_body["code"] == "order_not_found"


def test_missing_user_header_is_401(client):
    send(client, status_event("o1", "new", at(0)))
    answer = track(client, "o1", user_id=None)
    # Refused by the gateway before the view (its error shape in the deployed stack: tests/e2e/test_identity.py).
    assert answer.status_code == 401 and answer.headers["x-amzn-ErrorType"] == "UnauthorizedException"


@pytest.mark.parametrize("query", ["", "?order_nr=", "?order_nr=a%20b", "?order_nr=" + "x" * 65])
def test_bad_order_nr_is_400(client, query):
    answer = client.http.get(f"/eats/v1/eats-orders-tracking/v1/tracking{query}", headers=as_eats_user("c1"))
    assert answer.status_code == 400
    assert answer.json_body["code"] == "invalid_request"


def test_openapi_lists_the_route_with_its_response_and_the_picker_contact_type():
    document = build_document()
    operation = document["paths"]["/eats/v1/eats-orders-tracking/v1/tracking"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"order_nr"}
    assert operation["security"] == [{"eatsSession": []}]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TrackedOrder"}
    assert {"401", "404"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert set(schemas["TrackedOrder"]["required"]) >= {"title", "description", "buttons", "banners"}
    assert schemas["TrackedOrderButtonContactType"]["enum"] == ["courier", "place", "picker"]
    assert "appLink" in schemas["TrackedOrderBanner"]["properties"]


# --- the customer named by ANY event sticks (review: an older event's customer_id was dropped) ----------

def test_customer_on_an_older_event_is_kept_and_guards_the_picker_phone(client):
    # The reviewer's scenario: the newest event names no customer, the older one that does arrives later.
    clock.freeze(at(2))
    assert send(client, status_event("o1", "picking", at(0, 30), picker_id="p1", customer_id=None)) == []
    assert send(client, status_event("o1", "new", at(0), customer_id="alice")) == []  # history-only path
    assert send(client, phone_event("o1", "p1", "+70001112233", at(60), at(1), customer_id=None)) == []
    answer = track(client, "o1", "mallory")
    assert answer.status_code == 404 and "+70001112233" not in str(answer.body)
    assert screen(client, "o1", "alice")["buttons"][0]["payload"] == {"contact_type": "picker",
                                                                      "phone": "+70001112233"}


@pytest.mark.parametrize("older", [
    "dispatching",  # no history field: the stale path
    "picking",  # its history field is newer already: the history write is refused too
])
def test_customer_on_a_stale_event_is_kept(client, older):
    clock.freeze(at(5))
    send(client, status_event("o1", "picking", at(3), picker_id="p1", customer_id=None),
         status_event("o1", "confirmed", at(4), picker_id="p1", customer_id=None))
    assert send(client, status_event("o1", older, at(1), picker_id="p1", customer_id="alice")) == []
    order = PickerOrder.get("o1")
    assert (order.status, order.customer_id, order.picking_at) == ("confirmed", "alice", at(3))
    assert track(client, "o1", "mallory").status_code == 404
    assert track(client, "o1", "alice").status_code == 200


def test_first_customer_sticks_whatever_the_events_age(client):
    send(client, status_event("o1", "picking", at(5), picker_id="p1", customer_id="alice"))
    send(client, status_event("o1", "new", at(0), customer_id="mallory"),  # history-only
         status_event("o1", "dispatching", at(1), customer_id="mallory"),  # stale
         status_event("o1", "picked_up", at(9), picker_id="p1", customer_id="mallory"),  # applied
         phone_event("o1", "p1", "+70001112233", at(60), at(6), customer_id="mallory"))
    assert PickerOrder.get("o1").customer_id == "alice"
    assert track(client, "o1", "mallory").status_code == 404


def test_customer_named_only_by_the_phone_event_is_kept(client):
    clock.freeze(at(2))
    send(client, status_event("o1", "picking", at(0), picker_id="p1", customer_id=None),
         phone_event("o1", "p1", "+70001112233", at(60), at(1), customer_id="alice"))
    assert track(client, "o1", "mallory").status_code == 404
    assert screen(client, "o1", "alice")["buttons"][0]["payload"]["phone"] == "+70001112233"


def test_phone_event_before_any_status_keeps_its_customer(client):
    clock.freeze(at(2))
    send(client, phone_event("o1", "p1", "+70001112233", at(60), at(1), customer_id="alice"))
    assert track(client, "o1", "alice").status_code == 404  # no status yet: still unknown
    assert track(client, "o1", "mallory").status_code == 404
    send(client, status_event("o1", "picking", at(0), picker_id="p1", customer_id=None))
    assert track(client, "o1", "mallory").status_code == 404
    assert screen(client, "o1", "alice")["title"] == CALL_PICKER
    assert PickerOrder.get("o1").expires_at == at(2) + dt.timedelta(days=7)
