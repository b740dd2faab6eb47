"""The tracker acquire's idempotency token (issue 14, item 4): one fresh uuid4 per assignment attempt, drawn
when the attempt starts (create, restart) and stored on the assignment; every lookup of that attempt, and
every HTTP retry inside one, carries it; a new attempt carries a new one. Never derived from the order."""
from __future__ import annotations

import uuid

from chalicelib.codedispatch import store
from chalicelib.codedispatch.models import Assignment
from tests.codedispatch.conftest import (
    assign, created_code, lookup, processing_messages, tracker_absent, tracker_calls, tracker_fault, tracker_present,
)


def tokens(sim) -> list[str]:
    return [call["idempotency_token"] for call in tracker_calls(sim)]


def assert_uuid4(token: str) -> None:
    assert uuid.UUID(token).version == 4 and str(uuid.UUID(token)) == token


def test_the_first_attempt_s_token_is_drawn_at_create_and_sent_by_lookup(cd, upstream):
    code = created_code(cd, "order-1")
    drawn = Assignment.get("order-1").acquire_token
    assert_uuid4(drawn)
    assert "order-1" not in drawn
    assert assign(cd, code, "a").status_code == 200
    assert Assignment.get("order-1").acquire_token == drawn  # the attempt's driver is chosen, same attempt
    assert lookup(cd, "order-1").status_code == 200
    assert tokens(upstream) == [drawn]


def test_two_orders_never_share_a_token(cd, upstream):
    for order_id in ("order-1", "order-2"):
        assign(cd, created_code(cd, order_id), "a" if order_id == "order-1" else "b")
        assert lookup(cd, order_id).status_code == 200
    first, second = tokens(upstream)
    assert first != second


def test_a_new_attempt_carries_a_new_token(cd, upstream):
    code = created_code(cd, "order-1")
    assign(cd, code, "a")
    tracker_absent(upstream)
    assert lookup(cd, "order-1").json_body["code"] == "driver_not_found_in_tracker"
    tracker_present(upstream)
    assert assign(cd, code, "a").status_code == 200  # attempt 2, the same driver
    assert lookup(cd, "order-1").status_code == 200
    first, second = tokens(upstream)
    assert first != second
    assert_uuid4(second)
    assert Assignment.get("order-1").acquire_token == second
    processing_messages()


def test_an_http_retry_after_a_5xx_carries_the_same_token(cd, upstream):
    assign(cd, created_code(cd, "order-1"), "a")
    tracker_fault(upstream, "error", count=1)
    assert lookup(cd, "order-1").status_code == 200
    sent = tokens(upstream)
    assert len(sent) == 2 and len(set(sent)) == 1
    assert sent[0] == Assignment.get("order-1").acquire_token


def test_a_repeated_lookup_after_the_tracker_was_down_carries_the_same_token(cd, upstream):
    assign(cd, created_code(cd, "order-1"), "a")
    tracker_fault(upstream, "error")
    assert lookup(cd, "order-1").status_code == 503  # one call and its retries, all failed
    upstream.faults.clear()
    assert lookup(cd, "order-1").status_code == 200  # lookup's queue retries the call: the same logical call
    sent = tokens(upstream)
    assert len(sent) == 4 and len(set(sent)) == 1


def test_an_item_written_before_tokens_gets_one_once(cd, upstream):
    code = created_code(cd, "order-1")
    assign(cd, code, "a")
    Assignment.get("order-1").update(actions=[Assignment.acquire_token.remove()])
    tracker_fault(upstream, "error")
    assert lookup(cd, "order-1").status_code == 503
    installed = Assignment.get("order-1").acquire_token
    assert_uuid4(installed)
    upstream.faults.clear()
    assert lookup(cd, "order-1").status_code == 200
    assert set(tokens(upstream)) == {installed}


def test_a_lookup_that_loses_installing_the_token_uses_the_winner_s(cd, upstream):
    assign(cd, created_code(cd, "order-1"), "a")
    Assignment.get("order-1").update(actions=[Assignment.acquire_token.remove()])
    stale = Assignment.get("order-1")  # read without a token...
    winner = store.acquire_token(Assignment.get("order-1"))  # ...another lookup installed one meanwhile
    assert store.acquire_token(stale) is None and stale.acquire_token == winner  # re-read: ask again
    assert store.acquire_token(stale) == winner
