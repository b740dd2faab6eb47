"""The courier at the cabinet: battery_exchange status / open / broken, the storekeeper's hand-over, the
slider check at the cabinet, one open cell per cabinet, cabinet timeouts and failures."""
from __future__ import annotations

import threading

from chalicelib.core import clock
from chalicelib.scooters.courier import upstreams as courier_upstreams
from chalicelib.scooters.courier.models import CabinetLock, ClaimProgress
from local.simulator.server import Fault

from .test_courier_fixtures import (  # noqa: F401 (courier is a fixture)
    ACC, T0, buttons, cells, counters, courier, items, make_courier, open_by_hand, opens, sim, take, texts,
)

STOREKEEPER_1 = "Невозможно открыть 1 ячеек. Обратитесь к кладовщику"


def _lock(cabinet_id: str):
    try:
        return CabinetLock.get(cabinet_id, consistent_read=True)
    except CabinetLock.DoesNotExist:
        return None


def test_the_whole_exchange_counts_and_closes(courier, simulator, upstream):
    first = courier.status()
    assert counters(first) == {"Получено": 0, "Осталось": 2}
    assert buttons(first) == ["Получить аккумулятор"]
    assert courier.point_check("source").status_code == 409

    opened = courier.open()
    assert buttons(opened) == ["Аккумулятор получен", "Ячейка не открылась"]
    assert texts(opened)[0] == "Ячейка cab-1-1 открыта"
    assert cells(simulator, "cab-1")["cab-1-1"]["state"] == "open"
    # The slider with the cell still open: close it first.
    check = courier.point_check("source")
    assert check.status_code == 409 and check.json_body["code"] == "cell_open"

    take(simulator, "cab-1")  # the battery out, the cell closes by itself
    after_first = courier.status()
    assert counters(after_first) == {"Получено": 1, "Осталось": 1}
    assert buttons(after_first) == ["Получить аккумулятор"]
    assert _lock("cab-1") is None  # seen closed: the cabinet is free for others

    assert texts(courier.open())[0] == "Ячейка cab-1-2 открыта"
    take(simulator, "cab-1")
    done = courier.status()
    assert counters(done) == {"Получено": 2, "Осталось": 0}
    assert buttons(done) == ["Закрыть"]
    assert any("Все аккумуляторы получены" in text for text in texts(done))
    assert courier.point_check("source").status_code == 200
    nothing = courier.open()
    assert nothing.status_code == 409 and nothing.json_body["code"] == "all_taken"
    assert len(opens(upstream)) == 2


def test_a_retried_open_opens_nothing_twice(courier, simulator, upstream):
    assert texts(courier.open())[0] == "Ячейка cab-1-1 открыта"
    again = courier.open()
    assert texts(again)[0] == "Ячейка cab-1-1 открыта"
    assert len(opens(upstream)) == 1
    state = cells(simulator, "cab-1")
    assert state["cab-1-1"]["state"] == "open" and state["cab-1-2"]["state"] == "charged"


def test_status_while_the_cell_is_open_shows_its_buttons(courier, simulator):
    courier.open()
    screen = courier.status()
    assert counters(screen) == {"Получено": 0, "Осталось": 2}
    assert buttons(screen) == ["Аккумулятор получен", "Ячейка не открылась"]


def test_a_cell_that_will_not_open_is_skipped_and_never_picked_again(courier, simulator, upstream):
    sim(simulator, "POST", "/_control/scooter_accumulator/stuck", {"cabinet_id": "cab-1", "cell_id": "cab-1-1"})
    assert texts(courier.open())[0] == "Ячейка cab-1-2 открыта"
    take(simulator, "cab-1")
    screen = courier.status()
    assert counters(screen) == {"Получено": 1, "Осталось": 1}
    assert STOREKEEPER_1 in texts(screen) and buttons(screen) == []
    refused = courier.open()
    assert refused.status_code == 409 and refused.json_body == {"code": "cells_broken", "message": STOREKEEPER_1}
    assert [c["body"]["cell_id"] for c in opens(upstream)] == ["cab-1-1", "cab-1-2"]


