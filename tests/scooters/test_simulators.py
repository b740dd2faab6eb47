"""The scooter simulators keep the protocols their docstrings promise (the recharge flow and courier screens
are tested against them, so they must be right themselves)."""
from __future__ import annotations

import requests

ACC = "/scooter_accumulator/scooter-accumulator/v1/cabinet"
CLAIMS = "/cargo/b2b/cargo/integration/v2/claims"


def _url(simulator, path):
    return simulator[0] + path


def _post(simulator, path, body=None, **kwargs):
    return requests.post(_url(simulator, path), json=body, timeout=5, **kwargs)


def _get(simulator, path, **kwargs):
    return requests.get(_url(simulator, path), timeout=5, **kwargs)


def test_battery_low_tag_and_filter(simulator, upstream):
    _post(simulator, "/_control/scooter_backend/cars", {"car_id": "s1", "position": [37.6, 55.7], "battery_level": 25})
    _post(simulator, "/_control/scooter_backend/cars", {"car_id": "s2", "position": [37.6, 55.7], "battery_level": 80})
    _post(simulator, "/_control/scooter_backend/cars", {"car_id": "s3", "position": [37.6, 55.7], "battery_level": 10})
    _post(simulator, "/scooter_backend/tag/add", {"car_id": "s3", "tag": "recharge_processing"})
    listed = _get(simulator, "/scooter_backend/car/list", params={"tags_filter": "battery_low*-recharge_processing"})
    assert [c["car_id"] for c in listed.json()["cars"]] == ["s1"]
    # Charging through the control keeps the tag: tags change only through the tag calls.
    _post(simulator, "/_control/scooter_backend/cars", {"car_id": "s1", "battery_level": 90})
    info = _get(simulator, "/scooter_backend/car/info", params={"car_id": "s1"}).json()
    assert [t["tag"] for t in info["tags"]] == ["battery_low"] and info["battery"]["level"] == 90
    assert _post(simulator, "/scooter_backend/tag/remove", {"car_id": "s1", "tag": "battery_low"}).json() == {"removed": 1}
    assert _get(simulator, "/_control/scooter_backend/cars/s1").json()["tags"] == []
    assert _get(simulator, "/scooter_backend/car/info", params={"car_id": "nope"}).status_code == 404


def test_battery_door_swaps_the_battery(simulator, upstream):
    _post(simulator, "/_control/scooter_backend/cars", {"car_id": "s1", "position": [37.6, 55.7], "battery_level": 5})
    old = _get(simulator, "/scooter_backend/car/info", params={"car_id": "s1"}).json()["battery"]
    swapped = _post(simulator, "/scooter_backend/car/battery_door/open", {"car_id": "s1"}).json()["battery"]
    assert swapped["id"] != old["id"] and swapped["level"] == 100
    _post(simulator, "/_control/scooter_backend/cars", {"car_id": "s1", "door_stuck": True})
    assert _post(simulator, "/scooter_backend/car/battery_door/open", {"car_id": "s1"}).status_code == 409


def test_booking_is_idempotent_and_runs_out(simulator, upstream):
    _post(simulator, "/_control/scooter_accumulator/cabinets", {"store_id": "grocery:1", "cabinet_id": "cab1",
                                                                "charged": 1})
    first = _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1", "accumulators_count": 1},
                  headers={"X-Idempotency-Token": "t1"})
    again = _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1", "accumulators_count": 1},
                  headers={"X-Idempotency-Token": "t1"})
    assert first.status_code == again.status_code == 200 and first.json()["book_id"] == again.json()["book_id"]
    other = _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1"}, headers={"X-Idempotency-Token": "t2"})
    assert other.status_code == 409
    available = _post(simulator, ACC + "/accumulator/available_for_booking", {"store_ids": ["grocery:1", "x:2"]})
    assert available.json() == {"stores": [{"store_id": "grocery:1", "cabinet_id": "cab1", "available": 0}]}
    _post(simulator, ACC + "/booking/unbook", {"book_id": first.json()["book_id"]})
    available = _post(simulator, ACC + "/accumulator/available_for_booking", {"store_ids": ["grocery:1"]})
    assert available.json()["stores"][0]["available"] == 1


