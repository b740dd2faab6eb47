"""Helpers of the recharge flow tests: configs, simulator controls, the planning queue's sent messages."""
from __future__ import annotations

import dataclasses
import json

import pytest
import requests

from chalicelib.core import config, queues
from chalicelib.scooters.courier import authority
from chalicelib.scooters.recharge import finder, follower, planner, reconciler
from chalicelib.scooters.recharge.models import get_task
from chalicelib.scooters.recharge.schemas import PlanMessage

DEPOT_NEAR = {"store_id": "grocery:near", "position": [37.6170, 55.7550]}   # ~0.3 km from CAR_POSITION
DEPOT_FAR = {"store_id": "garage:far", "position": [37.6400, 55.7600]}      # ~1.5 km
DEPOT_AWAY = {"store_id": "grocery:away", "position": [30.3141, 59.9386]}   # another city
CAR_POSITION = [37.6200, 55.7530]


@dataclasses.dataclass
class Sent:
    queue: str
    message: PlanMessage
    delay_seconds: int


class Recharge:
    def __init__(self, base: str):
        self.base = base
        self.sent: list[Sent] = []

    # --- simulator --------------------------------------------------------------------------------------
    def control(self, path: str, body=None, method: str = "POST"):
        answer = requests.request(method, f"{self.base}/_control/{path}", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def car(self, car_id: str, level: int = 20, position=None):
        return self.control("scooter_backend/cars", {"car_id": car_id, "position": position or CAR_POSITION,
                                                     "battery_level": level})

    def car_state(self, car_id: str) -> dict:
        return self.control(f"scooter_backend/cars/{car_id}", method="GET")

    def cabinet(self, store_id: str, cabinet_id: str, charged: int = 2):
        return self.control("scooter_accumulator/cabinets", {"store_id": store_id, "cabinet_id": cabinet_id,
                                                             "charged": charged})

    def bookings(self) -> dict:
        return self.control("scooter_accumulator/state", method="GET")["bookings"]

    def live_bookings(self) -> list[dict]:
        return [b for b in self.bookings().values() if b["status"] == "booked" and b.get("book_id")]

    def claims(self) -> list[dict]:
        return self.control("cargo/claims", method="GET")["claims"]

    def advance(self, claim_id: str, status: str, current_point_id=None, performer=None):
        body = {"status": status}
        if current_point_id is not None:
            body["current_point_id"] = current_point_id
        if performer is not None:
            body["performer"] = {"park_id": performer[0], "driver_profile_id": performer[1]}
        return self.control(f"cargo/claims/{claim_id}/advance", body)

    def fault(self, upstream: str, mode: str = "error", count=None, status: int = 500):
        return self.control("faults", {"upstream": upstream, "mode": mode, "count": count, "status": status,
                                       "delay": 1.0})

    def calls(self, upstream: str) -> list[dict]:
        return requests.get(f"{self.base}/_control/calls", params={"upstream": upstream}, timeout=5).json()["calls"]

    # --- the app ----------------------------------------------------------------------------------------
    def depots(self, *depots):
        config.write("scooters_depots", list(depots))

    def algorithm(self, value):
        config.write("scooters_recharge_algorithm", value)

    def find(self):
        return finder.find_discharged()

    def due(self) -> list[Sent]:
        """Take the sent messages SQS would deliver now (no delay)."""
        now = [s for s in self.sent if s.delay_seconds == 0]
        self.sent = [s for s in self.sent if s.delay_seconds > 0]
        return now

    def plan_due(self) -> list[str]:
        outcomes = []
        for _ in range(10):
            due = self.due()
            if not due:
                break
            outcomes += [planner.plan(s.message) for s in due]
        return outcomes

    def follow(self):
        return follower.follow_claims()

    def reconcile(self):
        return reconciler.reconcile_claims()

    def task(self, task_id: str):
        return get_task(task_id)


@pytest.fixture
def recharge(aws_mock, upstream, simulator, monkeypatch):
    helper = Recharge(simulator[0])
    original = queues.send

    def spy(queue, message, *, delay_seconds=0):
        helper.sent.append(Sent(queue, PlanMessage.model_validate(json.loads(message.model_dump_json())),
                                delay_seconds))
        return original(queue, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", spy)
    follower._foreign.clear()
    authority.forget_fresh()
    helper.depots(DEPOT_NEAR, DEPOT_FAR, DEPOT_AWAY)
    helper.cabinet("grocery:near", "cab-near", 2)
    helper.cabinet("garage:far", "cab-far", 2)
    return helper


@dataclasses.dataclass
class Claimed:
    task_id: str
    claim_id: str
    points: dict  # type -> the point id as the claim reports it (int in the simulator)


@pytest.fixture
def claimed(recharge) -> Claimed:
    """A discharged scooter planned up to its cargo claim (the claim is ready_for_approval in cargo)."""
    recharge.car("s1", level=20)
    recharge.find()
    task_id = recharge.sent[0].message.task_id
    assert recharge.plan_due() == ["claimed"]
    [claim] = recharge.claims()
    points = {p["type"]: p["point_id"] for p in claim["body"]["route_points"]}
    return Claimed(task_id, claim["id"], points)