def test_the_courier_marks_a_cell_broken_then_the_storekeeper_hands_over(courier, simulator, upstream):
    courier.open()  # cab-1-1 "opens" but the courier finds it shut
    sim(simulator, "POST", "/_control/scooter_accumulator/close", {"cabinet_id": "cab-1"})
    after = courier.broken("cab-1-1")
    assert counters(after) == {"Получено": 0, "Осталось": 2}
    assert buttons(after) == ["Получить аккумулятор"]
    assert _lock("cab-1") is None
    assert courier.broken("cab-1-1").status_code == 200  # a retry changes nothing
    assert ClaimProgress.get(courier.claim_id).broken_cells == {"cab-1-1"}

    assert texts(courier.open())[0] == "Ячейка cab-1-2 открыта"  # the broken one is not picked again
    take(simulator, "cab-1")
    only_broken = courier.status()
    assert STOREKEEPER_1 in texts(only_broken)
    check = courier.point_check("source")
    assert check.status_code == 409 and check.json_body == {"code": "cells_broken", "message": STOREKEEPER_1}

    assert courier.handover("cab-1-2").json_body["code"] == "cell_not_broken"
    assert courier.handover("cab-1-9").status_code == 404
    handed = courier.handover("cab-1-1")
    assert handed.status_code == 200 and handed.json_body == {"cell_id": "cab-1-1", "handed_over": True}
    assert courier.handover("cab-1-1").status_code == 200
    assert counters(courier.status()) == {"Получено": 2, "Осталось": 0}
    assert courier.point_check("source").status_code == 200


def test_broken_names_a_cell_of_the_booking(courier):
    answer = courier.broken("cab-1-7")
    assert answer.status_code == 404 and answer.json_body["code"] == "cell_not_found"


def test_two_couriers_at_one_cabinet(client, simulator, driver_auth, upstream):
    clock.freeze(clock.now().replace(microsecond=0))
    first = make_courier(client, simulator, driver_auth, claim_id="claim-a", charged=4, batteries=1)
    second = make_courier(client, simulator, driver_auth, claim_id="claim-b", batteries=1, new_cabinet=False,
                          performer=("park1", "courier-2"))
    assert items(first.open())
    busy = second.open()
    assert busy.status_code == 409 and busy.json_body["code"] == "cabinet_busy"
    assert "Дождитесь своей очереди" in busy.json_body["message"]
    take(simulator, "cab-1")  # the first courier took the battery: the cabinet is free
    # The first courier never came back to the status screen: a fresh lock still holds ...
    assert second.open().status_code == 409
    clock.advance(seconds=11)
    # ... but one older than any cabinet call, whose cell the cabinet shows closed, is taken over.
    assert texts(second.open())[0] == f"Ячейка {second.cell_ids[0]} открыта"
    assert _lock("cab-1").holder == second.claim_id


