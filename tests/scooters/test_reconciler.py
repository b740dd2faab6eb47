"""ScootersReconcileClaims: open claims whose state nobody confirmed for a while are asked for (claims/info) and what
cargo says is applied as if the events had come; found through the sparse index (no Scan), bounded per run."""
from __future__ import annotations

import datetime as dt

from pynamodb.connection.base import Connection

from chalicelib.core import clock, config
from chalicelib.scooters.recharge import follower
from chalicelib.scooters.recharge.lifecycle import DONE, PERFORMER_FOUND, RENTABLE, WAITING
from chalicelib.scooters.recharge.models import JournalCursor

from .test_courier_fixtures import SCREENS

PERFORMER = ("park-1", "driver-1")
T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def _infos(recharge) -> int:
    return len([c for c in recharge.calls("cargo") if c["path"].endswith("/info")])


def _accepted(recharge, claimed):
    recharge.follow()  # new, ready_for_approval: accepted (performer_lookup)
    assert recharge.task(claimed.task_id).claim_status == "performer_lookup"


def test_a_lost_performer_found_is_healed_and_the_courier_gets_his_screens(recharge, claimed, client, driver_auth):
    clock.freeze(T0)
    _accepted(recharge, claimed)
    recharge.control("cargo/journal/drop", {"claim_id": claimed.claim_id, "count": 1})
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    assert recharge.follow().events == 0  # the journal never says so
    headers = driver_auth(*PERFORMER)
    locked_out = client.http.get(f"{SCREENS}/status?cargo_ref_id={claimed.claim_id}", headers=headers)
    assert locked_out.status_code == 403
    assert recharge.reconcile().asked == 0  # confirmed by an event just now: not stale yet
    clock.advance(seconds=600)
    report = recharge.reconcile()
    assert (report.asked, report.applied) == (1, 1)
    task = recharge.task(claimed.task_id)
    assert task.status == PERFORMER_FOUND and (task.performer_park_id, task.performer_driver_profile_id) == PERFORMER
    assert [b["contractor_id"] for b in recharge.live_bookings()] == ["park-1_driver-1"]
    screen = client.http.get(f"{SCREENS}/status?cargo_ref_id={claimed.claim_id}", headers=headers)
    assert screen.status_code == 200, screen.json_body


def test_a_quiet_claim_costs_one_look_per_stale_period(recharge, claimed):
    clock.freeze(T0)
    _accepted(recharge, claimed)
    before = _infos(recharge)
    looks = []
    for minute in range(5, 65, 5):  # an hour of runs, every 5 minutes
        clock.freeze(T0 + dt.timedelta(minutes=minute))
        looks.append(recharge.reconcile().asked)
    assert looks == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]  # 10-minute staleness: every other run
    assert _infos(recharge) - before == 6
    assert recharge.task(claimed.task_id).claim_status == "performer_lookup"  # nothing new: nothing moved


def test_a_claim_that_ended_unseen_is_closed(recharge, claimed):
    clock.freeze(T0)
    _accepted(recharge, claimed)
    recharge.control("cargo/journal/drop", {"claim_id": claimed.claim_id, "count": 1})
    recharge.advance(claimed.claim_id, "performer_not_found")
    clock.advance(seconds=601)
    recharge.reconcile()
    task = recharge.task(claimed.task_id)
    assert task.status == WAITING and task.attempt == 2 and recharge.live_bookings() == []
    clock.advance(seconds=601)
    assert recharge.reconcile().asked == 0  # closed: out of the index


def test_a_poison_event_skipped_by_the_follower_is_healed(recharge, claimed, monkeypatch):
    from chalicelib.scooters.recharge import lifecycle, reactions

    clock.freeze(T0)
    _accepted(recharge, claimed)
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)

    def broken(task, event, claim):
        raise ValueError("a bug in this build")

    monkeypatch.setitem(reactions.REACTIONS, lifecycle.TAKE_PERFORMER, broken)
    for _ in range(follower.POISON_RUNS):
        recharge.follow()
    assert JournalCursor.get(follower.CURSOR_NAME).blocked_runs is None  # skipped: the journal goes on
    monkeypatch.undo()  # the fix is deployed
    clock.advance(seconds=600)
    recharge.reconcile()
    assert recharge.task(claimed.task_id).status == PERFORMER_FOUND


def test_a_swap_and_return_seen_only_through_claims_info(recharge, claimed):
    clock.freeze(T0)
    _accepted(recharge, claimed)
    recharge.control("cargo/journal/drop", {"claim_id": claimed.claim_id, "count": 10})
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    recharge.advance(claimed.claim_id, "pickuped", current_point_id=claimed.points["return"])
    clock.advance(seconds=600)
    recharge.reconcile()
    task = recharge.task(claimed.task_id)
    assert task.status == RENTABLE and task.performer_park_id == PERFORMER[0]
    assert recharge.car_state("s1")["tags"] == []
    recharge.advance(claimed.claim_id, "delivered", current_point_id=claimed.points["return"])
    clock.advance(seconds=600)
    recharge.reconcile()
    assert recharge.task(claimed.task_id).status == DONE


def test_bounded_per_run_oldest_first(recharge):
    clock.freeze(T0)
    for n in range(3):
        recharge.car(f"s{n}", level=20)
    recharge.find()
    recharge.plan_due()
    recharge.follow()
    config.write("scooters_reconcile_settings", {"max_claims_per_run": 2})
    clock.advance(seconds=600)
    assert recharge.reconcile().asked == 2
    assert recharge.reconcile().asked == 1  # the one left; the two seen are not stale any more


def test_cargo_down_stops_the_run(recharge, claimed):
    clock.freeze(clock.now() + dt.timedelta(hours=1))
    recharge.fault("cargo", count=None)
    report = recharge.reconcile()
    assert report.asked >= 1 and report.failed == 1 and report.applied == 0
    recharge.control("faults", {"upstream": "cargo", "mode": "ok"})
    assert recharge.reconcile().asked == 1  # not marked seen: asked again at the next run


def test_found_without_a_scan(recharge, claimed, monkeypatch):
    clock.freeze(clock.now() + dt.timedelta(hours=1))
    operations = []
    original = Connection._make_api_call

    def counting(connection, operation, kwargs):
        operations.append((operation, kwargs.get("IndexName")))
        return original(connection, operation, kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counting)
    recharge.reconcile()
    reads = [op for op in operations if op[0] in ("Scan", "Query", "GetItem")]
    assert ("Scan", None) not in reads and ("Query", "live_claim-index") in reads


def test_the_schedule_runs_under_its_lease(recharge, claimed, client):
    from chalicelib.core import lease

    clock.freeze(clock.now() + dt.timedelta(hours=1))
    lease.acquire("scooters_reconcile_claims", 60)
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=[])
    before = _infos(recharge)
    client.lambda_.invoke("scooters_reconcile_claims", event)
    assert _infos(recharge) == before  # another runner holds it
    assert recharge.claims()[0]["status"] == "ready_for_approval"
    lease.Lease(name="scooters_reconcile_claims").delete()
    client.lambda_.invoke("scooters_reconcile_claims", event)
    assert _infos(recharge) > before
    assert recharge.claims()[0]["status"] == "performer_lookup"  # its approval never followed: accepted now
