"""Scooters off the happy path, on the deployed local stack: a claim cancelled after the swap, a threshold tag, a
journal that loses performer_found (healed by ScootersReconcileClaims), and create answers lost on the way (one
live claim). The schedules and the planning queue run as deployed Lambdas against the simulators (:8100).

Reuses the recharge flow's helpers (tests/e2e/test_scooters.py).
"""
from __future__ import annotations

import time

import pytest
import requests

from .test_scooters import (  # noqa: F401 (area is a fixture)
    FIND, ScooterClaim, area, car, claimed, claims_of, control, fire_until, recharge_to, wait_task,
)

RECONCILE = "ScootersReconcileClaims"
SCREENS = "/scooters-misc/taximeter/screens/v1/battery_exchange"
LIVE = {"new", "estimating", "ready_for_approval", "accepted", "performer_lookup", "performer_draft",
        "performer_found"}


def _to_rentable(flow) -> None:
    flow.advance("pickup_arrived", point="source")
    flow.advance("pickuped", point="destination")
    flow.advance("delivery_arrived", point="destination")
    control(flow.stack, "scooter_backend/cars", {"car_id": flow.car_id, "battery_level": 100,
                                                 "battery_id": flow.stack.unique("new-battery")})
    flow.advance("pickuped", point="return")
    flow.follow_until(lambda t: t["status"] == "rentable", "rentable")


def test_a_cancellation_after_the_swap_sends_nobody_again(stack, area):
    flow = recharge_to(stack, area, until="performer_found")
    _to_rentable(flow)
    assert car(stack, flow.car_id)["tags"] == []
    flow.advance("cancelled", point="return")
    done = flow.follow_until(lambda t: t["status"] == "done", "closed after the swap")
    assert done["claim_outcome"] == "cancelled" and done["attempt"] == 1
    time.sleep(5)  # longer than the (fast) retry delays: a reschedule would have made its claim by now
    stack.fire_schedule(FIND)
    assert len(claims_of(stack, flow.task_id)) == 1 and flow.task()["status"] == "done"
    assert car(stack, flow.car_id)["tags"] == []


def test_a_threshold_tag_leaves_the_scooter_rentable(stack, area):
    area.depot("grocery", 0.003, 0.002, charged=2)
    car_id = area.scooter(level=90)
    requests.post(f"{stack.simulator}/scooter_backend/tag/add", json={"car_id": car_id, "tag": "battery_low_40"},
                  timeout=5)
    fire_until(stack, FIND, lambda: "recharge_processing" in car(stack, car_id)["tags"], f"{car_id} taken")
    tag_id = next(t["tag_id"] for t in car(stack, car_id)["tag_details"] if t["tag"] == "battery_low_40")
    task_id = f"{car_id}/{tag_id}"
    assert claimed(stack, task_id)["low_tag"] == "battery_low_40"
    claim = claims_of(stack, task_id)[0]
    flow = ScooterClaim(stack, car_id, task_id, claim["id"],
                        {p["type"]: p["point_id"] for p in claim["body"]["route_points"]})
    flow.follow_until(lambda t: t.get("claim_status") == "performer_lookup", "accepted")
    flow.advance("performer_found", performer=("e2e-park", "e2e-courier"))
    _to_rentable(flow)
    assert car(stack, car_id)["tags"] == []
    stack.fire_schedule(FIND)  # the next poll does not take it again
    time.sleep(1)
    assert car(stack, car_id)["tags"] == [] and len(claims_of(stack, task_id)) == 1


@pytest.fixture
def reconcile_at_once(stack):
    previous = stack.get("/internal/v1/configs/scooters_reconcile_settings").json()["value"]
    stack.put_config("scooters_reconcile_settings", {"stale_after_seconds": 1})
    yield
    stack.put_config("scooters_reconcile_settings", previous)


def test_a_lost_performer_found_is_healed_by_the_reconciler(stack, area, driver_auth, reconcile_at_once):
    park, driver = stack.unique("park"), stack.unique("courier")
    flow = recharge_to(stack, area, until="claimed")
    flow.follow_until(lambda t: t.get("claim_status") == "performer_lookup", "accepted")
    control(stack, "cargo/journal/drop", {"claim_id": flow.claim_id, "count": 1})
    flow.advance("performer_found", performer=(park, driver))
    headers = driver_auth(park, driver)
    screen = stack.get(f"{SCREENS}/status", params={"cargo_ref_id": flow.claim_id}, headers=headers)
    assert screen.status_code == 403  # the journal never told us: locked out
    fire_until(stack, RECONCILE, lambda: (lambda t: t if t["status"] == "performer_found" else None)(flow.task()),
               "healed by the reconciler")
    screen = stack.get(f"{SCREENS}/status", params={"cargo_ref_id": flow.claim_id}, headers=headers)
    assert screen.status_code == 200, screen.text
    t = flow.task()
    assert (t["performer_park_id"], t["performer_driver_profile_id"]) == (park, driver)


def test_lost_create_answers_end_in_one_live_claim(stack, area):
    area.depot("grocery", 0.003, 0.002, charged=2)
    car_id = area.scooter()
    # Every try of the first create is made by cargo but answered after the Lambda's 1 s read timeout.
    control(stack, "cargo/create/lose_answers", {"count": 3, "delay": 2.0})
    fire_until(stack, FIND, lambda: "recharge_processing" in car(stack, car_id)["tags"], f"{car_id} taken")
    tag_id = next(t["tag_id"] for t in car(stack, car_id)["tag_details"] if t["tag"] == "battery_low")
    task_id = f"{car_id}/{tag_id}"
    wait_task(stack, task_id, lambda t: t["attempt"] >= 2 or t["status"] == "claimed", "the first answer lost",
              timeout=90)
    t = claimed(stack, task_id)
    made = claims_of(stack, task_id)
    assert [c["id"] for c in made if c["status"] in LIVE] == [t["claim_id"]]
    assert len(made) == 1  # the claim the lost answer made was adopted, not doubled
    assert t["attempt"] >= 2 and "previous_attempt_key" not in t
    control(stack, "cargo/create/lose_answers", {"count": 0})