def test_two_couriers_pressing_at_once_get_one_cell(client, simulator, driver_auth, upstream, monkeypatch):
    first = make_courier(client, simulator, driver_auth, claim_id="claim-a", charged=4, batteries=1)
    second = make_courier(client, simulator, driver_auth, claim_id="claim-b", batteries=1, new_cabinet=False,
                          performer=("park1", "courier-2"))
    # Both read the cabinet (nothing open) before either takes the lock: a real race on the lock row.
    real, barrier = courier_upstreams.cabinet_cells, threading.Barrier(2)

    def read_together(cabinet_id):
        state = real(cabinet_id)
        barrier.wait(timeout=10)
        return state

    monkeypatch.setattr(courier_upstreams, "cabinet_cells", read_together)
    from tests.codedispatch.conftest import atomic_moto_writes
    atomic_moto_writes(monkeypatch)
    answers = []
    threads = [threading.Thread(target=lambda c=c: answers.append(c.open())) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert len(opens(upstream)) == 1


def test_a_cabinet_timeout_is_retried_by_the_app(courier, simulator, upstream, monkeypatch):
    real = courier_upstreams.cabinet_cells

    def then_the_open_times_out(cabinet_id):
        state = real(cabinet_id)
        # Far past the 0.5 s read timeout: on a loaded machine a client thread scheduled late would otherwise
        # find a 1 s fault's answer already there and never time out.
        upstream.faults["scooter_accumulator"] = Fault(mode="timeout", delay=3.0, count=1)
        return state

    monkeypatch.setattr(courier_upstreams, "cabinet_cells", then_the_open_times_out)
    answer = courier.open()
    assert answer.status_code == 408 and answer.json_body["code"] == "cabinet_timeout"
    assert _lock("cab-1").holder == courier.claim_id  # the cell may have opened: kept for this courier
    monkeypatch.setattr(courier_upstreams, "cabinet_cells", real)
    assert texts(courier.open())[0] == "Ячейка cab-1-1 открыта"  # the retry opens the same cell


def test_a_cabinet_that_reads_slowly_is_a_timeout_too(courier, upstream):
    upstream.faults["scooter_accumulator"] = Fault(mode="timeout", delay=3.0)
    answer = courier.open()
    assert answer.status_code == 408 and answer.json_body["code"] == "cabinet_timeout"


def test_a_failing_cabinets_service_is_the_manual_mode(courier, upstream):
    upstream.faults["scooter_accumulator"] = Fault(mode="error", status=500)
    answer = courier.open()
    assert answer.status_code == 503 and answer.json_body["code"] == "cabinet_manual_mode"
    assert _lock("cab-1") is None
    check = courier.point_check("source")
    assert check.status_code == 503
    # The status screen still answers from what we know.
    assert counters(courier.status()) == {"Получено": 0, "Осталось": 2}


def test_status_counts_from_our_record_while_the_cabinet_is_down(courier, simulator, upstream):
    courier.open()
    take(simulator, "cab-1")
    upstream.faults["scooter_accumulator"] = Fault(mode="error", status=500)
    assert counters(courier.status()) == {"Получено": 1, "Осталось": 1}


def test_only_the_performer_may_act(courier, driver_auth):
    other = driver_auth("park1", "someone-else")
    other_park = driver_auth("park2", "courier-1")
    for headers in (other, other_park):
        assert courier.status(headers=headers).status_code == 403
        assert courier.open(headers=headers).json_body["code"] == "not_performer"
        assert courier.broken("cab-1-1", headers=headers).status_code == 403


def test_no_performer_yet_is_403(client, simulator, driver_auth):
    lonely = make_courier(client, simulator, driver_auth, claim_id="claim-x", performer=(None, None))
    lonely.headers = driver_auth("park1", "courier-1")
    assert lonely.status().status_code == 403


def test_unknown_claim_and_bad_parameters(courier, client):
    headers = courier.headers
    assert client.http.get("/scooters-misc/taximeter/screens/v1/battery_exchange/status?cargo_ref_id=nope",
                           headers=headers).status_code == 404
    assert client.http.get("/scooters-misc/taximeter/screens/v1/battery_exchange/status",
                           headers=headers).status_code == 400
    bad = client.http.post("/scooters-misc/taximeter/screens/v1/battery_exchange/open?cargo_ref_id=a%20b",
                           headers=headers)
    assert bad.status_code == 400 and bad.json_body["code"] == "invalid_request"
    assert client.http.post(f"/scooters-misc/taximeter/screens/v1/battery_exchange/broken?cargo_ref_id="
                            f"{courier.claim_id}", headers=headers).status_code == 400
    assert client.http.post("/scooters-misc/v1/cabinet/storekeeper-handover?cargo_ref_id=nope&cell_id=c"
                            ).status_code == 404
    assert client.http.get("/scooters-misc/taximeter/screens/v1/battery_exchange/status?cargo_ref_id=x"
                           ).status_code == 401



def test_a_cell_open_outside_our_bookings_keeps_the_cabinet_busy(client, simulator, driver_auth, upstream):
    clock.freeze(T0)
    ours = make_courier(client, simulator, driver_auth, charged=3, batteries=2)
    open_by_hand(simulator, "cab-1")
    busy = ours.open()
    assert busy.status_code == 409 and busy.json_body["code"] == "cabinet_busy"
    assert _lock("cab-1") is None and len(opens(upstream)) == 1  # only the one opened by hand
    take(simulator, "cab-1")
    assert texts(ours.open())[0] == "Ячейка cab-1-1 открыта"


def test_a_booking_gone_at_the_cabinet_is_a_clear_409(courier, simulator):
    task_book = sim(simulator, "GET", "/_control/scooter_accumulator/state")["bookings"]
    (booking,) = [b for b in task_book.values() if b["cell_ids"] == courier.cell_ids]
    sim(simulator, "POST", f"{ACC}/booking/unbook", {"book_id": booking["book_id"]})
    answer = courier.open()
    assert answer.status_code == 409 and answer.json_body["code"] == "cell_not_booked"
    assert _lock("cab-1") is None
