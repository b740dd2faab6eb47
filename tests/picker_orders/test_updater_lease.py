"""The updater's lease outlives the longest run its Lambda timeout allows, whatever that timeout is, so two
runners never overlap (issue 7, defect 10); with a short timeout a crashed run does not block the next minute."""
from __future__ import annotations

import time

import pytest

from app import app
from chalicelib.core import clock, lease
from chalicelib.core.budget import worst_upstream_call
from chalicelib.picker_orders import updater
from tests.picker_orders.helpers import JOB, at

LEASE = "picker_orders_updater"


class Context:
    """What Lambda hands a handler: the time left before it is killed (the function's timeout at the start)."""

    def __init__(self, timeout_seconds: float):
        self.timeout_ms = int(timeout_seconds * 1000)
        self.function_name = "PickerOrdersUpdater"
        self.aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def scheduled_event() -> dict:
    return {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "000000000000", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:000000000000:rule/test"], "detail": {}}


def fire(timeout_seconds: float):
    return app.handler_map[JOB](scheduled_event(), Context(timeout_seconds))


@pytest.fixture
def runs(aws_mock, monkeypatch):
    """Each run records how long the lease it holds lasts; `during` runs inside the first run."""
    state = {"held_for": [], "budget": [], "during": None}

    def refresh(deadline=None):
        held = lease.Lease.get(LEASE).held_until
        state["held_for"].append((held - clock.now()).total_seconds())
        state["budget"].append(deadline - time.monotonic())
        during, state["during"] = state["during"], None
        if during:
            during()
        return updater.RefreshReport()

    monkeypatch.setattr(updater, "refresh_stale_orders", refresh)
    clock.freeze(at(0))
    return state


@pytest.mark.parametrize("timeout", [10, 30, 300, 900])
def test_the_lease_outlives_the_function_timeout(runs, timeout):
    fire(timeout)
    [held_for] = runs["held_for"]
    assert timeout < held_for <= timeout + 30


def test_with_a_short_timeout_a_crashed_run_does_not_block_the_next_minute(runs):
    fire(10)
    assert runs["held_for"][0] < 60  # the lease a killed run leaves behind is gone before the next schedule


def test_a_second_runner_while_a_long_run_is_still_going_is_skipped(runs):
    seen = []

    def second_runner_two_minutes_later():
        clock.advance(seconds=120)  # the schedule fires again while the first run (timeout 300 s) still works
        fire(300)
        seen.append(len(runs["held_for"]))

    runs["during"] = second_runner_two_minutes_later
    fire(300)
    assert seen == [1]  # the second runner did not run
    assert runs["held_for"][0] > 300


def test_without_a_context_the_lease_still_covers_the_run_s_own_budget(runs):
    app.handler_map[JOB](scheduled_event(), None)
    [held_for], [budget] = runs["held_for"], runs["budget"]
    assert held_for > budget + worst_upstream_call()  # the last fetch started before the deadline ends in time
