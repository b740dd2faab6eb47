"""The schedules: each runs alone (lease), the lease lasts the function's time, the work gets a deadline."""
from __future__ import annotations

import datetime as dt
import types

from chalicelib.core import clock, lease
from chalicelib.core.lease import Lease
from chalicelib.scooters import jobs

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def _event(remaining_ms: int):
    return types.SimpleNamespace(context=types.SimpleNamespace(get_remaining_time_in_millis=lambda: remaining_ms))


def test_the_lease_lasts_the_function_time_and_the_deadline_leaves_room(recharge):
    clock.freeze(T0)
    seen = {}

    def work(deadline):
        seen["lease"] = Lease.get("scooters_find_discharged").held_until
        seen["deadline"] = deadline

    import time

    before = time.monotonic()
    jobs._run("scooters_find_discharged", _event(10_000), work)
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
