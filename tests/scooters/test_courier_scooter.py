"""The courier's actions per point (state-actions), at the scooter (signal, door, missing, destroyed) and the
slider checks at the scooter and the return point."""
from __future__ import annotations

import pytest

from chalicelib.core import clock
from chalicelib.scooters.courier.authority import progress_of
from local.simulator.server import Fault

from .test_courier_fixtures import T0, car, make_courier, sim


@pytest.fixture
def on_the_way(client, simulator, driver_auth):
    """The courier took the batteries and walks to the scooter (pickuped, heading to B)."""
    clock.freeze(T0)
    return make_courier(client, simulator, driver_auth, batteries=1, claim_status="pickuped", point="destination")


def _actions(answer) -> list[str]:
    assert answer.status_code == 200, answer.json_body
    return [action["type"] for action in answer.json_body["actions"]]


def test_state_actions_per_point_and_status(on_the_way):
    """Each point's actions, from where the courier is (cargo has no such claim here: the stored state answers)."""
    on_the_way.set_claim("pickup_arrived", "source")
    assert on_the_way.state_actions("source").json_body["actions"] == [{"type": "battery_exchange", "mode": "pickup"}]
    on_the_way.set_claim("pickuped", "destination")
    assert _actions(on_the_way.state_actions("source")) == []  # A is behind the courier
    assert _actions(on_the_way.state_actions("destination")) == ["find_vehicle", "vehicle_not_found"]
    assert _actions(on_the_way.state_actions("return")) == []
    on_the_way.set_claim("delivery_arrived", "destination")
    assert _actions(on_the_way.state_actions("destination")) == ["open_battery_door", "vehicle_destroyed"]
    on_the_way.set_claim("delivery_arrived", "return")
    assert _actions(on_the_way.state_actions("destination")) == []
    assert on_the_way.state_actions("return").json_body["actions"] == [{"type": "battery_exchange", "mode": "return"}]


def test_state_actions_unknown_claim_point_or_bad_query(on_the_way, client):
    base = "/scooters-misc/v1/cargo/state-actions"
    assert client.http.get(f"{base}?cargo_ref_id=nope&point_id=101").status_code == 404
    unknown_point = client.http.get(f"{base}?cargo_ref_id={on_the_way.claim_id}&point_id=999")
    assert unknown_point.status_code == 404 and unknown_point.json_body["code"] == "point_not_found"
    assert client.http.get(f"{base}?cargo_ref_id={on_the_way.claim_id}").status_code == 400
    assert client.http.get(f"{base}?cargo_ref_id={on_the_way.claim_id}&point_id=1%2F2").status_code == 400


def test_find_vehicle_makes_the_scooter_beep(on_the_way, simulator):
    answer = on_the_way.action("find_vehicle")
    assert answer.status_code == 200 and answer.json_body["status"] == "ok"
    assert car(simulator, on_the_way.car_id)["signals"] == 1
    at_cabinet = on_the_way.action("find_vehicle", point="source")
    assert at_cabinet.status_code == 409 and at_cabinet.json_body["code"] == "not_scooter_point"


def test_the_swap_passes_the_slider(on_the_way, simulator):
    on_the_way.set_claim("delivery_arrived", "destination")
    before = on_the_way.point_check("destination")
    assert before.status_code == 409 and before.json_body["code"] == "battery_not_swapped"
    assert "прежний аккумулятор" in before.json_body["message"]
    assert on_the_way.action("open_battery_door").status_code == 200
    assert car(simulator, on_the_way.car_id)["door_opens"] == 1
    assert on_the_way.point_check("destination").status_code == 200


def test_a_new_battery_not_fully_charged_fails_the_slider(on_the_way, simulator):
    sim(simulator, "POST", "/_control/scooter_backend/cars",
        {"car_id": on_the_way.car_id, "battery_id": "another", "battery_level": 80})
    answer = on_the_way.point_check("destination")
    assert answer.status_code == 409 and answer.json_body["code"] == "battery_not_charged"
    assert "80 %" in answer.json_body["message"]


