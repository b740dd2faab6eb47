"""The courier screens on the deployed local stack: a real claim from the recharge flow (its schedules and queue
run as deployed Lambdas), the courier's calls through the API with a driver session, the cabinets and the
scooter in the simulator (:8100): the whole path A -> B (a 96 % battery is a charged one) -> C (the old battery
back in a cell) -> delivered, and the former courier refused after the job.

Reuses the recharge flow's helpers (tests/e2e/test_scooters.py): `area` (a spot of our own with depots) and
`recharge_to` (a discharged scooter taken up to a claim with a performer).
"""
from __future__ import annotations

from .test_scooters import area, car, control, recharge_to  # noqa: F401 (area is a fixture)

SCREENS = "/scooters-misc/taximeter/screens/v1/battery_exchange"
ACTIONS = "/scooters-misc/taximeter/v1"


class Courier:
    def __init__(self, stack, flow, headers):
        self.stack, self.flow, self.headers = stack, flow, headers

    @property
    def claim(self) -> str:
        return self.flow.claim_id

    def point(self, kind: str) -> str:
        return str(self.flow.points[kind])

    def status(self):
        return self.stack.get(f"{SCREENS}/status", params={"cargo_ref_id": self.claim}, headers=self.headers)

    def open(self, headers=None):
        return self.stack.post(f"{SCREENS}/open?cargo_ref_id={self.claim}", headers=headers or self.headers)

    def actions_at(self, kind: str) -> list[dict]:
        answer = self.stack.get("/scooters-misc/v1/cargo/state-actions",
                                params={"cargo_ref_id": self.claim, "point_id": self.point(kind)})
        assert answer.status_code == 200, answer.text
        return answer.json()["actions"]

    def action(self, name: str, headers=None):
        return self.stack.post(f"{ACTIONS}/{name}?cargo_ref_id={self.claim}&point_id={self.point('destination')}",
                               headers=headers or self.headers)

    def state_actions(self, kind: str) -> list[str]:
        answer = self.stack.get("/scooters-misc/v1/cargo/state-actions",
                                params={"cargo_ref_id": self.claim, "point_id": self.point(kind)})
        assert answer.status_code == 200, answer.text
        return [a["type"] for a in answer.json()["actions"]]

    def point_check(self, kind: str):
        return self.stack.post(f"/scooters-misc/v1/cargo/point-check?cargo_ref_id={self.claim}"
                               f"&point_id={self.point(kind)}")

    def handover(self, cell_id: str):
        return self.stack.post(f"/scooters-misc/v1/cabinet/storekeeper-handover?cargo_ref_id={self.claim}"
                               f"&cell_id={cell_id}")

    def cabinet_cell(self) -> tuple[str, str]:
        task = self.flow.task()
        return task["cabinet_id"], task["cell_ids"][0]


def counters(answer) -> dict:
    assert answer.status_code == 200, answer.text
    return {i["title"]: i["value"] for i in answer.json()["constructor_items"] if i["type"] == "counter"}


def cell_state(stack, cabinet_id: str, cell_id: str) -> str:
    cabinets = control(stack, "scooter_accumulator/state", method="GET")["cabinets"]
    return next(c["state"] for c in cabinets[cabinet_id]["cells"] if c["cell_id"] == cell_id)


def courier_at_cabinet(stack, area, driver_auth) -> Courier:
    park, driver = stack.unique("park"), stack.unique("courier")
    flow = recharge_to(stack, area, until="pickup_arrived", performer=(park, driver))
    return Courier(stack, flow, driver_auth(park, driver))


