"""Helpers of the courier screen tests: a recharge task written directly (as the recharge flow would leave it
when the claim has a performer), its cabinet, booking and scooter in the upstream simulator."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import requests

from chalicelib.core import clock
from chalicelib.scooters.recharge.models import RechargeTask

T0 = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.timezone.utc)
ACC = "/scooter_accumulator/scooter-accumulator/v1/cabinet"
SCREENS = "/scooters-misc/taximeter/screens/v1/battery_exchange"
ACTIONS = "/scooters-misc/taximeter/v1"
POINTS = {"source": "101", "destination": "102", "return": "103"}
PERFORMER = ("park1", "courier-1")


@dataclasses.dataclass
class Courier:
    """One claim's courier and the calls the app makes for them."""

    client: object
    headers: dict
    claim_id: str
    task_id: str
    cabinet_id: str
    cell_ids: list[str]
    car_id: str

    def get(self, path: str, headers: dict | None = None):
        return self.client.http.get(path, headers=self.headers if headers is None else headers)

    def post(self, path: str, headers: dict | None = None):
        return self.client.http.post(path, headers=self.headers if headers is None else headers)

    def status(self, **kwargs):
        return self.get(f"{SCREENS}/status?cargo_ref_id={self.claim_id}", **kwargs)

    def open(self, **kwargs):
        return self.post(f"{SCREENS}/open?cargo_ref_id={self.claim_id}", **kwargs)

    def broken(self, cell_id: str, **kwargs):
        return self.post(f"{SCREENS}/broken?cargo_ref_id={self.claim_id}&cell_id={cell_id}", **kwargs)

    def action(self, name: str, point: str = "destination", **kwargs):
        return self.post(f"{ACTIONS}/{name}?cargo_ref_id={self.claim_id}&point_id={POINTS[point]}", **kwargs)

    def point_check(self, point: str):
        return self.client.http.post(
            f"/scooters-misc/v1/cargo/point-check?cargo_ref_id={self.claim_id}&point_id={POINTS[point]}")

    def state_actions(self, point: str):
        return self.client.http.get(
            f"/scooters-misc/v1/cargo/state-actions?cargo_ref_id={self.claim_id}&point_id={POINTS[point]}")

    def handover(self, cell_id: str):
        return self.client.http.post(
            f"/scooters-misc/v1/cabinet/storekeeper-handover?cargo_ref_id={self.claim_id}&cell_id={cell_id}")

    def set_claim(self, status: str, point: str) -> None:
        RechargeTask(self.task_id).update(actions=[RechargeTask.claim_status.set(status),
                                                   RechargeTask.current_point_id.set(POINTS[point])])


def sim(simulator, method: str, path: str, body: dict | None = None, **kwargs) -> dict:
    answer = requests.request(method, simulator[0] + path, json=body, timeout=5, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.json()


def cabinet(simulator, cabinet_id: str, charged: int) -> None:
    sim(simulator, "POST", "/_control/scooter_accumulator/cabinets",
        {"store_id": f"grocery:{cabinet_id}", "cabinet_id": cabinet_id, "charged": charged})


def cells(simulator, cabinet_id: str) -> dict[str, dict]:
    answer = sim(simulator, "GET", f"{ACC}/cells", params={"cabinet_id": cabinet_id})
    return {cell["cell_id"]: cell for cell in answer["cells"]}


def take(simulator, cabinet_id: str) -> None:
    """The courier takes the battery out of the open cell (it closes by itself)."""
    sim(simulator, "POST", "/_control/scooter_accumulator/take", {"cabinet_id": cabinet_id})


def open_by_hand(simulator, cabinet_id: str) -> None:
    """Someone outside our bookings (staff, by hand) books a cell and opens it."""
    other = sim(simulator, "POST", f"{ACC}/accumulator/book", {"cabinet_id": cabinet_id, "accumulators_count": 1},
                headers={"X-Idempotency-Token": f"by-hand-{cabinet_id}"})
    sim(simulator, "POST", f"{ACC}/cell/open",
        {"cabinet_id": cabinet_id, "book_id": other["book_id"], "cell_id": other["cell_ids"][0]})


def opens(upstream) -> list[dict]:
    return [c for c in upstream.calls["scooter_accumulator"] if c["path"].endswith("/cell/open")]


def car(simulator, car_id: str) -> dict:
    return sim(simulator, "GET", f"/_control/scooter_backend/cars/{car_id}")


def make_courier(client, simulator, driver_auth, *, claim_id: str = "claim-1", cabinet_id: str = "cab-1",
                 charged: int = 2, batteries: int = 2, performer=PERFORMER, new_cabinet: bool = True,
                 claim_status: str = "pickup_arrived", point: str = "source") -> Courier:
    """A task whose claim `claim_id` has a performer, with `batteries` cells booked in `cabinet_id`."""
    if new_cabinet:
        cabinet(simulator, cabinet_id, charged)
    booking = sim(simulator, "POST", f"{ACC}/accumulator/book",
                  {"cabinet_id": cabinet_id, "accumulators_count": batteries},
                  headers={"X-Idempotency-Token": f"book-{claim_id}"})
    car_id = f"car-of-{claim_id}"
    sim(simulator, "POST", "/_control/scooter_backend/cars",
        {"car_id": car_id, "position": [37.62, 55.75], "battery_level": 20, "battery_id": f"old-{claim_id}"})
    now = clock.now()
    task = RechargeTask(
        f"{car_id}/tag-1", car_id=car_id, tag_id="tag-1", status="performer_found", position=[37.62, 55.75],
        battery_id=f"old-{claim_id}", store_id=f"grocery:{cabinet_id}", cabinet_id=cabinet_id,
        book_id=booking["book_id"], cell_ids=booking["cell_ids"], claim_id=claim_id, claim_version=1,
        claim_status=claim_status, point_ids=dict(POINTS), current_point_id=POINTS[point],
        performer_park_id=performer[0], performer_driver_profile_id=performer[1],
        created_at=now, updated_at=now, expires_at=now + dt.timedelta(days=7))
    task.save()
    headers = driver_auth(*performer) if performer[0] else {}
    return Courier(client=client, headers=headers, claim_id=claim_id, task_id=task.task_id,
                   cabinet_id=cabinet_id, cell_ids=list(booking["cell_ids"]), car_id=car_id)


@pytest.fixture
def courier(client, simulator, driver_auth):
    """A courier at the cabinet with two booked batteries (cells cab-1-1, cab-1-2); the clock at T0."""
    clock.freeze(T0)
    return make_courier(client, simulator, driver_auth)


def items(answer) -> list[dict]:
    assert answer.status_code == 200, answer.json_body
    return answer.json_body["constructor_items"]


def counters(answer) -> dict[str, int]:
    return {i["title"]: i["value"] for i in items(answer) if i["type"] == "counter"}


def buttons(answer) -> list[str]:
    return [i["title"] for i in items(answer) if i["type"] == "button"]


def texts(answer) -> list[str]:
    return [i["text"] for i in items(answer) if i["type"] in ("text", "header")]
