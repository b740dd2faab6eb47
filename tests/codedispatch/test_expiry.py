"""Code expiry (issue 14, item 6): the code can be typed until creation + order_expire_seconds; the record lives
as long as its status needs (each move extends it), and a code typed in its last second gets either the whole
processing or 410 code_expired with nothing changed."""
from __future__ import annotations

import datetime as dt

from chalicelib.codedispatch import codes, store
from chalicelib.codedispatch.models import AreaCode, Assignment, WrongCodes
from chalicelib.codedispatch.schemas import KEEP_AFTER_MOVE
from chalicelib.core import clock
from tests.codedispatch.conftest import (
    AREA, T0, ZONE, assign, create, created_code, enable, lookup, processing_messages, status, tracker_absent,
)

CODE_LIFE = dt.timedelta(seconds=ZONE["order_expire_seconds"])
PROCESSING = dt.timedelta(seconds=KEEP_AFTER_MOVE[store.Status.PROCESSING])
DAY = dt.timedelta(days=1)


def guard_of(code: str) -> AreaCode:
    return AreaCode.get(f"{AREA}#{code}")


def test_a_pending_record_lives_as_long_as_its_code(cd):
    code = created_code(cd, "order-1")
    stored = Assignment.get("order-1")
    assert stored.code_expires_at == stored.expires_at == guard_of(code).expires_at == T0 + CODE_LIFE


def test_the_move_to_processing_extends_the_record_and_the_code_s_guard_in_its_write(cd):
    code = created_code(cd, "order-1")
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)  # typed in the code's last second
    assert assign(cd, code, "a").status_code == 200
    stored = Assignment.get("order-1")
    assert stored.status == "processing"
    assert stored.expires_at == clock.now() + PROCESSING
    assert guard_of(code).expires_at == clock.now() + PROCESSING  # no other order can take the code meanwhile
    assert stored.code_expires_at == T0 + CODE_LIFE  # the code's own time does not move


def test_processing_outlives_the_code_so_drivers_lookup_still_finds_the_driver(cd, upstream):
    code = created_code(cd, "order-1")
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)
    assign(cd, code, "a")
    clock.advance(seconds=600)  # the code expired 10 minutes ago; order processing is slow today
    answer = lookup(cd, "order-1")
    assert answer.status_code == 200, answer.json_body
    stored = Assignment.get("order-1")
    assert [c.to_status for c in stored.changes] == ["pending", "processing", "assigned"]


def test_assigned_keeps_the_change_log_a_day(cd, upstream):
    assign(cd, created_code(cd, "order-1"), "a")
    lookup(cd, "order-1")
    assert Assignment.get("order-1").expires_at == clock.now() + DAY
    clock.advance(seconds=DAY.total_seconds() - 1)
    assert status(cd, "order-1", "a").json_body == {"order_id": "order-1", "status": "assigned"}
    clock.advance(seconds=1)
    assert status(cd, "order-1", "a").status_code == 404


def test_error_keeps_the_change_log_a_day_and_a_new_attempt_extends_again(cd, upstream):
    code = created_code(cd, "order-1")
    assign(cd, code, "a")
    tracker_absent(upstream)
    clock.advance(seconds=60)
    lookup(cd, "order-1")
    assert Assignment.get("order-1").expires_at == clock.now() + DAY
    clock.advance(seconds=60)
    assert assign(cd, code, "b").status_code == 200  # a new attempt: never shortens the record's life
    stored = Assignment.get("order-1")
    assert (stored.status, stored.attempt) == ("processing", 2)
    assert stored.expires_at == clock.now() - dt.timedelta(seconds=60) + DAY  # the error's log day
    assert guard_of(code).expires_at == clock.now() + PROCESSING  # the code: held for processing only


def a_second_passes_before(monkeypatch, name: str) -> None:
    """The clock passes the code's expiry between the checks and store.<name>'s writes."""
    real = getattr(store, name)

    def late(*args, **kwargs):
        clock.advance(seconds=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, name, late)


def assert_untouched(code: str, guard_expiry: dt.datetime) -> None:
    stored = Assignment.get("order-1")
    assert (stored.status, stored.driver_id, len(stored.changes)) == ("pending", None, 1)
    assert stored.expires_at == T0 + CODE_LIFE
    assert guard_of(code).expires_at == guard_expiry
    assert processing_messages() == []
    assert {item.count for item in WrongCodes.scan()} == {0}  # a real code: not a guess


