"""POST /codedispatch/order/assign: the first driver to type a code gets the order; races have one winner."""
from __future__ import annotations


import pytest
from botocore.exceptions import ClientError

from chalicelib.codedispatch import store
from chalicelib.codedispatch.assign import assign_order
from chalicelib.codedispatch.models import Assignment, WrongCodes
from chalicelib.core import clock, queues
from chalicelib.core.identity import DriverIdentity
from tests.conftest import as_driver
from tests.codedispatch.conftest import (
    AREA, ZONE, assign, created_code, driver, enable, post, processing_messages, race, read_together, set_configs,
)


def test_driver_typing_the_code_gets_the_order_and_processing_is_pushed(cd):
    code = created_code(cd, "order-1")
    clock.advance(seconds=30)
    answer = assign(cd, code, "a")
    assert answer.status_code == 200, answer.json_body
    assert answer.json_body == {"order_id": "order-1", "status": "processing"}
    stored = Assignment.get("order-1")
    assert (stored.status, stored.driver_id, stored.park_db_id, stored.driver_profile_id) == (
        "processing", "park1_driver-a", "park1", "driver-a")
    assert stored.updated_at == clock.now() and stored.created_at < stored.updated_at
    assert [(c.who, c.from_status, c.to_status) for c in stored.changes] == [
        ("order_create", None, "pending"), ("driver:park1_driver-a", "pending", "processing")]
    assert processing_messages() == [{"order_id": "order-1", "area_id": AREA, "driver_id": "park1_driver-a",
                                      "park_db_id": "park1", "driver_profile_id": "driver-a", "attempt": 1}]


def test_typed_code_with_spaces_around_is_accepted(cd):
    code = created_code(cd, "order-1")
    assert assign(cd, f" {code} ").status_code == 200


@pytest.mark.parametrize("typed", ["1", "1" * 17, "12a456", "12 456", "١٢٣٤٥٦"])
def test_code_of_the_wrong_format_is_400(cd, typed):
    answer = assign(cd, typed)
    assert (answer.status_code, answer.json_body["code"]) == (400, "invalid_code_format")


@pytest.mark.parametrize("typed", ["12345", "1234567", "12", "1" * 16])
def test_a_code_of_another_length_is_a_wrong_code(cd, typed):
    """Any length a code could have been issued with is looked up (an area's length may have changed while
    older codes live): not found, and counted against the driver's limit like any wrong code."""
    created_code(cd, "order-1")
    answer = assign(cd, typed)
    assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found")
    assert sum(item.count for item in WrongCodes.scan()) == 2  # this window's and this day's counters


def test_format_follows_the_generator_settings(cd):
    set_configs(CODE_DISPATCH_GENERATOR_SETTINGS={"length": 6, "alphabet": "ABCD"})
    assert assign(cd, "123456").json_body["code"] == "invalid_code_format"
    assert assign(cd, "ABCDAB").json_body["code"] == "code_not_found"


@pytest.mark.parametrize("switch", [{"code_dispatch": {"enabled": False}}, {"CODE_DISPATCH_PROCESSING_ENABLED": False},
                                    {"CODE_DISPATCH_ZONES_SETTINGS": {}}])
def test_bad_input_is_400_before_any_switch_says_409(cd, switch):
    set_configs(**switch)
    answer = assign(cd, "12a456")
    assert (answer.status_code, answer.json_body["code"]) == (400, "invalid_code_format")
    assert assign(cd, "123456").status_code == 409


@pytest.mark.parametrize("body", [{"code": "123456"}, {"area_id": AREA}, {"code": "", "area_id": AREA}])
def test_invalid_body_is_400(cd, body):
    answer = post(cd, "/codedispatch/order/assign", body, driver("a"))
    assert (answer.status_code, answer.json_body["code"]) == (400, "invalid_request")


def test_unknown_code_is_404_with_a_code_for_the_driver_app(cd):
    code = created_code(cd, "order-1")
    other = "000000" if code != "000000" else "111111"
    answer = assign(cd, other)
    assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found")


def test_code_of_another_area_is_not_found(cd):
    enable(zones={AREA: ZONE, "luzhniki": ZONE})
    code = created_code(cd, "order-1", "luzhniki")
    answer = assign(cd, code, area_id=AREA)
    assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found")
    assert Assignment.get("order-1").status == "pending"


def test_expired_code_is_not_found(cd):
    code = created_code(cd, "order-1")
    clock.advance(seconds=ZONE["order_expire_seconds"])
    answer = assign(cd, code)
    assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found")
    assert Assignment.get("order-1").driver_id is None


def test_driver_identity_is_required(cd):
    code = created_code(cd, "order-1")
    answer = post(cd, "/codedispatch/order/assign", {"code": code, "area_id": AREA},
                  {"X-YaTaxi-Park-Id": "park1"})
    assert answer.status_code == 401
    assert Assignment.get("order-1").status == "pending"


def test_same_driver_repeating_is_answered_and_processing_is_pushed_once_per_attempt(cd):
    code = created_code(cd, "order-1")
    assert assign(cd, code, "a").status_code == 200
    for _ in range(3):
        clock.advance(seconds=30)  # also later than a status poll's re-send delay
        again = assign(cd, code, "a")
        assert again.status_code == 200 and again.json_body["status"] == "processing"
    assert len(processing_messages()) == 1  # one processing for one attempt, however often the driver taps
    assert len(Assignment.get("order-1").changes) == 2  # and one move