def test_one_open_cell_per_cabinet_and_stuck_cells(simulator, upstream):
    _post(simulator, "/_control/scooter_accumulator/cabinets", {"store_id": "grocery:1", "cabinet_id": "cab1",
                                                                "charged": 3})
    a = _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1"}, headers={"X-Idempotency-Token": "a"}).json()
    b = _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1"}, headers={"X-Idempotency-Token": "b"}).json()
    c = _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1"}, headers={"X-Idempotency-Token": "c"}).json()
    opened = _post(simulator, ACC + "/cell/open", {"cabinet_id": "cab1", "book_id": a["book_id"],
                                                   "cell_id": a["cell_ids"][0]})
    assert opened.status_code == 200
    busy = _post(simulator, ACC + "/cell/open", {"cabinet_id": "cab1", "book_id": b["book_id"],
                                                 "cell_id": b["cell_ids"][0]})
    assert busy.status_code == 409 and busy.json()["code"] == "cabinet_busy"
    _post(simulator, "/_control/scooter_accumulator/take", {"cabinet_id": "cab1"})
    _post(simulator, "/_control/scooter_accumulator/stuck", {"cabinet_id": "cab1", "cell_id": c["cell_ids"][0]})
    stuck = _post(simulator, ACC + "/cell/open", {"cabinet_id": "cab1", "book_id": c["book_id"],
                                                  "cell_id": c["cell_ids"][0]})
    assert stuck.status_code == 422 and stuck.json()["code"] == "cell_not_opened"
    cells = {c["cell_id"]: c["state"] for c in _get(simulator, ACC + "/cells", params={"cabinet_id": "cab1"}).json()["cells"]}
    assert cells == {a["cell_ids"][0]: "empty", b["cell_ids"][0]: "charged", c["cell_ids"][0]: "broken"}


def test_booking_race_control(simulator, upstream):
    _post(simulator, "/_control/scooter_accumulator/cabinets", {"store_id": "grocery:1", "cabinet_id": "cab1",
                                                                "charged": 2})
    _post(simulator, "/_control/scooter_accumulator/race", {"cabinet_id": "cab1"})
    assert _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1"},
                 headers={"X-Idempotency-Token": "x"}).status_code == 409


def _claim_body(point_ids=(11, 12, 13)):
    a, b, c = point_ids
    point = lambda pid, kind, order: {"point_id": pid, "visit_order": order, "type": kind,
                                      "address": {"fullname": "x", "coordinates": [37.6, 55.7]},
                                      "contact": {"name": "n", "phone": "+70000000000"}, "skip_confirmation": True}
    return {"items": [{"title": "battery", "quantity": 1, "pickup_point": a, "dropoff_point": b, "extra_id": "t"}],
            "route_points": [point(a, "source", 1), point(b, "destination", 2), point(c, "return", 3)]}


def test_claims_create_idempotent_accept_journal(simulator, upstream):
    first = _post(simulator, CLAIMS + "/create?request_id=r1", _claim_body())
    assert first.status_code == 200
    claim = first.json()
    assert [p["id"] for p in claim["route_points"]] == [11, 12, 13]
    again = _post(simulator, CLAIMS + "/create?request_id=r1", _claim_body((1, 2, 3)))
    assert again.json()["id"] == claim["id"]
    assert _post(simulator, CLAIMS + "/create?request_id=r2", {"items": []}).status_code == 400
    journal = _post(simulator, CLAIMS + "/journal", {}).json()
    assert [e["new_status"] for e in journal["events"]] == ["new", "ready_for_approval"]
    assert _post(simulator, CLAIMS + "/journal", {"cursor": journal["cursor"]}).json() == {
        "cursor": journal["cursor"], "events": []}
    assert _post(simulator, CLAIMS + f"/accept?claim_id={claim['id']}", {"version": 7}).status_code == 409
    accepted = _post(simulator, CLAIMS + f"/accept?claim_id={claim['id']}", {"version": 1})
    assert accepted.json()["status"] == "accepted"
    assert _post(simulator, CLAIMS + f"/accept?claim_id={claim['id']}", {"version": 1}).json()["code"] == \
        "inappropriate_status"
    moved = _post(simulator, f"/_control/cargo/claims/{claim['id']}/advance",
                  {"status": "performer_found", "performer": {"park_id": "p", "driver_profile_id": "d"}})
    assert moved.status_code == 200
    page = _post(simulator, CLAIMS + "/journal", {"cursor": journal["cursor"]}).json()
    assert [e["new_status"] for e in page["events"]] == ["accepted", "performer_lookup", "performer_found"]
    info = _post(simulator, CLAIMS + f"/info?claim_id={claim['id']}").json()
    assert info["performer_info"]["driver_profile_id"] == "d"
    listed = _get(simulator, "/_control/cargo/claims").json()["claims"]
    assert listed[0]["request_id"] == "r1" and listed[0]["body"] == _claim_body()


