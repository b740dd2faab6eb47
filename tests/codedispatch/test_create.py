"""POST /codedispatch/order/create: codes unique per area among live codes, idempotent per order, switches."""
from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading

import pytest

from chalicelib.codedispatch import codes, store
from chalicelib.codedispatch.create import create_order
from chalicelib.codedispatch.models import AreaCode, Assignment
from chalicelib.core import clock
from tests.codedispatch.conftest import (
    AREA, T0, ZONE, assign, create, created_code, enable, post, read_together, set_configs,
)

# The smallest area the config allows: 100 codes for 1 wrong code a day (schemas: CODE_SPACE_PER_DAILY_GUESS).
TINY = {"length": 2, "alphabet": "0123456789", "max_attempts": 50, "max_wrong_codes": 1, "lockout_after_limits": 1}
FOUR_CODES = ["00", "01", "10", "11"]


def draw_from_four(settings, length):
    """A random draw from an area of 4 codes (smaller than any valid config allows)."""
    return secrets.choice(FOUR_CODES)


def codes_of(order_id: str) -> list[str]:
    return [item.code for item in AreaCode.scan() if item.order_id == order_id]


def test_order_gets_a_code_of_the_configured_format_and_its_zone_settings(cd):
    answer = create(cd, "order-1")
    assert answer.status_code == 200, answer.json_body
    body = answer.json_body
    assert len(body["code"]) == 6 and body["code"].isdigit()
    assert body["instructions"] == ZONE["instructions"]
    assert body["driver_due_offset_seconds"] == 300
    assert dt.datetime.fromisoformat(body["expires_at"]) == T0 + dt.timedelta(seconds=1800)
    stored = Assignment.get("order-1")
    assert (stored.area_id, stored.code, stored.status, stored.driver_id) == (AREA, body["code"], "pending", None)
    assert stored.created_at == stored.updated_at == T0
    assert stored.expires_at == T0 + dt.timedelta(seconds=1800)
    assert [(c.who, c.from_status, c.to_status) for c in stored.changes] == [("order_create", None, "pending")]


def test_generator_settings_shape_the_codes(cd):
    set_configs(CODE_DISPATCH_GENERATOR_SETTINGS={"length": 7, "alphabet": "ABCD"})
    code = created_code(cd, "order-1")
    assert len(code) == 7 and set(code) <= set("ABCD")


def test_second_create_for_the_order_returns_the_same_code(cd):
    first = created_code(cd, "order-1")
    assert created_code(cd, "order-1") == first
    assert codes_of("order-1") == [first]


def test_create_for_the_order_in_another_area_is_refused(cd):
    enable(zones={AREA: ZONE, "luzhniki": ZONE})
    created_code(cd, "order-1")
    answer = create(cd, "order-1", "luzhniki")
    assert answer.status_code == 409
    assert answer.json_body["code"] == "order_in_another_area"


def test_feature_is_off_by_default(client):
    answer = create(client, "order-1")
    assert answer.status_code == 409
    assert answer.json_body["code"] == "code_dispatch_disabled"
    assert list(Assignment.scan()) == []


def test_experiment_off_switches_create_off(cd):
    set_configs(code_dispatch={"enabled": False})
    answer = create(cd, "order-1")
    assert (answer.status_code, answer.json_body["code"]) == (409, "code_dispatch_disabled")


@pytest.mark.parametrize("zones", [{}, {AREA: {**ZONE, "enabled": False}}, {"other": ZONE}])
def test_disabled_or_unknown_area_is_refused(cd, zones):
    enable(zones=zones)
    answer = create(cd, "order-1")
    assert (answer.status_code, answer.json_body["code"]) == (409, "area_disabled")
    assert list(Assignment.scan()) == []


@pytest.mark.parametrize("body", [{"order_id": "o1"}, {"area_id": AREA}, {"order_id": "", "area_id": AREA},
                                  {"order_id": "o1", "area_id": "zen it"}, {"order_id": 5, "area_id": AREA}])
def test_invalid_body_is_400(cd, body):
    answer = post(cd, "/codedispatch/order/create", body)
    assert answer.status_code == 400
    assert answer.json_body["code"] == "invalid_request"


