"""The picker flow's experiments choose per call: the screen behaviours per user (and order, place), the
refresh timeouts per order."""
from __future__ import annotations

from chalicelib.core import clock
from chalicelib.picker_orders.models import PickerOrder
from tests.picker_orders.helpers import (
    CALL_PICKER, CALL_PLACE, at, phone_event, put_config, run_job, screen, send, status_event,
)

CALL_PICKER_EXP = "eats_orders_tracking_picker_call_picker_enabled"
CALL_PLACE_EXP = "eats_orders_tracking_picker_call_place_enabled"
TIMEOUTS = "eats_orders_tracking_picker_statuses_timeout"
PHONE = "+70001112233"


def picking_with_phone(client, order_nr: str, customer: str) -> None:
    clock.freeze(at(5))
    assert send(client, status_event(order_nr, "picking", at(1), picker_id="p1", customer_id=customer),
                phone_event(order_nr, "p1", PHONE, at(60), at(2), customer_id=customer)) == []


def test_call_the_picker_for_one_user_and_not_another(client):
    put_config(client, CALL_PICKER_EXP, {"clauses": [
        {"title": "beta users", "predicate": {"in": {"user_id": ["alice"]}}, "value": True}], "default": False})
    picking_with_phone(client, "o1", "alice")
    picking_with_phone(client, "o2", "bob")
    alice = screen(client, "o1", "alice")
    assert alice["title"] == CALL_PICKER and alice["buttons"][0]["payload"]["phone"] == PHONE
    bob = screen(client, "o2", "bob")
    assert bob["title"] == CALL_PLACE and PHONE not in str(bob)  # the default: "call us" instead


def test_call_place_off_for_one_place(client):
    put_config(client, CALL_PLACE_EXP, {"clauses": [
        {"title": "no phone desk", "predicate": {"eq": {"place_id": "place-9"}}, "value": False}], "default": True})
    clock.freeze(at(1))
    send(client, status_event("o1", "new", at(0), place_id="place-9"), status_event("o2", "new", at(0)))
    assert screen(client, "o1")["buttons"] == []
    assert screen(client, "o2")["title"] == CALL_PLACE


def test_refresh_timeouts_per_order_only_the_targeted_place_is_refreshed_early(client, sim):
    put_config(client, TIMEOUTS, {
        "clauses": [{"title": "fast place", "predicate": {"eq": {"place_id": "fast"}},
                     "value": [{"status": "picking", "timeout": 60}]}],
        "default": [{"status": "picking", "timeout": 600}],
    })
    for order_nr, place in (("quick", "fast"), ("slow", "place-1")):
        clock.freeze(at(0))
        send(client, status_event(order_nr, "picking", at(0), picker_id="p1", place_id=place))
        sim.order(order_nr, status="paid", picker_id="p1", status_updated_at=at(1).isoformat())
    clock.freeze(at(5))  # 5 minutes: past the fast place's 1 minute, not the default 10
    run_job(client)
    assert (PickerOrder.get("quick").status, PickerOrder.get("slow").status) == ("paid", "picking")
    clock.freeze(at(11))
    run_job(client)
    assert PickerOrder.get("slow").status == "paid"


def test_local_demo_values_are_experiments_that_match_everybody():
    import json

    from chalicelib.core import config
    from tests.conftest import ROOT

    values = json.loads((ROOT / "local/demo_configs/picker_orders.json").read_text())
    assert set(values) == {TIMEOUTS, CALL_PICKER_EXP, CALL_PLACE_EXP}
    for name, value in values.items():
        definition = config.lookup(name)
        assert definition.kind == "experiment"
        demo = definition.compile(definition.validate(value))
        for kwargs in ({}, {"user_id": "anyone", "order_nr": "o1", "place_id": "p"}):
            assert demo.match(kwargs) == demo.possible_values()[0], (name, kwargs)  # the first clause
    assert values[CALL_PICKER_EXP]["clauses"][0]["value"] is True
