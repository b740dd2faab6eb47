"""After an assignment ends in error, typing the code again starts a NEW attempt (review finding 1).

Statuses still move only forward within an attempt; an errored attempt is never reused: the next driver
to type the code (the same one after fixing GPS, or another) opens attempt N+1, pending -> processing,
on the same item, with the change log kept. drivers-lookup and every status move act on the current
attempt only.
"""
from __future__ import annotations


from chalicelib.codedispatch import store, upstreams
from chalicelib.codedispatch.assign import assign_order
from chalicelib.codedispatch.models import Assignment
from chalicelib.codedispatch.schemas import ERROR_MESSAGES
from chalicelib.core import clock
from chalicelib.core.identity import DriverIdentity
from tests.codedispatch.conftest import (
    AREA, assign, created_code, lookup, processing_messages, race, read_together, status, tracker_absent,
    tracker_present,
)


def errored(cd, upstream, who: str = "a") -> str:
    """order-1: `who` typed its code, the tracker did not know them: error. Returns the code."""
    code = created_code(cd, "order-1")
    assert assign(cd, code, who).status_code == 200
    tracker_absent(upstream, who)
    assert lookup(cd, "order-1").json_body["code"] == "driver_not_found_in_tracker"
    processing_messages()
    return code


def log_of(order_id: str) -> list[tuple]:
    return [(c.attempt, c.from_status, c.to_status) for c in Assignment.get(order_id).changes]


def test_the_error_message_tells_the_driver_to_type_the_code_again_and_that_works(cd, upstream):
    code = errored(cd, upstream)
    polled = status(cd, "order-1", "a").json_body
    assert polled["status"] == "error"
    assert polled["error_message"] == ERROR_MESSAGES["driver_not_found_in_tracker"]
    assert "код" in polled["error_message"]  # it says to type the code again...
    tracker_present(upstream)  # ...the driver fixes GPS
    clock.advance(seconds=20)
    again = assign(cd, code, "a")  # ...and that works: a new attempt
    assert again.status_code == 200, again.json_body
    assert again.json_body == {"order_id": "order-1", "status": "processing"}
    assert [(m["driver_id"], m["attempt"]) for m in processing_messages()] == [("park1_driver-a", 2)]
    assert status(cd, "order-1", "a").json_body == {"order_id": "order-1", "status": "processing"}
    found = lookup(cd, "order-1")
    assert found.status_code == 200, found.json_body
    stored = Assignment.get("order-1")
    assert (stored.status, stored.error_code, stored.attempt) == ("assigned", None, 2)
    assert log_of("order-1") == [
        (1, None, "pending"), (1, "pending", "processing"), (1, "processing", "error"),
        (2, None, "pending"), (2, "pending", "processing"), (2, "processing", "assigned")]
    assert status(cd, "order-1", "a").json_body == {"order_id": "order-1", "status": "assigned"}


def test_another_driver_can_take_the_order_after_an_error(cd, upstream):
    code = errored(cd, upstream, "a")
    answer = assign(cd, code, "b")
    assert answer.status_code == 200, answer.json_body
    stored = Assignment.get("order-1")
    assert (stored.status, stored.driver_profile_id, stored.attempt) == ("processing", "driver-b", 2)
    assert status(cd, "order-1", "a").status_code == 404  # no longer A's
    assert assign(cd, code, "a").json_body["code"] == "order_already_taken"
    assert lookup(cd, "order-1").json_body["driver"]["driver_profile_id"] == "driver-b"


def test_create_keeps_the_same_code_and_it_is_typeable_again(cd, upstream):
    code = errored(cd, upstream)
    assert created_code(cd, "order-1") == code
    assert assign(cd, code, "b").status_code == 200


def test_a_stale_lookup_of_the_old_attempt_cannot_touch_the_new_one(cd, upstream, monkeypatch):
    code = created_code(cd, "order-1")
    assign(cd, code, "a")
    stale = Assignment.get("order-1")  # a slow lookup read attempt 1 (processing)...
    tracker_absent(upstream)
    lookup(cd, "order-1")  # ...another lookup ended attempt 1 in error...
    tracker_present(upstream)
    assert assign(cd, code, "a").status_code == 200  # ...and A, GPS fixed, started attempt 2
    real_acquire, first_attempt_token = upstreams.acquire_driver, stale.acquire_token

    def slow_lookups_answer(order_id, token, park_db_id, driver_profile_id):
        if token == first_attempt_token:  # what the tracker told the slow lookup of attempt 1 back then
            raise upstreams.DriverNotInTracker(driver_profile_id)
        return real_acquire(order_id, token, park_db_id, driver_profile_id)

    monkeypatch.setattr(upstreams, "acquire_driver", slow_lookups_answer)
    reads = iter([stale])
    real_read = store.live_assignment
    monkeypatch.setattr(store, "live_assignment", lambda order_id: next(reads, None) or real_read(order_id))
    answer = lookup(cd, "order-1")  # its miss belongs to attempt 1; it goes on with attempt 2
    assert answer.status_code == 200, answer.json_body
    stored = Assignment.get("order-1")
    assert (stored.status, stored.attempt, stored.error_code) == ("assigned", 2, None)
    assert log_of("order-1")[-2:] == [(2, "pending", "processing"), (2, "processing", "assigned")]
    assert "error" not in [to for attempt, _, to in log_of("order-1") if attempt == 2]


def test_an_error_is_final_for_its_attempt(cd, upstream):
    errored(cd, upstream)
    stored = Assignment.get("order-1")
    assert (stored.status, stored.attempt) == ("error", 1)
    assert lookup(cd, "order-1").json_body["code"] == "driver_not_found_in_tracker"
    assert Assignment.get("order-1").status == "error"


def test_no_new_attempt_after_the_order_s_code_expired(cd, upstream):
    code = errored(cd, upstream)
    clock.advance(seconds=1800)  # the record and the code's guard outlive the code (store.py: expiry)
    answer = assign(cd, code, "a")
    assert (answer.status_code, answer.json_body["code"]) == (410, "code_expired")
    stored = Assignment.get("order-1")
    assert (stored.status, stored.attempt, len(stored.changes)) == ("error", 1, 3)


def test_two_drivers_racing_to_retry_one_wins(cd, upstream, monkeypatch):
    code = errored(cd, upstream)
    drivers = [DriverIdentity("park1", f"driver-{i}") for i in range(5)]
    read_together(monkeypatch, store, len(drivers))  # all read "error", then all write
    winners, lost = race(drivers, lambda identity: assign_order(identity, code, AREA))
    won = [identity.driver_profile_id for identity in winners]
    assert len(won) == 1 and lost == ["order_already_taken"] * 4
    stored = Assignment.get("order-1")
    assert (stored.driver_profile_id, stored.attempt) == (won[0], 2)
    assert [entry[0] for entry in log_of("order-1")].count(2) == 2  # one new attempt, logged once
