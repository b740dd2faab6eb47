"""`code_dispatch` is an experiment: on for one area / park / driver and off for another, in every handler."""
from __future__ import annotations

import pytest

from chalicelib.codedispatch.models import Assignment
from tests.codedispatch.conftest import (
    AREA, ZONE, assign, create, created_code, driver, lookup, post, processing_messages, set_configs, status,
)

OTHER_AREA = "luzhniki"


def clause(predicate: dict, enabled: bool = True) -> dict:
    return {"title": "test", "predicate": predicate, "value": {"enabled": enabled}}


def experiment(*clauses: dict, default: bool = False) -> None:
    set_configs(code_dispatch={"clauses": list(clauses), "default": {"enabled": default}})


def assign_in_park(client, code: str, park: str, who: str = "a"):
    return post(client, "/codedispatch/order/assign", {"code": code, "area_id": AREA}, driver(who, park=park))


@pytest.fixture
def two_areas(cd):
    set_configs(CODE_DISPATCH_ZONES_SETTINGS={AREA: ZONE, OTHER_AREA: ZONE})
    return cd


def test_on_in_one_area_and_off_in_another(two_areas):
    experiment(clause({"in": {"area_id": [AREA]}}))
    assert create(two_areas, "order-1", AREA).status_code == 200
    answer = create(two_areas, "order-2", OTHER_AREA)
    assert (answer.status_code, answer.json_body["code"]) == (409, "code_dispatch_disabled")


def test_on_for_one_park_lets_its_drivers_assign_and_not_the_others(cd):
    first, second = created_code(cd, "order-1"), created_code(cd, "order-2")  # created while on for everyone
    experiment(clause({"eq": {"park_id": "park1"}}))
    answer = assign_in_park(cd, first, "park2")
    assert (answer.status_code, answer.json_body["code"]) == (409, "code_dispatch_disabled")
    assert Assignment.get("order-1").status == "pending"
    assert assign_in_park(cd, second, "park1").status_code == 200
    assert [m["order_id"] for m in processing_messages()] == ["order-2"]
    # order/create knows no driver: a clause on the park does not match there, the default (off) answers
    assert create(cd, "order-3").json_body["code"] == "code_dispatch_disabled"


def test_first_matching_clause_wins_off_for_one_park_on_for_the_rest(cd):
    code = created_code(cd, "order-1")
    experiment(clause({"eq": {"park_id": "park1"}}, enabled=False), clause({"true": {}}))
    assert assign_in_park(cd, code, "park1").json_body["code"] == "code_dispatch_disabled"
    assert assign_in_park(cd, code, "park2").status_code == 200


def test_status_and_lookup_follow_the_order_s_area(two_areas):
    code = created_code(two_areas, "order-1", AREA)
    assert assign(two_areas, code, "a").status_code == 200
    experiment(clause({"in": {"area_id": [OTHER_AREA]}}))  # switched off in the order's area
    assert status(two_areas, "order-1", "a").json_body["code"] == "code_dispatch_disabled"
    assert lookup(two_areas, "order-1").json_body["code"] == "code_dispatch_disabled"
    experiment(clause({"in": {"area_id": [AREA]}}))
    assert status(two_areas, "order-1", "a").json_body["status"] == "processing"


def test_half_of_the_drivers_by_a_stable_percentage(cd):
    codes = {f"d{index}": created_code(cd, f"order-{index}") for index in range(30)}
    experiment(clause({"percent": {"arg": "driver_profile_id", "from": 0, "to": 50}}))
    first = {who: assign(cd, code, who).status_code for who, code in codes.items()}
    assert set(first.values()) == {200, 409}
    assert 6 <= list(first.values()).count(200) <= 24  # ~half of 30
    again = {who: assign(cd, code, who).status_code for who, code in codes.items()}
    assert again == first  # the same driver always falls on the same side
