"""A processing push lost after the state moved is re-sent by the assigned driver's status polls (finding 2)."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from chalicelib.codedispatch import processing
from chalicelib.codedispatch.models import Assignment
from chalicelib.core import clock, queues
from tests.codedispatch.conftest import assign, created_code, processing_messages, status

AFTER = processing.PROCESSING_RESEND_AFTER.total_seconds()


@pytest.fixture
def failing_send(monkeypatch):
    """queues.send fails `times` times, then works."""
    real, state = queues.send, {"left": 0}

    def send(queue, message, **kwargs):
        if state["left"] > 0:
            state["left"] -= 1
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
        return real(queue, message, **kwargs)

    monkeypatch.setattr(queues, "send", send)
    return state


def test_a_send_that_failed_on_assign_is_sent_by_a_later_poll(cd, failing_send):
    code = created_code(cd, "order-1")
    failing_send["left"] = 1
    answer = assign(cd, code, "a")
    assert (answer.status_code, answer.json_body["code"]) == (503, "processing_unavailable")
    assert Assignment.get("order-1").status == "processing"
    assert Assignment.get("order-1").processing_sent_at is None
    # A poll right away leaves room for a send still in flight: nothing yet.
    assert status(cd, "order-1", "a").json_body["status"] == "processing"
    assert processing_messages() == []
    clock.advance(seconds=AFTER)
    assert status(cd, "order-1", "a").json_body == {"order_id": "order-1", "status": "processing"}
    assert [m["order_id"] for m in processing_messages()] == ["order-1"]
    assert Assignment.get("order-1").processing_sent_at == clock.now()
    clock.advance(seconds=60)
    status(cd, "order-1", "a")
    assert processing_messages() == []  # sent once: polls do not repeat it


def test_a_successful_send_is_not_repeated_by_polls(cd):
    code = created_code(cd, "order-1")
    assert assign(cd, code, "a").status_code == 200
    assert Assignment.get("order-1").processing_sent_at == clock.now()
    assert len(processing_messages()) == 1
    for _ in range(3):
        clock.advance(seconds=AFTER + 1)
        assert status(cd, "order-1", "a").status_code == 200
    assert processing_messages() == []


def test_a_poll_whose_resend_fails_still_answers_and_the_next_poll_sends(cd, failing_send):
    code = created_code(cd, "order-1")
    failing_send["left"] = 2
    assert assign(cd, code, "a").status_code == 503
    clock.advance(seconds=AFTER)
    assert status(cd, "order-1", "a").json_body["status"] == "processing"  # the poll's re-send failed too
    assert processing_messages() == []
    assert status(cd, "order-1", "a").status_code == 200
    assert len(processing_messages()) == 1


def test_other_drivers_polls_send_nothing(cd, failing_send):
    code = created_code(cd, "order-1")
    failing_send["left"] = 1
    assign(cd, code, "a")
    clock.advance(seconds=AFTER)
    assert status(cd, "order-1", "b").status_code == 404
    assert processing_messages() == []