def test_the_courier_path_to_a_rentable_scooter(stack, area, driver_auth):
    courier = courier_at_cabinet(stack, area, driver_auth)
    cabinet_id, cell_id = courier.cabinet_cell()
    assert courier.state_actions("source") == ["battery_exchange"]
    assert counters(courier.status()) == {"Получено": 0, "Осталось": 1}

    stranger = driver_auth(stack.unique("park"), stack.unique("courier"))
    refused = courier.open(headers=stranger)
    assert refused.status_code == 403 and refused.json()["code"] == "not_performer"
    assert cell_state(stack, cabinet_id, cell_id) == "charged"

    opened = courier.open()
    assert opened.status_code == 200, opened.text
    assert [i["title"] for i in opened.json()["constructor_items"] if i["type"] == "button"] == [
        "Аккумулятор получен", "Ячейка не открылась"]
    assert cell_state(stack, cabinet_id, cell_id) == "open"
    assert courier.point_check("source").json()["code"] == "cell_open"
    control(stack, "scooter_accumulator/take", {"cabinet_id": cabinet_id})
    assert counters(courier.status()) == {"Получено": 1, "Осталось": 0}
    assert courier.point_check("source").status_code == 200

    courier.flow.advance("pickuped", point="destination")
    courier.flow.follow_until(lambda t: t.get("claim_status") == "pickuped", "on the way")
    assert courier.state_actions("destination") == ["find_vehicle", "vehicle_not_found"]
    assert courier.action("find_vehicle").status_code == 200
    assert car(stack, courier.flow.car_id)["signals"] == 1

    courier.flow.advance("delivery_arrived", point="destination")
    courier.flow.follow_until(lambda t: t.get("claim_status") == "delivery_arrived", "at the scooter")
    assert courier.state_actions("destination") == ["open_battery_door", "vehicle_destroyed"]
    assert courier.point_check("destination").json()["code"] == "battery_not_swapped"
    assert courier.action("open_battery_door").status_code == 200
    # The battery the courier put in reads 96 %: a charged one (scooters_full_charge_percent, 95).
    control(stack, "scooter_backend/cars", {"car_id": courier.flow.car_id, "battery_level": 96})
    assert courier.point_check("destination").status_code == 200

    courier.flow.advance("pickuped", point="return")
    courier.flow.follow_until(lambda t: t["status"] == "rentable", "rentable")
    assert car(stack, courier.flow.car_id)["tags"] == []
    refused = courier.action("find_vehicle")  # the scooter is back in rent: its actions are over
    assert refused.status_code == 409 and refused.json()["code"] == "claim_finished"
    assert courier.point_check("return").json()["code"] == "battery_not_returned"

    # C: the old battery goes back into a cell of the cabinet.
    courier.flow.advance("delivery_arrived", point="return")
    assert courier.actions_at("return") == [{"type": "battery_exchange", "mode": "return"}]
    assert counters(courier.status()) == {"Сдано": 0, "Осталось": 1}
    opened = courier.open()
    assert opened.status_code == 200, opened.text
    old_battery = courier.flow.task()["battery_id"]
    control(stack, "scooter_accumulator/put", {"cabinet_id": cabinet_id, "charge": 18})
    view = control(stack, f"scooter_accumulator/cells?cabinet_id={cabinet_id}", method="GET")["cells"]
    assert {"id": old_battery, "charge": 18} in [c["battery"] for c in view]
    assert counters(courier.status()) == {"Сдано": 1, "Осталось": 0}
    assert courier.point_check("return").status_code == 200

    courier.flow.advance("delivered", point="return")
    courier.flow.follow_until(lambda t: t["status"] == "done", "done")
    # After the job: the former courier changes nothing.
    for answer in (courier.status(), courier.open(), courier.action("open_battery_door")):
        assert answer.status_code == 409 and answer.json()["code"] == "claim_finished", answer.text
    assert car(stack, courier.flow.car_id)["door_opens"] == 1


def test_two_couriers_at_one_cabinet_and_a_broken_cell(stack, area, driver_auth):
    _, cabinet_id = area.depot("grocery", 0.003, 0.002, charged=3)
    first = courier_at_cabinet(stack, area, driver_auth)
    second = courier_at_cabinet(stack, area, driver_auth)
    assert first.cabinet_cell()[0] == second.cabinet_cell()[0] == cabinet_id

    assert first.open().status_code == 200
    busy = second.open()
    assert busy.status_code == 409 and busy.json()["code"] == "cabinet_busy"
    control(stack, "scooter_accumulator/take", {"cabinet_id": cabinet_id})
    assert counters(first.status()) == {"Получено": 1, "Осталось": 0}  # seen closed: the cabinet is free

    _, cell_id = second.cabinet_cell()
    control(stack, "scooter_accumulator/stuck", {"cabinet_id": cabinet_id, "cell_id": cell_id, "stuck": True})
    refused = second.open()
    assert refused.status_code == 409, refused.text
    assert refused.json() == {"code": "cells_broken", "message": "Невозможно открыть 1 ячеек. Обратитесь к кладовщику"}
    check = second.point_check("source")
    assert check.status_code == 409 and check.json()["code"] == "cells_broken"
    assert second.handover(cell_id).status_code == 200  # the storekeeper bot
    assert second.point_check("source").status_code == 200
    assert counters(second.status()) == {"Получено": 1, "Осталось": 0}