def test_claims_want_a_bearer_token_when_authorization_is_sent(simulator, upstream):
    bad = _post(simulator, CLAIMS + "/journal", {}, headers={"Authorization": "Basic x"})
    assert bad.status_code == 401 and bad.json()["code"] == "unauthorized"
    assert _post(simulator, CLAIMS + "/journal", {}, headers={"Authorization": "Bearer t"}).status_code == 200


def test_the_journal_can_lose_a_claims_events(simulator, upstream):
    claim = _post(simulator, CLAIMS + "/create?request_id=r1", _claim_body()).json()
    cursor = _post(simulator, CLAIMS + "/journal", {}).json()["cursor"]
    assert _post(simulator, "/_control/cargo/journal/drop", {"claim_id": claim["id"], "count": 1}).status_code == 200
    _post(simulator, f"/_control/cargo/claims/{claim['id']}/advance", {"status": "performer_found"})
    _post(simulator, f"/_control/cargo/claims/{claim['id']}/advance", {"status": "pickup_arrived"})
    page = _post(simulator, CLAIMS + "/journal", {"cursor": cursor}).json()
    assert [(e["new_status"], e["revision"]) for e in page["events"]] == [("pickup_arrived", 4)]
    assert _post(simulator, CLAIMS + f"/info?claim_id={claim['id']}").json()["status"] == "pickup_arrived"
    assert _post(simulator, "/_control/cargo/journal/drop", {"claim_id": "nope", "count": 1}).status_code == 404


def test_create_answers_can_be_lost(simulator, upstream):
    _post(simulator, "/_control/cargo/create/lose_answers", {"count": 1, "delay": 1.0})
    try:
        requests.post(_url(simulator, CLAIMS + "/create?request_id=r1"), json=_claim_body(), timeout=0.3)
        raise AssertionError("the answer came in time")
    except requests.Timeout:
        pass
    made = _get(simulator, "/_control/cargo/claims").json()["claims"]
    assert [c["request_id"] for c in made] == ["r1"]  # made all the same
    again = _post(simulator, CLAIMS + "/create?request_id=r1", _claim_body())
    assert again.status_code == 200 and again.json()["id"] == made[0]["id"]


def test_a_battery_goes_back_into_a_cell(simulator, upstream):
    _post(simulator, "/_control/scooter_accumulator/cabinets", {"store_id": "grocery:1", "cabinet_id": "cab1",
                                                                "charged": 2})
    booking = _post(simulator, ACC + "/accumulator/book", {"cabinet_id": "cab1"},
                    headers={"X-Idempotency-Token": "t1"}).json()
    [cell] = booking["cell_ids"]
    _post(simulator, ACC + "/cell/open", {"cabinet_id": "cab1", "book_id": booking["book_id"], "cell_id": cell})
    _post(simulator, "/_control/scooter_accumulator/take", {"cabinet_id": "cab1"})
    other = "cab1-2" if cell == "cab1-1" else "cab1-1"
    full = _post(simulator, ACC + "/accumulator/return", {"cabinet_id": "cab1", "book_id": booking["book_id"],
                                                          "cell_id": other, "accumulator_id": "old"})
    assert full.status_code == 409 and full.json()["code"] == "cell_not_free"
    told = _post(simulator, ACC + "/accumulator/return", {"cabinet_id": "cab1", "book_id": booking["book_id"],
                                                          "cell_id": cell, "accumulator_id": "old"})
    assert told.json() == {"book_id": booking["book_id"], "cabinet_id": "cab1", "cell_id": cell,
                           "accumulator_id": "old", "status": "assigned"}
    opened = _post(simulator, ACC + "/cell/open", {"cabinet_id": "cab1", "book_id": booking["book_id"],
                                                   "cell_id": cell})
    assert opened.status_code == 200
    _post(simulator, "/_control/scooter_accumulator/put", {"cabinet_id": "cab1", "charge": 15})
    view = _get(simulator, "/_control/scooter_accumulator/cells", params={"cabinet_id": "cab1"}).json()
    cells = {c["cell_id"]: c for c in view["cells"]}
    assert cells[cell]["battery"] == {"id": "old", "charge": 15} and cells[cell]["state"] == "charging"
    assert cells[other]["battery"] == {"id": f"acc-{other}", "charge": 100}
    seen = _get(simulator, ACC + "/cells", params={"cabinet_id": "cab1"}).json()["cells"]
    assert {c["cell_id"]: c["accumulator_id"] for c in seen} == {cell: "old", other: f"acc-{other}"}
    available = _post(simulator, ACC + "/accumulator/available_for_booking", {"store_ids": ["grocery:1"]}).json()
    assert available["stores"][0]["available"] == 1  # the discharged one is not for booking