def test_same_driver_tapping_assign_in_parallel_pushes_processing_once(cd, monkeypatch):
    code = created_code(cd, "order-1")
    me = DriverIdentity("park1", "driver-a")
    read_together(monkeypatch, store, 5)  # five taps read "pending", then all write
    winners, lost = race([me] * 5, lambda identity: assign_order(identity, code, AREA))
    assert (len(winners), lost) == (5, [])
    assert len(processing_messages()) == 1


def test_another_driver_gets_409_and_changes_nothing(cd):
    code = created_code(cd, "order-1")
    assign(cd, code, "a")
    processing_messages()
    answer = assign(cd, code, "b")
    assert (answer.status_code, answer.json_body["code"]) == (409, "order_already_taken")
    assert Assignment.get("order-1").driver_id == "park1_driver-a"
    assert processing_messages() == []


def test_same_profile_in_another_park_is_another_driver(cd):
    code = created_code(cd, "order-1")
    assign(cd, code, "a")
    answer = post(cd, "/codedispatch/order/assign", {"code": code, "area_id": AREA}, driver("a", park="park2"))
    assert answer.status_code == 409


def test_two_drivers_racing_for_one_code_one_wins(cd, monkeypatch):
    code = created_code(cd, "order-1")
    stale = Assignment.get("order-1")  # B read the pending assignment...
    assert assign(cd, code, "a").status_code == 200  # ...then A moved it
    monkeypatch.setattr(store, "live_assignment", lambda order_id: stale)
    answer = assign(cd, code, "b")
    assert (answer.status_code, answer.json_body["code"]) == (409, "order_already_taken")
    stored = Assignment.get("order-1")
    assert stored.driver_id == "park1_driver-a"
    assert [c.to_status for c in stored.changes] == ["pending", "processing"]


def test_two_drivers_in_threads_exactly_one_wins(cd, monkeypatch):
    code = created_code(cd, "order-1")
    drivers = [DriverIdentity("park1", f"driver-{i}") for i in range(6)]
    read_together(monkeypatch, store, len(drivers))  # all six read "pending", then all write
    winners, lost = race(drivers, lambda identity: assign_order(identity, code, AREA))
    won = [identity.driver_id for identity in winners]
    assert len(won) == 1 and lost == ["order_already_taken"] * 5
    assert Assignment.get("order-1").driver_id == won[0]
    assert [m["driver_id"] for m in processing_messages()] == won


def test_push_failure_is_503_and_the_retry_pushes(cd, monkeypatch):
    code = created_code(cd, "order-1")
    real_send = queues.send

    def broken(queue, message, **kwargs):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")

    monkeypatch.setattr(queues, "send", broken)
    answer = assign(cd, code, "a")
    assert (answer.status_code, answer.json_body["code"]) == (503, "processing_unavailable")
    monkeypatch.setattr(queues, "send", real_send)
    assert assign(cd, code, "a").status_code == 200
    assert [m["order_id"] for m in processing_messages()] == ["order-1"]


def test_processing_switch_off_is_409(cd):
    code = created_code(cd, "order-1")
    set_configs(CODE_DISPATCH_PROCESSING_ENABLED=False)
    answer = assign(cd, code)
    assert (answer.status_code, answer.json_body["code"]) == (409, "code_dispatch_processing_disabled")
    assert Assignment.get("order-1").status == "pending"


def test_experiment_off_is_409(cd):
    code = created_code(cd, "order-1")
    set_configs(code_dispatch={"enabled": False})
    answer = assign(cd, code)
    assert (answer.status_code, answer.json_body["code"]) == (409, "code_dispatch_disabled")


def test_disabled_area_is_409(cd):
    code = created_code(cd, "order-1")
    enable(zones={AREA: {**ZONE, "enabled": False}})
    answer = assign(cd, code)
    assert (answer.status_code, answer.json_body["code"]) == (409, "area_disabled")


# Review finding 3: park "a_b" + profile "c" and park "a" + profile "b_c" join to the same "a_b_c".
def colliding_a() -> dict:
    return as_driver("a_b", "c")


def colliding_b() -> dict:
    return as_driver("a", "b_c")


def test_drivers_whose_joined_ids_collide_are_different_drivers(cd):
    code = created_code(cd, "order-1")
    assert post(cd, "/codedispatch/order/assign", {"code": code, "area_id": AREA}, colliding_a()).status_code == 200
    processing_messages()
    answer = post(cd, "/codedispatch/order/assign", {"code": code, "area_id": AREA}, colliding_b())
    assert (answer.status_code, answer.json_body["code"]) == (409, "order_already_taken")
    assert processing_messages() == []
    stored = Assignment.get("order-1")
    assert (stored.park_db_id, stored.driver_profile_id) == ("a_b", "c")


def test_status_of_a_colliding_driver_is_not_found(cd):
    code = created_code(cd, "order-1")
    post(cd, "/codedispatch/order/assign", {"code": code, "area_id": AREA}, colliding_a())
    mine = cd.http.get("/codedispatch/assignment/status?order_id=order-1", headers=colliding_a())
    assert mine.status_code == 200
    other = cd.http.get("/codedispatch/assignment/status?order_id=order-1", headers=colliding_b())
    assert (other.status_code, other.json_body["code"]) == (404, "assignment_not_found")
