"""POST /codedispatch/drivers-lookup and GET /codedispatch/assignment/status: tracker acquire, end states."""
from __future__ import annotations

import pytest

from chalicelib.codedispatch import store
from chalicelib.codedispatch.models import Assignment
from chalicelib.codedispatch.schemas import ERROR_MESSAGES, KEEP_AFTER_MOVE
from chalicelib.core import clock
from tests.conftest import as_driver
from tests.codedispatch.conftest import (
    assign, created_code, lookup, post, set_configs, status, tracker_absent, tracker_calls, tracker_fault,
)

DRIVER_A = {"driver_id": "park1_driver-a", "park_db_id": "park1", "driver_profile_id": "driver-a"}


@pytest.fixture
def typed(cd):
    """order-1 whose code driver A typed: processing."""
    assert assign(cd, created_code(cd, "order-1"), "a").status_code == 200
    return "order-1"


def statuses(order_id: str) -> list[str]:
    return [(c.from_status, c.to_status) for c in Assignment.get(order_id).changes]


def test_lookup_acquires_the_driver_and_assigns(cd, upstream, typed):
    answer = lookup(cd, typed)
    assert answer.status_code == 200, answer.json_body
    assert answer.json_body == {"order_id": "order-1", "driver": DRIVER_A}
    calls = tracker_calls(upstream)
    assert len(calls) == 1
    assert calls[0]["body"] == {"order_id": "order-1", "park_db_id": "park1", "driver_profile_id": "driver-a"}
    assert calls[0]["idempotency_token"] == Assignment.get(typed).acquire_token  # test_acquire_tokens.py
    assert Assignment.get(typed).status == "assigned"
    assert statuses(typed)[-1] == ("processing", "assigned")
    assert Assignment.get(typed).changes[-1].who == "drivers_lookup"
    assert status(cd, typed, "a").json_body == {"order_id": "order-1", "status": "assigned"}


def test_repeated_lookup_answers_the_same_driver_without_acquiring_again(cd, upstream, typed):
    lookup(cd, typed)
    again = lookup(cd, typed)
    assert again.status_code == 200 and again.json_body["driver"] == DRIVER_A
    assert len(tracker_calls(upstream)) == 1
    assert len(Assignment.get(typed).changes) == 3


def test_driver_not_in_tracker_moves_to_error(cd, upstream, typed):
    tracker_absent(upstream, "a")
    answer = lookup(cd, typed)
    assert (answer.status_code, answer.json_body["code"]) == (404, "driver_not_found_in_tracker")
    stored = Assignment.get(typed)
    assert (stored.status, stored.error_code) == ("error", "driver_not_found_in_tracker")
    assert statuses(typed)[-1] == ("processing", "error")
    polled = status(cd, typed, "a").json_body
    assert polled == {"order_id": "order-1", "status": "error", "error_code": "driver_not_found_in_tracker",
                      "error_message": ERROR_MESSAGES["driver_not_found_in_tracker"]}
    # Final for this attempt: a later lookup answers the same, without the tracker (typing the code again
    # starts a new attempt: test_error_retry.py).
    assert lookup(cd, typed).json_body["code"] == "driver_not_found_in_tracker"
    assert len(tracker_calls(upstream)) == 1
    assert Assignment.get(typed).status == "error"


@pytest.mark.parametrize("mode", ["error", "timeout"])
def test_tracker_down_is_503_and_changes_nothing(cd, upstream, typed, mode):
    tracker_fault(upstream, mode, delay=1.0)  # the read timeout in tests is 0.5 s
    answer = lookup(cd, typed)
    assert (answer.status_code, answer.json_body["code"]) == (503, "upstream_unavailable")
    assert len(tracker_calls(upstream)) == 3  # one call and two retries, then the fallback
    assert Assignment.get(typed).status == "processing"
    assert len(Assignment.get(typed).changes) == 2
    upstream.faults.clear()
    assert lookup(cd, typed).status_code == 200
    assert Assignment.get(typed).status == "assigned"


def test_tracker_rejecting_the_request_is_502_and_changes_nothing(cd, upstream, typed):
    tracker_fault(upstream, "error", status=400)
    answer = lookup(cd, typed)
    assert answer.status_code == 502
    assert Assignment.get(typed).status == "processing"


