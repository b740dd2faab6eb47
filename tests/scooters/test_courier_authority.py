"""Courier authority: only the claim's current performer, only while the claim is live (409 claim_finished after
the job, nothing changed); progress per claim; "swapped" at the configured full charge; state-actions answer for
the point asked about, from cargo when the stored status lags (one claims/info, cached)."""
from __future__ import annotations

import requests

from chalicelib.core import clock, config
from chalicelib.scooters.courier import authority
from chalicelib.scooters.recharge.models import RechargeTask

from .test_courier_fixtures import T0, car, make_courier, sim

SCOOTER_ACTIONS = ("find_vehicle", "vehicle_not_found", "open_battery_door", "vehicle_destroyed")


def _set(courier, **fields) -> None:
    RechargeTask(courier.task_id).update(actions=[getattr(RechargeTask, k).set(v) for k, v in fields.items()])


def _refused(answer, code: str = "claim_finished") -> bool:
    return answer.status_code == (409 if code == "claim_finished" else 403) and answer.json_body["code"] == code


def test_after_the_job_the_former_courier_changes_nothing(client, simulator, driver_auth):
    clock.freeze(T0)
    c = make_courier(client, simulator, driver_auth, claim_status="delivery_arrived", point="destination")
    for status in ("done", "waiting"):  # delivered; cancelled or failed before the swap (planned again)
        _set(c, status=status)
        assert _refused(c.status()) and _refused(c.open())
        for name in SCOOTER_ACTIONS:
            assert _refused(c.action(name))
        assert _refused(c.point_check("destination")) and _refused(c.handover("cab-1-1"))
        assert c.state_actions("destination").json_body["actions"] == []
        stranger = driver_auth("park1", "someone-else")
        assert _refused(c.action("find_vehicle", headers=stranger), "not_performer")
    state = car(simulator, c.car_id)
    assert state["signals"] == 0 and state["door_opens"] == 0 and state["tags"] == ["battery_low"]


def test_back_in_rent_ends_the_scooter_actions_not_the_return(client, simulator, driver_auth):
    clock.freeze(T0)
    c = make_courier(client, simulator, driver_auth, claim_status="pickuped", point="return")
    _set(c, status="rentable")
    for name in SCOOTER_ACTIONS:
        assert _refused(c.action(name))
    assert c.status().status_code == 200  # the return at C is still his
    assert car(simulator, c.car_id)["signals"] == 0


def test_a_claim_replaced_by_the_next_one(client, simulator, driver_auth):
    clock.freeze(T0)
    c = make_courier(client, simulator, driver_auth, claim_status="pickuped", point="destination")
    assert c.action("vehicle_not_found").status_code == 200  # progress of claim-1
    _set(c, claim_id="claim-2", status="performer_found")  # the scooter's next claim, the same courier
    assert _refused(c.action("find_vehicle"))  # his old claim: over
    new = type(c)(**{**c.__dict__, "claim_id": "claim-2"})
    # Progress is per claim: claim-1's report does not carry over; claim-2 starts from nothing.
    assert new.point_check("destination").json_body["code"] == "battery_not_swapped"
    assert new.action("vehicle_destroyed").status_code == 200
    assert authority.progress_of("claim-2").vehicle_report == "destroyed"
    assert authority.progress_of("claim-1").vehicle_report == "missing"
    stranger = driver_auth("park9", "nobody")
    assert _refused(c.action("find_vehicle", headers=stranger), "not_performer")
    unknown = client.http.post("/scooters-misc/taximeter/v1/find_vehicle?cargo_ref_id=claim-9&point_id=102",
                               headers=c.headers)
    assert unknown.status_code == 404


def test_a_charged_battery_is_swapped_from_the_configured_percent(client, simulator, driver_auth):
    clock.freeze(T0)
    c = make_courier(client, simulator, driver_auth, claim_status="delivery_arrived", point="destination")
    sim(simulator, "POST", "/_control/scooter_backend/cars", {"car_id": c.car_id, "battery_id": "new-1",
                                                              "battery_level": 96})
    assert c.point_check("destination").status_code == 200
    sim(simulator, "POST", "/_control/scooter_backend/cars", {"car_id": c.car_id, "battery_level": 94})
    answer = c.point_check("destination")
    assert answer.status_code == 409 and answer.json_body["code"] == "battery_not_charged"
    config.write("scooters_full_charge_percent", 90)
    assert c.point_check("destination").status_code == 200


def _cargo_claim(simulator) -> str:
    body = {"items": [{"title": "battery", "quantity": 1, "pickup_point": 101, "extra_id": "x"}],
            "route_points": [{"point_id": n, "type": kind, "address": {"coordinates": [37.6, 55.7]}}
                             for n, kind in ((101, "source"), (102, "destination"), (103, "return"))]}
    answer = requests.post(f"{simulator[0]}/cargo/b2b/cargo/integration/v2/claims/create?request_id=fresh",
                           json=body, timeout=5)
    return answer.json()["id"]


def test_state_actions_ask_cargo_when_the_stored_status_lags(client, simulator, driver_auth, upstream):
    clock.freeze(T0)
    claim_id = _cargo_claim(simulator)
    c = make_courier(client, simulator, driver_auth, claim_id=claim_id, claim_status="pickup_arrived",
                     point="source")
    sim(simulator, "POST", f"/_control/cargo/claims/{claim_id}/advance",
        {"status": "delivery_arrived", "current_point_id": 102})  # the journal has not told us yet

    def infos() -> int:
        return len([x for x in upstream.calls["cargo"] if x["path"].endswith("/info")])

    assert [a["type"] for a in c.state_actions("destination").json_body["actions"]] == [
        "open_battery_door", "vehicle_destroyed"]
    assert [a["type"] for a in c.state_actions("destination").json_body["actions"]] == [
        "open_battery_door", "vehicle_destroyed"]
    assert infos() == 1  # one call, kept a few seconds
    c.set_claim("delivery_arrived", "destination")  # the journal caught up: the stored status answers
    authority.forget_fresh()
    assert [a["type"] for a in c.state_actions("destination").json_body["actions"]] == [
        "open_battery_door", "vehicle_destroyed"]
    assert infos() == 1
