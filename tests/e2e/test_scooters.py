"""Scooters on the deployed local stack: the schedules and the planning queue run as deployed Lambdas, against
the simulated scooter backend, cabinets service and cargo (:8100).

Every test works in a place of its own (a random spot, depots and cabinets with unique ids next to it), so
tests never see each other's scooters on a long-lived `make run` stack. The configs a test changes are put
back afterwards. The helpers are reusable (the courier screens' e2e steps start from `ScooterClaim`):

    claim = recharge_to(stack, area, until="performer_found", performer=("park", "driver"))
    claim.advance("pickup_arrived", point="source")
"""
from __future__ import annotations

import dataclasses
import random

import pytest
import requests

FIND = "ScootersFindDischarged"
FOLLOW = "ScootersFollowClaims"
TASKS_TABLE = "scooters_recharge_tasks"
FAST_RETRIES = {"no_cabinet": 2, "upstream_unavailable": 2, "claim_failed": 2, "performer_not_found": 2,
                "config_error": 2, "max_delay": 60}
CONFIGS = ("scooters_depots", "scooters_recharge_retry_delays")


def control(stack, path: str, body=None, method: str = "POST") -> dict:
    answer = requests.request(method, f"{stack.simulator}/_control/{path}", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


@dataclasses.dataclass
class Area:
    """A spot of our own: a scooter there, depots ~0.3 km and ~1.5 km away, each with a cabinet."""

    stack: object
    lon: float
    lat: float
    depots: list = dataclasses.field(default_factory=list)

    def near(self, dlon: float, dlat: float) -> list[float]:
        return [round(self.lon + dlon, 6), round(self.lat + dlat, 6)]

    def depot(self, kind: str, dlon: float, dlat: float, charged: int) -> tuple[str, str]:
        store_id, cabinet_id = self.stack.unique(f"{kind}:e2e"), self.stack.unique("cab")
        control(self.stack, "scooter_accumulator/cabinets", {"store_id": store_id, "cabinet_id": cabinet_id,
                                                             "charged": charged})
        self.depots.append({"store_id": store_id, "position": self.near(dlon, dlat)})
        self.stack.put_config("scooters_depots", self.depots)
        return store_id, cabinet_id

    def scooter(self, level: int = 20) -> str:
        car_id = self.stack.unique("e2e-scooter")
        control(self.stack, "scooter_backend/cars", {"car_id": car_id, "position": self.near(0, 0),
                                                     "battery_level": level})
        return car_id


@pytest.fixture
def area(stack):
    previous = {name: stack.get(f"/internal/v1/configs/{name}").json() for name in CONFIGS}
    stack.put_config("scooters_recharge_retry_delays", FAST_RETRIES)
    spot = Area(stack, lon=round(random.uniform(20.0, 60.0), 4), lat=round(random.uniform(40.0, 65.0), 4))
    yield spot
    for name, answer in previous.items():
        stack.put_config(name, answer["value"])


# --- reading state ----------------------------------------------------------------------------------------

def car(stack, car_id: str) -> dict:
    return control(stack, f"scooter_backend/cars/{car_id}", method="GET")


def task_id_of(stack, car_id: str) -> str:
    tag_id = next(t["tag_id"] for t in car(stack, car_id)["tag_details"] if t["tag"] == "battery_low")
    return f"{car_id}/{tag_id}"


def task(stack, task_id: str) -> dict | None:
    from boto3.dynamodb.types import TypeDeserializer

    item = stack.client("dynamodb").get_item(TableName=TASKS_TABLE, Key={"task_id": {"S": task_id}},
                                             ConsistentRead=True).get("Item")
    return {k: TypeDeserializer().deserialize(v) for k, v in item.items()} if item else None


def claims_of(stack, task_id: str) -> list[dict]:
    return [c for c in control(stack, "cargo/claims", method="GET")["claims"]
            if any(i.get("extra_id") == task_id for i in c["body"]["items"])]


def bookings(stack) -> dict:
    return control(stack, "scooter_accumulator/state", method="GET")["bookings"]


def fire_until(stack, function: str, check, what: str, timeout: float = 60):
    """Fire a schedule until `check()` holds (a run may be skipped: the minute's own run holds the lease)."""
    def probe():
        found = check()
        if found:
            return found
        stack.fire_schedule(function)
        return check()

    return stack.wait_until(probe, timeout=timeout, interval=1.0, what=what)


def wait_task(stack, task_id: str, check, what: str, timeout: float = 60) -> dict:
    return stack.wait_until(lambda: (lambda t: t if t and check(t) else None)(task(stack, task_id)),
                            timeout=timeout, what=f"{task_id}: {what}")


# --- the reusable flow ------------------------------------------------------------------------------------

@dataclasses.dataclass
class ScooterClaim:
    stack: object
    car_id: str
    task_id: str
    claim_id: str
    points: dict  # "source"/"destination"/"return" -> the point id as the claim reports it

    def advance(self, status: str, point: str | None = None, performer: tuple[str, str] | None = None) -> None:
        body = {"status": status}
        if point:
            body["current_point_id"] = self.points[point]
        if performer:
            body["performer"] = {"park_id": performer[0], "driver_profile_id": performer[1]}
        control(self.stack, f"cargo/claims/{self.claim_id}/advance", body)

    def task(self) -> dict:
        return task(self.stack, self.task_id)

    def follow_until(self, check, what: str) -> dict:
        return fire_until(self.stack, FOLLOW, lambda: (lambda t: t if t and check(t) else None)(self.task()),
                          what=f"{self.task_id}: {what}")


def find_and_plan(stack, car_id: str) -> str:
    """Fire the finder until the scooter is taken; returns its task id (planning runs from the queue)."""
    fire_until(stack, FIND, lambda: "recharge_processing" in car(stack, car_id)["tags"], f"{car_id} taken")
    return task_id_of(stack, car_id)


def claimed(stack, task_id: str) -> dict:
    return wait_task(stack, task_id, lambda t: t["status"] == "claimed", "claimed")


def recharge_to(stack, area: Area, until: str = "performer_found",
                performer: tuple[str, str] = ("e2e-park", "e2e-courier")) -> ScooterClaim:
    """A discharged scooter in `area` taken up to `until` ("claimed", "performer_found" or "pickup_arrived")."""
    if not area.depots:
        area.depot("grocery", 0.003, 0.002, charged=2)
    car_id = area.scooter()
    task_id = find_and_plan(stack, car_id)
    claimed(stack, task_id)
    claim = next(c for c in claims_of(stack, task_id))
    points = {p["type"]: p["point_id"] for p in claim["body"]["route_points"]}
    flow = ScooterClaim(stack, car_id, task_id, claim["id"], points)
    if until == "claimed":
        return flow
    # ready_for_approval -> accepted by the follower -> performer_lookup in cargo
    flow.follow_until(lambda t: t.get("claim_status") == "performer_lookup", "accepted")
    flow.advance("performer_found", performer=performer)
    flow.follow_until(lambda t: t["status"] == "performer_found", "performer found")
    if until == "pickup_arrived":
        flow.advance("pickup_arrived", point="source")
        flow.follow_until(lambda t: t.get("claim_status") == "pickup_arrived", "at the cabinet")
    return flow


@pytest.fixture
def scooter_claim(stack, area):
    """`scooter_claim(until="performer_found"|"pickup_arrived", performer=(park, driver))` -> ScooterClaim."""
    return lambda **kwargs: recharge_to(stack, area, **kwargs)


# --- the tests --------------------------------------------------------------------------------------------

def test_a_scooter_from_battery_low_back_to_rent(stack, scooter_claim):
    flow = scooter_claim(until="performer_found", performer=("park-e2e", "courier-e2e"))
    t = flow.task()
    assert (t["performer_park_id"], t["performer_driver_profile_id"]) == ("park-e2e", "courier-e2e")
    assert bookings(stack)[t["book_id"]]["contractor_id"] == "park-e2e_courier-e2e"
    state = car(stack, flow.car_id)
    assert state["servicing"][t["tag_id"]]["status"] == "started"
    assert {"battery_low", "recharge_processing"} <= set(state["tags"])  # not rentable during the swap

    flow.advance("pickup_arrived", point="source")
    flow.advance("pickuped", point="destination")
    flow.advance("delivery_arrived", point="destination")
    flow.follow_until(lambda x: x.get("claim_status") == "delivery_arrived", "at the scooter")
    assert "battery_low" in car(stack, flow.car_id)["tags"]

    flow.advance("pickuped", point="return")  # swapped: heading back to the cabinet
    flow.follow_until(lambda x: x["status"] == "rentable", "rentable")
    state = car(stack, flow.car_id)
    assert state["tags"] == [] and state["servicing"][t["tag_id"]]["status"] == "finished"

    flow.advance("delivery_arrived", point="return")
    flow.advance("delivered", point="return")
    flow.follow_until(lambda x: x["status"] == "done", "done")
    assert bookings(stack)[t["book_id"]]["contractor_id"] is None
    assert len(claims_of(stack, flow.task_id)) == 1


def test_no_cabinet_in_range_waits_then_plans(stack, area):
    car_id = area.scooter()
    task_id = find_and_plan(stack, car_id)
    wait_task(stack, task_id, lambda t: t["status"] == "waiting" and t.get("reason") == "no_cabinet", "no cabinet")
    assert claims_of(stack, task_id) == []
    area.depot("garage", -0.004, 0.001, charged=1)  # a cabinet opens nearby: the next try takes it
    claimed(stack, task_id)


def test_a_booking_race_takes_the_next_cabinet(stack, area):
    _, near = area.depot("grocery", 0.003, 0.002, charged=1)
    _, far = area.depot("garage", 0.02, 0.01, charged=1)
    control(stack, "scooter_accumulator/race", {"cabinet_id": near})
    car_id = area.scooter()
    task_id = find_and_plan(stack, car_id)
    t = claimed(stack, task_id)
    assert t["cabinet_id"] == far and bookings(stack)[t["book_id"]]["cabinet_id"] == far


def test_cargo_down_then_up(stack, area):
    _, cabinet = area.depot("grocery", 0.003, 0.002, charged=1)
    stack.fault("cargo", mode="error", status=503)
    try:
        car_id = area.scooter()
        task_id = find_and_plan(stack, car_id)
        t = wait_task(stack, task_id, lambda t: t["status"] == "waiting" and t["attempt"] >= 2, "released")
        assert t.get("book_id") is None
        assert not [b for b in bookings(stack).values() if b["cabinet_id"] == cabinet and b["status"] == "booked"]
    finally:
        stack.clear_faults("cargo")
    t = claimed(stack, task_id)
    assert len(claims_of(stack, task_id)) == 1 and t["cabinet_id"] == cabinet


def test_performer_not_found_releases_and_claims_again(stack, scooter_claim):
    flow = scooter_claim(until="claimed")
    first_book = flow.task()["book_id"]
    flow.follow_until(lambda t: t.get("claim_status") == "performer_lookup", "accepted")
    flow.advance("performer_not_found")
    fire_until(stack, FOLLOW, lambda: (lambda t: t if t and (t["attempt"] >= 2) else None)(flow.task()),
               what="released")
    assert bookings(stack)[first_book]["status"] == "unbooked"
    t = claimed(stack, flow.task_id)  # planned again after the (short) delay: a new claim, a new booking
    claims = claims_of(stack, flow.task_id)
    assert len(claims) == 2 and t["claim_id"] == claims[1]["id"] != flow.claim_id
