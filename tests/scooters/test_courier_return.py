"""The return at C: state-actions offers battery_exchange in return mode, the same screens put the discharged battery
into a cell the service picks (the cabinets service told which battery that cell holds), with the same 408 / 409 /
503, broken-cell and storekeeper rules; the slider at C passes only once it is returned or handed over."""
from __future__ import annotations

import pytest

from chalicelib.core import clock
from chalicelib.scooters.recharge.models import RechargeTask
from local.simulator.server import Fault

from .test_courier_fixtures import T0, buttons, counters, make_courier, open_by_hand, opens, sim, take, texts

STOREKEEPER_1 = "Невозможно открыть 1 ячеек. Обратитесь к кладовщику"


def _cells_view(simulator, cabinet_id: str) -> dict[str, dict]:
    answer = sim(simulator, "GET", "/_control/scooter_accumulator/cells", params={"cabinet_id": cabinet_id})
    return {cell["cell_id"]: cell for cell in answer["cells"]}


def _at_c(courier) -> None:
    """The courier swapped the battery and arrived back at the cabinet (the task is back in rent)."""
    RechargeTask(courier.task_id).update(actions=[
        RechargeTask.status.set("rentable"), RechargeTask.claim_status.set("delivery_arrived"),
        RechargeTask.current_point_id.set("103")])


@pytest.fixture
def back_at_c(client, simulator, driver_auth):
    """One booked battery taken at A (cab-1-1 emptied); two other cells full; the courier at C."""
    clock.freeze(T0)
    courier = make_courier(client, simulator, driver_auth, charged=3, batteries=1)
    courier.open()
    take(simulator, "cab-1")
    _at_c(courier)
    return courier


def test_the_old_battery_goes_into_a_cell(back_at_c, simulator, upstream):
    c = back_at_c
    assert c.state_actions("return").json_body["actions"] == [{"type": "battery_exchange", "mode": "return"}]
    first = c.status()
    assert counters(first) == {"Сдано": 0, "Осталось": 1} and buttons(first) == ["Сдать аккумулятор"]
    waiting = c.point_check("return")
    assert waiting.status_code == 409 and waiting.json_body["code"] == "battery_not_returned"

    opened = c.open()
    assert texts(opened)[0] == "Ячейка cab-1-1 открыта"  # the cell its charged battery left
    assert buttons(opened) == ["Аккумулятор сдан", "Ячейка не открылась"]
    [told] = [x for x in upstream.calls["scooter_accumulator"] if x["path"].endswith("/accumulator/return")]
    assert told["body"] == {"cabinet_id": "cab-1", "book_id": told["body"]["book_id"], "cell_id": "cab-1-1",
                            "accumulator_id": "old-claim-1"}
    assert c.point_check("return").json_body["code"] == "cell_open"
    assert texts(c.open())[0] == "Ячейка cab-1-1 открыта"  # a retry opens nothing twice
    assert len(opens(upstream)) == 2  # one at A, one at C

    sim(simulator, "POST", "/_control/scooter_accumulator/put", {"cabinet_id": "cab-1", "charge": 18})
    assert _cells_view(simulator, "cab-1")["cab-1-1"]["battery"] == {"id": "old-claim-1", "charge": 18}
    done = c.status()
    assert counters(done) == {"Сдано": 1, "Осталось": 0} and buttons(done) == ["Закрыть"]
    assert c.point_check("return").status_code == 200
    again = c.open()
    assert again.status_code == 409 and again.json_body["code"] == "all_returned"


def test_a_cell_that_will_not_open_then_the_storekeeper(back_at_c, simulator):
    c = back_at_c
    sim(simulator, "POST", "/_control/scooter_accumulator/stuck", {"cabinet_id": "cab-1", "cell_id": "cab-1-1"})
    refused = c.open()  # the only cell that can take it does not open, and no other is free
    assert refused.status_code == 409 and refused.json_body == {"code": "cells_broken", "message": STOREKEEPER_1}
    assert STOREKEEPER_1 in texts(c.status())
    assert c.point_check("return").json_body["code"] == "cells_broken"
    assert c.handover("cab-1-1").status_code == 200  # the storekeeper took the battery by hand
    assert c.point_check("return").status_code == 200


def test_broken_by_the_courier_moves_to_a_free_cell(back_at_c, simulator):
    c = back_at_c
    sim(simulator, "POST", "/_control/scooter_accumulator/take", {"cabinet_id": "cab-1", "cell_id": "cab-1-3"})
    # cab-1-3 is empty now and nobody's: a free cell
    assert texts(c.open())[0] == "Ячейка cab-1-1 открыта"
    sim(simulator, "POST", "/_control/scooter_accumulator/close", {"cabinet_id": "cab-1"})
    after = c.broken("cab-1-1")  # "Ячейка не открылась"
    assert buttons(after) == ["Сдать аккумулятор"]
    assert texts(c.open())[0] == "Ячейка cab-1-3 открыта"  # never the broken one again
    sim(simulator, "POST", "/_control/scooter_accumulator/put", {"cabinet_id": "cab-1"})
    assert _cells_view(simulator, "cab-1")["cab-1-3"]["battery"]["id"] == "old-claim-1"
    assert c.point_check("return").status_code == 200
    assert c.broken("cab-1-2").json_body["code"] == "cell_not_found"


def test_the_same_cabinet_rules_at_c(back_at_c, upstream, simulator):
    c = back_at_c
    upstream.faults["scooter_accumulator"] = Fault(mode="error", status=500)
    assert c.open().json_body["code"] == "cabinet_manual_mode"
    upstream.faults.clear()
    upstream.faults["scooter_accumulator"] = Fault(mode="timeout", delay=3.0)
    assert c.open().status_code == 408
    upstream.faults.clear()
    open_by_hand(simulator, "cab-1")
    busy = c.open()
    assert busy.status_code == 409 and busy.json_body["code"] == "cabinet_busy"


def test_a_missing_scooter_brings_back_the_charged_battery(client, simulator, driver_auth, upstream):
    clock.freeze(T0)
    c = make_courier(client, simulator, driver_auth, charged=2, batteries=1)
    c.open()
    take(simulator, "cab-1")
    c.set_claim("pickuped", "destination")
    assert c.action("vehicle_not_found").status_code == 200
    _at_c(c)
    assert texts(c.open())[0] == "Ячейка cab-1-1 открыта"
    [told] = [x for x in upstream.calls["scooter_accumulator"] if x["path"].endswith("/accumulator/return")]
    assert told["body"]["accumulator_id"] is None  # the booking's own battery, unused
    sim(simulator, "POST", "/_control/scooter_accumulator/put", {"cabinet_id": "cab-1", "charge": 100})
    assert _cells_view(simulator, "cab-1")["cab-1-1"]["battery"] == {"id": "acc-cab-1-1", "charge": 100}
    assert c.point_check("return").status_code == 200