def test_a_stuck_door_sends_the_courier_to_repair(on_the_way, simulator):
    sim(simulator, "POST", "/_control/scooter_backend/cars", {"car_id": on_the_way.car_id, "door_stuck": True})
    answer = on_the_way.action("open_battery_door")
    assert answer.status_code == 409 and answer.json_body["code"] == "door_stuck"
    assert "Ремонт" in answer.json_body["message"]
    destroyed = on_the_way.action("vehicle_destroyed")
    assert destroyed.status_code == 200
    assert "scooter_destroyed" in car(simulator, on_the_way.car_id)["tags"]
    # The flow goes on as if the battery were swapped.
    assert on_the_way.point_check("destination").status_code == 200


def test_vehicle_not_found_tags_it_once_and_the_flow_goes_on(on_the_way, simulator):
    assert on_the_way.action("vehicle_not_found").status_code == 200
    assert on_the_way.action("vehicle_not_found").status_code == 200  # a retry changes nothing
    tags = car(simulator, on_the_way.car_id)["tags"]
    assert tags.count("scooter_missing") == 1 and "battery_low" in tags
    assert on_the_way.point_check("destination").status_code == 200
    assert progress_of(on_the_way.claim_id).vehicle_report == "missing"
    other = on_the_way.action("vehicle_destroyed")
    assert other.status_code == 409 and other.json_body["code"] == "already_reported"
    assert "scooter_destroyed" not in car(simulator, on_the_way.car_id)["tags"]


def test_a_report_survives_a_failed_tag_call(on_the_way, simulator, upstream):
    upstream.faults["scooter_backend"] = Fault(mode="error", status=500)
    failed = on_the_way.action("vehicle_not_found")
    assert failed.status_code == 503 and failed.json_body["code"] == "scooter_backend_unavailable"
    upstream.faults.clear()
    assert on_the_way.action("vehicle_not_found").status_code == 200
    assert car(simulator, on_the_way.car_id)["tags"].count("scooter_missing") == 1


def test_scooter_backend_down(on_the_way, upstream):
    upstream.faults["scooter_backend"] = Fault(mode="error", status=502)
    assert on_the_way.action("find_vehicle").status_code == 503
    assert on_the_way.action("open_battery_door").status_code == 503
    assert on_the_way.point_check("destination").status_code == 503


def test_the_return_point_check_waits_for_the_battery(on_the_way):
    answer = on_the_way.point_check("return")
    assert answer.status_code == 409 and answer.json_body["code"] == "battery_not_returned"


def test_point_check_unknown_claim_or_point(on_the_way, client):
    assert client.http.post("/scooters-misc/v1/cargo/point-check?cargo_ref_id=nope&point_id=101").status_code == 404
    assert client.http.post(f"/scooters-misc/v1/cargo/point-check?cargo_ref_id={on_the_way.claim_id}&point_id=7"
                            ).status_code == 404
    assert client.http.post("/scooters-misc/v1/cargo/point-check?point_id=7").status_code == 400


def test_only_the_performer_acts_at_the_scooter(on_the_way, driver_auth, simulator):
    other = driver_auth("park1", "someone-else")
    for name in ("find_vehicle", "vehicle_not_found", "open_battery_door", "vehicle_destroyed"):
        answer = on_the_way.action(name, headers=other)
        assert answer.status_code == 403 and answer.json_body["code"] == "not_performer"
    state = car(simulator, on_the_way.car_id)
    assert state["signals"] == 0 and state["door_opens"] == 0 and state["tags"] == ["battery_low"]


def test_unknown_claim_is_404_for_the_driver(on_the_way, client):
    answer = client.http.post("/scooters-misc/taximeter/v1/find_vehicle?cargo_ref_id=nope&point_id=102",
                              headers=on_the_way.headers)
    assert answer.status_code == 404 and answer.json_body["code"] == "claim_not_found"
