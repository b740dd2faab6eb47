"""Late, repeated and out-of-order claim states applied to a task in each state it can be in, through the one code
path the follower and the reconciler share (reactions.apply), against the real simulators: the task ends where the
table says, and a task whose scooter is back in rent (or whose claim is closed) is never planned again."""
from __future__ import annotations

import datetime as dt

import pytest
import requests

from chalicelib.core import clock
from chalicelib.scooters.recharge import reactions
from chalicelib.scooters.recharge.lifecycle import LIVE
from chalicelib.scooters.recharge.models import RechargeTask, get_task
from chalicelib.scooters.recharge.schemas import JournalEvent

CLAIMS = "/cargo/b2b/cargo/integration/v2/claims"
PERFORMER = ("park-1", "driver-1")
STATUSES = [("ready_for_approval", None), ("performer_found", None), ("pickup_arrived", 1), ("pickuped", 3),
            ("delivered", 3), ("cancelled", 2), ("failed", None)]
TABLE = {
    "claimed":         ["claimed", "performer_found", "performer_found", "rentable", "done", "waiting", "waiting"],
    "performer_found": ["performer_found"] * 3 + ["rentable", "done", "waiting", "waiting"],
    "rentable":        ["rentable"] * 4 + ["done"] * 3,
    "done":            ["done"] * 7,
    "waiting":         ["waiting"] * 7,
    "given_up":        ["given_up"] * 7,
}
CASES = [(state, status, point, TABLE[state][n]) for state in TABLE for n, (status, point) in enumerate(STATUSES)]


def _claim(base: str, task_id: str) -> str:
    body = {"items": [{"title": "battery", "quantity": 1, "pickup_point": 1, "extra_id": task_id}],
            "route_points": [{"point_id": n, "type": kind, "address": {"coordinates": [37.6, 55.7]}}
                             for n, kind in ((1, "source"), (2, "destination"), (3, "return"))]}
    answer = requests.post(f"{base}{CLAIMS}/create?request_id=r-{task_id}", json=body, timeout=5)
    return answer.json()["id"]


def _task(recharge, state: str) -> RechargeTask:
    recharge.car("s1", level=20)
    booking = requests.post(f"{recharge.base}/scooter_accumulator/scooter-accumulator/v1/cabinet/accumulator/book",
                            json={"cabinet_id": "cab-near", "accumulators_count": 1},
                            headers={"X-Idempotency-Token": "t1"}, timeout=5).json()
    now = clock.now()
    task_id = "s1/tag-1"
    claim_id = _claim(recharge.base, task_id)
    with_performer = state in ("performer_found", "rentable", "done")
    task = RechargeTask(
        task_id, car_id="s1", tag_id="tag-1", low_tag="battery_low", status=state, attempt=1, attempt_key="k1",
        position=[37.62, 55.753], battery_id=recharge.car_state("s1")["battery"]["id"], store_id="grocery:near",
        cabinet_id="cab-near", cabinet_position=[37.617, 55.755], book_id=booking["book_id"],
        claim_id=claim_id, claim_version=1, point_ids={"source": "1", "destination": "2", "return": "3"},
        performer_park_id=PERFORMER[0] if with_performer else None,
        performer_driver_profile_id=PERFORMER[1] if with_performer else None,
        live_claim=LIVE if state in ("claimed", "performer_found", "rentable") else None, claim_seen_at=0,
        created_at=now, updated_at=now, expires_at=now + dt.timedelta(days=1))
    task.save()
    return task


@pytest.mark.parametrize("state,status,point,expected", CASES, ids=[f"{s}-{st}@{p}" for s, st, p, _ in CASES])
def test_a_claim_state_applied_to_each_task_state(recharge, state, status, point, expected):
    task = _task(recharge, state)
    claim = recharge.advance(task.claim_id, status, current_point_id=point, performer=PERFORMER)
    event = JournalEvent(claim_id=task.claim_id, new_status=status, revision=claim["revision"],
                         current_point_id=point)
    reactions.apply(task, event)
    after = get_task(task.task_id)
    assert after.status == expected
    planned_again = [s for s in recharge.sent if s.message.task_id == task.task_id]
    assert bool(planned_again) == (expected == "waiting" and state != "waiting")
    if expected in ("rentable", "done") and state not in ("rentable", "done"):
        assert not {"battery_low", "recharge_processing"} & set(recharge.car_state("s1")["tags"])
    # The same state again (the journal repeats): nothing moves, nothing is called.
    calls = sum(len(recharge.calls(u)) for u in ("cargo", "scooter_backend", "scooter_accumulator"))
    assert reactions.apply(after, event) in ("duplicate", "ignored", "not_current")
    assert get_task(task.task_id).status == expected
    assert sum(len(recharge.calls(u)) for u in ("cargo", "scooter_backend", "scooter_accumulator")) == calls