def test_a_code_typed_in_its_last_second_but_written_after_it_is_410_and_changes_nothing(cd, monkeypatch):
    code = created_code(cd, "order-1")
    guard_expiry = guard_of(code).expires_at
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)
    a_second_passes_before(monkeypatch, "move")
    answer = assign(cd, code, "a")
    assert (answer.status_code, answer.json_body["code"]) == (410, "code_expired")
    assert_untouched(code, guard_expiry)


def test_the_record_s_own_write_refuses_an_expired_code(cd, monkeypatch):
    """Even if the guard's hold went through (its own check is the first line), the record's move is
    conditional on the code being alive: never a processing record for an expired code."""
    code = created_code(cd, "order-1")
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)
    a_second_passes_before(monkeypatch, "move")
    monkeypatch.setattr(store, "_hold_code", lambda assignment, now: True)
    answer = assign(cd, code, "a")
    assert (answer.status_code, answer.json_body["code"]) == (410, "code_expired")
    assert_untouched(code, T0 + CODE_LIFE)


def test_a_code_read_alive_and_checked_after_its_expiry_is_410(cd, monkeypatch):
    code = created_code(cd, "order-1")
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)
    real_read = store.live_assignment

    def read_then_the_second_passes(order_id):
        found = real_read(order_id)  # read alive, then checked when it is not
        clock.advance(seconds=1)
        return found

    monkeypatch.setattr(store, "live_assignment", read_then_the_second_passes)
    answer = assign(cd, code, "a")
    assert (answer.status_code, answer.json_body["code"]) == (410, "code_expired")
    assert_untouched(code, T0 + CODE_LIFE)


def test_an_expired_pending_code_is_not_found(cd):
    code = created_code(cd, "order-1")
    clock.advance(seconds=CODE_LIFE.total_seconds())
    answer = assign(cd, code, "a")
    assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found")
    assert Assignment.get("order-1").status == "pending"


def test_a_second_order_cannot_take_the_code_while_the_first_is_processing(cd, monkeypatch):
    enable(zones={AREA: {**ZONE, "order_expire_seconds": 60, "driver_due_offset_seconds": 0}})
    monkeypatch.setattr(codes, "generate", lambda settings, length: "000000")
    assert created_code(cd, "order-1") == "000000"
    clock.advance(seconds=59)
    assert assign(cd, "000000", "a").status_code == 200
    clock.advance(seconds=61)  # order-1's code expired; its order is processing
    answer = create(cd, "order-2")
    assert (answer.status_code, answer.json_body["code"]) == (409, "codes_exhausted")
    clock.advance(seconds=PROCESSING.total_seconds())  # processing's time is over: the code is free again
    assert created_code(cd, "order-2") == "000000"
    assert guard_of("000000").order_id == "order-2"


def test_create_answers_the_code_while_it_lives_and_410_after(cd, upstream):
    code = created_code(cd, "order-1")
    assign(cd, code, "a")
    lookup(cd, "order-1")
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)
    assert created_code(cd, "order-1") == code
    clock.advance(seconds=1)
    answer = create(cd, "order-1")  # kept for its change log; its code is over, and no new code is issued
    assert (answer.status_code, answer.json_body["code"]) == (410, "code_expired")
    assert Assignment.get("order-1").code == code


def test_an_item_written_before_code_expiry_was_recorded_expires_by_its_ttl(cd):
    code = created_code(cd, "order-1")
    Assignment.get("order-1").update(actions=[Assignment.code_expires_at.remove()])
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)
    assert assign(cd, code, "a").status_code == 200
    assert Assignment.get("order-1").expires_at == clock.now() + PROCESSING


def test_an_old_item_typed_too_late_is_410(cd, monkeypatch):
    code = created_code(cd, "order-1")
    Assignment.get("order-1").update(actions=[Assignment.code_expires_at.remove()])
    clock.advance(seconds=CODE_LIFE.total_seconds() - 1)
    a_second_passes_before(monkeypatch, "move")
    monkeypatch.setattr(store, "_hold_code", lambda assignment, now: True)
    assert assign(cd, code, "a").json_body["code"] == "code_expired"
    assert Assignment.get("order-1").status == "pending"
