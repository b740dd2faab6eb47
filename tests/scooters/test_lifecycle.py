"""The recharge lifecycle as a table: every state x every event, driven through lifecycle.decide directly, against
the matrix below (what the issue asks of the flow, written out by hand), plus the invariants the matrix must keep:
terminal states never go back, final states never move, nothing reschedules a scooter that is back in rent."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core import clock
from chalicelib.scooters.recharge import lifecycle as lc
from chalicelib.scooters.recharge.models import LIVE, SWEEP, RechargeTask, get_task

# Rows: states; columns: events (in EVENTS order); a cell is the state the event moves the task to, "-" = ignored.
COLUMNS = ("choose_cabinet", "booked", "claim_stored", "wait", "end_attempt", "give_up",
           "approval", "performer", "progress", "left_scooter", "finished", "dropped", "dropped_after_swap")
MATRIX = {
    "new":             ("booking", "-", "-", "waiting", "-", "given_up", "-", "-", "-", "-", "-", "-", "-"),
    "booking":         ("booking", "booked", "-", "waiting", "-", "given_up", "-", "-", "-", "-", "-", "-", "-"),
    "booked":          ("-", "-", "claimed", "-", "waiting", "given_up", "-", "-", "-", "-", "-", "-", "-"),
    "waiting":         ("booking", "-", "-", "waiting", "-", "given_up", "-", "-", "-", "-", "-", "-", "-"),
    "claimed":         ("-", "-", "-", "-", "-", "-", "claimed", "performer_found", "claimed", "rentable", "done",
                        "waiting", "done"),
    "performer_found": ("-", "-", "-", "-", "-", "-", "performer_found", "performer_found", "performer_found",
                        "rentable", "done", "waiting", "done"),
    "rentable":        ("-", "-", "-", "-", "-", "-", "rentable", "rentable", "rentable", "rentable", "done", "done",
                        "done"),
    "done":            ("-",) * 13,
    "given_up":        ("-",) * 13,
}
# The work a claim event does (lifecycle's action names), where it is not only noted.
ACTIONS = {
    ("claimed", "approval"): lc.ACCEPT, ("claimed", "performer"): lc.TAKE_PERFORMER,
    ("performer_found", "performer"): lc.TAKE_PERFORMER, ("rentable", "performer"): lc.TAKE_PERFORMER,
    ("claimed", "left_scooter"): lc.RELEASE_SCOOTER, ("performer_found", "left_scooter"): lc.RELEASE_SCOOTER,
    ("claimed", "finished"): lc.FINISH, ("performer_found", "finished"): lc.FINISH, ("rentable", "finished"): lc.FINISH,
    ("claimed", "dropped"): lc.RESCHEDULE, ("performer_found", "dropped"): lc.RESCHEDULE,
    ("rentable", "dropped"): lc.CLOSE_AFTER_SWAP, ("claimed", "dropped_after_swap"): lc.CLOSE_AFTER_SWAP,
    ("performer_found", "dropped_after_swap"): lc.CLOSE_AFTER_SWAP,
    ("rentable", "dropped_after_swap"): lc.CLOSE_AFTER_SWAP,
}
CASES = [(state, event) for state in lc.STATES for event in lc.EVENTS]


def test_the_matrix_covers_every_state_and_event():
    assert COLUMNS == lc.EVENTS and set(MATRIX) == set(lc.STATES)


@pytest.mark.parametrize("state,event", CASES, ids=[f"{s}-{e}" for s, e in CASES])
def test_each_state_and_event(state, event):
    expected = MATRIX[state][COLUMNS.index(event)]
    rule = lc.decide(state, event)
    assert (rule.to if rule else "-") == expected
    if rule is not None and event in lc.CLAIM_EVENTS:
        assert rule.action == ACTIONS.get((state, event), lc.NOTE)
    if rule is not None and event in lc.PLANNER_EVENTS:
        assert rule.action == lc.MOVE


@pytest.mark.parametrize("state", lc.STATES)
def test_terminal_states_never_go_back_and_final_ones_never_move(state):
    for event in lc.EVENTS:
        rule = lc.decide(state, event)
        if rule is None:
            continue
        if state in lc.TERMINAL:
            assert rule.to in lc.TERMINAL, (state, event)  # never waiting, never planning again
            assert rule.action != lc.RESCHEDULE
        if state in lc.BACK_IN_RENT:
            assert rule.to in lc.BACK_IN_RENT and rule.action != lc.RELEASE_SCOOTER  # released once
    if state in lc.FINAL:
        assert lc.RULES[state] == {}


# --- cargo statuses -> claim events --------------------------------------------------------------------------
POINTS = {"source": "1", "destination": "2", "return": "3"}
STATUSES = [
    ("ready_for_approval", None, lc.APPROVAL, False), ("accepted", None, lc.PROGRESS, False),
    ("performer_lookup", None, lc.PROGRESS, False), ("performer_found", None, lc.PERFORMER, False),
    ("pickup_arrived", "1", lc.PROGRESS, True), ("pickuped", "2", lc.PROGRESS, True),
    ("delivery_arrived", "2", lc.PROGRESS, True), ("delivered", "2", lc.PROGRESS, True),
    ("pickuped", "3", lc.LEFT_SCOOTER, True), ("delivery_arrived", "3", lc.LEFT_SCOOTER, True),
    ("returning", "3", lc.LEFT_SCOOTER, True), ("return_arrived", None, lc.LEFT_SCOOTER, True),
    ("delivered", "3", lc.FINISHED, False), ("delivered", None, lc.FINISHED, False),
    ("delivered_finish", "3", lc.FINISHED, False), ("returned_finish", None, lc.FINISHED, False),
    ("failed", None, lc.DROPPED, False), ("estimating_failed", None, lc.DROPPED, False),
    ("performer_not_found", None, lc.DROPPED, False), ("cancelled", "2", lc.DROPPED, False),
    ("cancelled_by_taxi", "3", lc.DROPPED, False), ("cancelled_with_items_on_hands", None, lc.DROPPED, False),
]


@pytest.mark.parametrize("status,point,event,with_performer", STATUSES,
                         ids=[f"{s}@{p}" for s, p, _, _ in STATUSES])
def test_each_cargo_status_is_one_claim_event(status, point, event, with_performer):
    assert lc.classify(status, point, POINTS) == lc.ClaimEvent(event, with_performer)


def test_swapped_means_another_battery_charged_to_the_config():
    assert lc.is_swapped("old", "new", 96, 95) and lc.is_swapped("old", "new", 95, 95)
    assert not lc.is_swapped("old", "new", 94, 95) and not lc.is_swapped("old", "old", 100, 95)
    assert lc.is_swapped(None, "new", 100, 95)


# --- the writes --------------------------------------------------------------------------------------------

def _task(status: str, **fields) -> RechargeTask:
    now = clock.now()
    task = RechargeTask("car/tag", car_id="car", tag_id="tag", status=status, attempt=1, position=[37.6, 55.7],
                        created_at=now, updated_at=now, expires_at=now + dt.timedelta(days=1), **fields)
    task.save()
    return task


def test_a_write_holds_only_in_the_state_it_was_read(aws_mock):
    read_twice = _task(lc.CLAIMED, claim_id="c1"), get_task("car/tag")
    first, second = read_twice
    assert lc.move(first, lc.PERFORMER, [RechargeTask.performer_park_id.set("p")])
    # The other writer read `claimed` too: its late move (a repeated event) fails instead of going back.
    assert not lc.move(second, lc.PERFORMER, [RechargeTask.performer_park_id.set("q")])
    assert get_task("car/tag").performer_park_id == "p"
    assert not lc.move(get_task("car/tag"), lc.CHOOSE_CABINET)  # no such move: nothing written
    assert get_task("car/tag").status == lc.PERFORMER_FOUND


def test_the_sparse_indexes_follow_the_state(aws_mock):
    task = _task(lc.BOOKED, sweep=SWEEP, due_at=1, book_id="b1")
    assert lc.move(task, lc.CLAIM, [RechargeTask.claim_id.set("c1")])
    task = get_task("car/tag")
    assert task.sweep is None and task.due_at is None and task.live_claim == LIVE and task.claim_seen_at
    assert [t.task_id for t in RechargeTask.by_live_claim.query(LIVE)] == ["car/tag"]
    assert lc.move(task, lc.DROPPED, [RechargeTask.sweep.set(SWEEP), RechargeTask.due_at.set(5)])
    task = get_task("car/tag")
    assert task.status == lc.WAITING and task.live_claim is None and task.sweep == SWEEP
    assert list(RechargeTask.by_live_claim.query(LIVE)) == []
