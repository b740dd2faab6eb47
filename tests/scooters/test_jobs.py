"""The schedules: each runs alone (lease), the lease lasts the function's time, the work gets a deadline."""
from __future__ import annotations

import datetime as dt
import time
import types

from chalicelib.core import clock, lease
from chalicelib.core.lease import Lease
from chalicelib.scooters import jobs
from chalicelib.scooters.recharge import finder

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def _context(remaining_ms: int):
    """What Lambda hands a handler: the time left before it is killed."""
    return types.SimpleNamespace(get_remaining_time_in_millis=lambda: remaining_ms, function_name="Scooters",
                                 aws_request_id="req-1")


SCHEDULED = {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "000000000000", "time": "2026-11-23T12:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:000000000000:rule/test"], "detail": {}}


def test_the_lease_lasts_the_function_time_and_the_deadline_leaves_room(recharge, monkeypatch):
    clock.freeze(T0)
    seen = {}

    def work(deadline):
        seen["lease"] = Lease.get("scooters_find_discharged").held_until
        seen["deadline"] = deadline
        return finder.FindReport()

    monkeypatch.setattr(finder, "find_discharged", work)
    before = time.monotonic()
    jobs.scooters_find_discharged(SCHEDULED, _context(10_000))
    assert seen["lease"] == T0 + dt.timedelta(seconds=15)  # 10 s left + the margin
    assert before + 4 <= seen["deadline"] <= before + 10
    assert Lease.count() == 0  # released after the run


def test_a_run_is_skipped_while_another_holds_the_lease(recharge, client):
    recharge.car("s1", level=20)
    lease.acquire("scooters_find_discharged", 60)
    client.lambda_.invoke("scooters_find_discharged", client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert recharge.sent == []
    Lease(name="scooters_find_discharged").delete()
    client.lambda_.invoke("scooters_find_discharged", client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert len(recharge.sent) == 1


def test_the_follower_schedule_runs_the_journal(recharge, claimed, client):
    client.lambda_.invoke("scooters_follow_claims", client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert recharge.claims()[0]["status"] == "performer_lookup"  # accepted
