"""No orphan claims: a create whose answer was lost is replayed by the next attempt with its request_id; the claim
found is adopted (live, for the cabinet booked now) or cancelled (for a booking given up), so one scooter never
has two live claims. And an event of our claim whose id is not stored yet is retried, not dropped."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core import clock
from chalicelib.scooters.recharge import claims, follower, planner
from chalicelib.scooters.recharge.lifecycle import CLAIMED, WAITING
from chalicelib.scooters.recharge.models import JournalCursor

LIVE_STATUSES = {"new", "estimating", "ready_for_approval", "accepted", "performer_lookup", "performer_draft",
                 "performer_found"}


def _live(recharge) -> list[dict]:
    return [c for c in recharge.claims() if c["status"] in LIVE_STATUSES]


@pytest.fixture
def lost_answer(recharge):
    """A scooter whose first claim was made by cargo but never answered (every retry timed out)."""
    recharge.car("s1", level=20)
    recharge.find()
    task_id = recharge.sent[0].message.task_id
    recharge.control("cargo/create/lose_answers", {"count": 3, "delay": 3.0})
    assert recharge.plan_due() == ["cargo_unavailable"]
    task = recharge.task(task_id)
    assert task.status == WAITING and task.attempt == 2 and task.previous_attempt_key
    assert recharge.live_bookings() == []  # doc step 6: the battery is released
    [orphan] = recharge.claims()
    return task_id, orphan


def _next_attempt(recharge):
    [later] = [s for s in recharge.sent if s.delay_seconds > 0]
    recharge.sent.clear()
    clock.freeze(clock.now() + dt.timedelta(seconds=later.delay_seconds))
    return planner.plan(later.message)


def test_the_claim_made_is_adopted_by_the_next_attempt(recharge, lost_answer):
    task_id, orphan = lost_answer
    report = recharge.follow()  # its events: a claim of ours for an attempt that ended
    assert report.orphans == 2 and report.handled == 0
    assert _next_attempt(recharge) == CLAIMED
    task = recharge.task(task_id)
    assert task.claim_id == orphan["id"] and task.previous_attempt_key is None
    assert [c["id"] for c in _live(recharge)] == [orphan["id"]] and len(recharge.claims()) == 1
    # Its approval came while nobody knew it: applied at adoption (cargo fails a claim not accepted in 10 min).
    assert recharge.claims()[0]["status"] == "performer_lookup"
    assert [b["book_id"] for b in recharge.live_bookings()] == [task.book_id]


def test_a_claim_for_a_released_cabinet_is_cancelled(recharge, lost_answer):
    task_id, orphan = lost_answer
    recharge.cabinet("grocery:near", "cab-near", 0)  # its cabinet is empty now: the next attempt books the far one
    assert _next_attempt(recharge) == CLAIMED
    task = recharge.task(task_id)
    assert task.cabinet_id == "cab-far" and task.claim_id != orphan["id"]
    statuses = {c["id"]: c["status"] for c in recharge.claims()}
    assert statuses[orphan["id"]] == "cancelled"
    assert [c["id"] for c in _live(recharge)] == [task.claim_id]


def test_answers_lost_again_keep_the_token_until_one_comes(recharge, lost_answer):
    task_id, orphan = lost_answer
    recharge.control("cargo/create/lose_answers", {"count": 3, "delay": 3.0})
    assert _next_attempt(recharge) == "cargo_unavailable"
    first_key = recharge.task(task_id).previous_attempt_key
    assert _next_attempt(recharge) == CLAIMED
    assert len(recharge.claims()) == 1 and recharge.task(task_id).claim_id == orphan["id"]
    assert first_key


def test_a_finished_orphan_is_forgotten(recharge, lost_answer):
    task_id, orphan = lost_answer
    recharge.advance(orphan["id"], "failed")  # never accepted: cargo failed it
    assert _next_attempt(recharge) == CLAIMED
    task = recharge.task(task_id)
    assert task.claim_id != orphan["id"] and [c["id"] for c in _live(recharge)] == [task.claim_id]


def test_an_event_of_a_claim_not_stored_yet_is_retried_not_dropped(recharge, monkeypatch):
    recharge.car("s1", level=20)
    recharge.find()
    task_id = recharge.sent[0].message.task_id
    message = recharge.sent[0].message
    original = claims.upstreams.create_claim

    def create_then_stall(request_id, body):
        original(request_id, body)
        raise RuntimeError("the planner is still on its way to storing the claim")

    monkeypatch.setattr(claims.upstreams, "create_claim", create_then_stall)
    with pytest.raises(RuntimeError):
        recharge.plan_due()
    monkeypatch.undo()
    before = JournalCursor.count() and JournalCursor.get(follower.CURSOR_NAME).cursor
    report = recharge.follow()
    assert report.transient == 1 and report.handled == 0 and report.poison_skipped == 0
    assert (JournalCursor.count() and JournalCursor.get(follower.CURSOR_NAME).cursor) == before
    assert planner.plan(message) == CLAIMED  # the redelivered message stores it
    report = recharge.follow()
    assert report.handled == 4  # new, ready_for_approval (accepted), then accepted, performer_lookup
    assert recharge.claims()[0]["status"] == "performer_lookup"
    assert recharge.task(task_id).claim_status == "performer_lookup"