def test_lookup_before_any_driver_typed_the_code(cd, upstream):
    created_code(cd, "order-1")
    answer = lookup(cd, "order-1")
    assert (answer.status_code, answer.json_body["code"]) == (404, "driver_not_chosen")
    assert tracker_calls(upstream) == []
    assert Assignment.get("order-1").status == "pending"


def test_lookup_of_an_order_without_code(cd):
    answer = lookup(cd, "nope")
    assert (answer.status_code, answer.json_body["code"]) == (404, "assignment_not_found")
    assert post(cd, "/codedispatch/drivers-lookup", {}).status_code == 400


def test_two_lookups_racing_end_assigned_once(cd, upstream, typed, monkeypatch):
    stale = Assignment.get(typed)  # the second lookup read "processing"...
    assert lookup(cd, typed).status_code == 200  # ...the first one assigned meanwhile
    monkeypatch.setattr(store, "live_assignment", lambda order_id: stale)
    answer = lookup(cd, typed)
    assert answer.status_code == 200 and answer.json_body["driver"] == DRIVER_A
    assert statuses(typed) == [(None, "pending"), ("pending", "processing"), ("processing", "assigned")]


def test_a_late_tracker_miss_cannot_undo_an_assignment(cd, upstream, typed, monkeypatch):
    stale = Assignment.get(typed)
    assert lookup(cd, typed).status_code == 200
    tracker_absent(upstream, "a")  # the racing lookup's acquire says "not found"
    monkeypatch.setattr(store, "live_assignment", lambda order_id: stale)
    answer = lookup(cd, typed)
    assert answer.status_code == 200
    assert Assignment.get(typed).status == "assigned" and Assignment.get(typed).error_code is None


def test_processing_switch_off_stops_lookup_and_status(cd, upstream, typed):
    set_configs(CODE_DISPATCH_PROCESSING_ENABLED=False)
    assert lookup(cd, typed).json_body["code"] == "code_dispatch_processing_disabled"
    assert status(cd, typed, "a").json_body["code"] == "code_dispatch_processing_disabled"
    assert tracker_calls(upstream) == []
    assert Assignment.get(typed).status == "processing"


def test_status_is_for_the_driver_who_typed_the_code_only(cd, typed):
    assert status(cd, typed, "a").json_body == {"order_id": "order-1", "status": "processing"}
    other = status(cd, typed, "b")
    assert (other.status_code, other.json_body["code"]) == (404, "assignment_not_found")
    assert status(cd, "unknown", "a").status_code == 404


def test_status_of_a_pending_order_is_nobody_s(cd):
    created_code(cd, "order-1")
    assert status(cd, "order-1", "a").status_code == 404


def test_status_needs_identity_and_order_id(cd, typed):
    assert cd.http.get(f"/codedispatch/assignment/status?order_id={typed}").status_code == 401
    answer = cd.http.get("/codedispatch/assignment/status", headers=as_driver("park1", "driver-a"))
    assert (answer.status_code, answer.json_body["code"]) == (400, "invalid_request")


def test_status_after_the_record_s_life_is_gone(cd, typed):
    clock.advance(seconds=KEEP_AFTER_MOVE[store.Status.PROCESSING] - 1)  # processing: kept past the code's 1800 s
    assert status(cd, typed, "a").status_code == 200
    clock.advance(seconds=1)
    assert status(cd, typed, "a").status_code == 404


def test_full_change_log(cd, upstream, typed):
    lookup(cd, typed)
    stored = Assignment.get(typed)
    assert [(c.who, c.from_status, c.to_status) for c in stored.changes] == [
        ("order_create", None, "pending"),
        ("driver:park1_driver-a", "pending", "processing"),
        ("drivers_lookup", "processing", "assigned"),
    ]
    assert all(c.at == clock.now() for c in stored.changes)


def test_status_never_moves_backwards(cd, typed):
    stored = Assignment.get(typed)
    with pytest.raises(ValueError):
        store.move(stored, store.Status.PENDING, who="test")
    lookup(cd, typed)
    with pytest.raises(ValueError):
        store.move(Assignment.get(typed), store.Status.ERROR, who="test", error_code="x")