def test_codes_are_unique_in_an_area_until_the_space_is_full(cd, monkeypatch):
    enable(zones={AREA: ZONE, "luzhniki": ZONE}, generator=TINY)
    monkeypatch.setattr(codes, "generate", draw_from_four)
    got = [created_code(cd, f"order-{i}") for i in range(4)]
    assert sorted(got) == FOUR_CODES
    answer = create(cd, "order-4")
    assert (answer.status_code, answer.json_body["code"]) == (409, "codes_exhausted")
    assert "order-4" not in {a.order_id for a in Assignment.scan()}
    # The same codes are free in another area.
    assert sorted(created_code(cd, f"l-{i}", "luzhniki") for i in range(4)) == FOUR_CODES


def test_a_collision_draws_another_code(cd, monkeypatch):
    enable(generator=TINY)
    monkeypatch.setattr(codes, "generate", lambda settings, length: "00")
    assert created_code(cd, "order-1") == "00"
    drawn = iter(["00", "00", "01"])
    monkeypatch.setattr(codes, "generate", lambda settings, length: next(drawn))
    created = create_order("order-2", AREA)
    assert (created.code, created.attempts, created.created) == ("01", 3, True)
    assert codes_of("order-2") == ["01"]


def test_attempts_are_bounded(cd, monkeypatch):
    enable(generator={**TINY, "max_attempts": 3})
    monkeypatch.setattr(codes, "generate", lambda settings, length: "00")
    created_code(cd, "order-1")
    calls = itertools.count()
    monkeypatch.setattr(codes, "generate", lambda settings, length: (next(calls), "00")[1])
    answer = create(cd, "order-2")
    assert (answer.status_code, answer.json_body["code"]) == (409, "codes_exhausted")
    assert next(calls) == 3


def test_an_expired_code_not_yet_deleted_is_free_again(cd, monkeypatch):
    enable(zones={AREA: {**ZONE, "order_expire_seconds": 60, "driver_due_offset_seconds": 0}}, generator=TINY)
    monkeypatch.setattr(codes, "generate", lambda settings, length: "00")
    assert created_code(cd, "old-order") == "00"
    clock.advance(seconds=59)
    assert create(cd, "new-order").json_body["code"] == "codes_exhausted"
    clock.advance(seconds=1)  # expired; moto (like AWS for a while) still holds the items
    assert created_code(cd, "new-order") == "00"
    assert AreaCode.get(f"{AREA}#00").order_id == "new-order"
    # The code now leads to the new order only.
    answer = assign(cd, "00")
    assert answer.status_code == 200 and answer.json_body["order_id"] == "new-order"


def test_an_expired_assignment_of_the_order_is_replaced(cd):
    enable(zones={AREA: {**ZONE, "order_expire_seconds": 60, "driver_due_offset_seconds": 0}})
    created_code(cd, "order-1")
    clock.advance(seconds=61)
    created = create_order("order-1", AREA)
    assert created.created and created.attempts == 1
    assert Assignment.get("order-1").code == created.code
    assert Assignment.get("order-1").expires_at == clock.now() + dt.timedelta(seconds=60)


def test_two_creates_racing_for_one_order_end_with_one_code(cd, monkeypatch):
    winner = created_code(cd, "order-1")
    # The loser read before the winner wrote: it saw no assignment and tries to write its own.
    real, reads = store.live_assignment, []

    def stale_first(order_id):
        reads.append(order_id)
        return None if len(reads) == 1 else real(order_id)

    monkeypatch.setattr(store, "live_assignment", stale_first)
    loser = create_order("order-1", AREA)
    assert (loser.code, loser.created) == (winner, False)
    assert codes_of("order-1") == [winner]  # the loser's guard went with its cancelled transaction
    assert len(reads) == 2  # the stale read, then the re-read after the refused write


def test_concurrent_creates_for_one_order_in_threads(cd, monkeypatch):
    results, errors = [], []
    read_together(monkeypatch, store, 6)  # all six see no assignment, then all write

    def run():
        try:
            results.append(create_order("order-1", AREA).code)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 6
    assert codes_of("order-1") == results[:1]
