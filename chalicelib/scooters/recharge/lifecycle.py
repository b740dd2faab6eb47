"""The recharge task's lifecycle: its states, the events that move it, the allowed moves, the terminal states.

THE one place that knows them. Every writer of a task's state (planner, follower and reconciler through
reactions.py, the finder's sweep) asks `decide(state, event)` and writes through `move()` or `touch()`, each
conditional on the state it read; the courier screens ask `claim_live()` and `scooter_open()` (they never write
the task). So a late or repeated event, or a racing writer, never moves a task backwards: an event the table has
no move for in the task's state is ignored, and a write whose state changed since it was read fails (the writer
reads again and decides again).

States
    new              found by the poll; its first planning message is on the way
    booking          a cabinet chosen, its booking asked for
    booked           a charged battery booked (book_id)
    claimed          the cargo claim created (claim_id); no performer yet
    performer_found  a courier has the claim (performer_*)
    rentable         BACK IN RENT: the battery swapped, the scooter's tags removed; the claim goes on to C
    done             back in rent and the claim's side closed (delivered, or cancelled / failed after the swap)
    waiting          the attempt paused (no cabinet, an upstream down) or ended (claim dropped, create failed);
                     planned again at not_before
    given_up         planning stopped for good: the scooter is unknown, charged otherwise, or reported missing or
                     destroyed (nobody is sent to it)

Terminal: rentable, done (back in rent) and given_up: from them no event reschedules the task or moves it to an
earlier state; rentable only closes its claim's side (-> done). done and given_up are final: nothing moves out.

Events
    planner     choose_cabinet, booked, claim_stored, wait (same attempt), end_attempt (the booking released, the
                next attempt), give_up
    claim       a cargo status (journal event or claims/info) classified by `classify()` with the point it names:
                approval, performer, progress, left_scooter, finished, dropped; `dropped_after_swap` is a drop the
                reactions found to come after the swap (the scooter holds a new, charged battery)
"""
from __future__ import annotations

import dataclasses

from chalicelib.core import clock
from chalicelib.core.dynamo import update_if
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import epoch

from .models import LIVE, RETURN, RechargeTask

log = get_logger(__name__)

# --- states -----------------------------------------------------------------------------------------------
NEW, BOOKING, BOOKED, CLAIMED, PERFORMER_FOUND = "new", "booking", "booked", "claimed", "performer_found"
RENTABLE, DONE, WAITING, GIVEN_UP = "rentable", "done", "waiting", "given_up"
STATES = (NEW, BOOKING, BOOKED, CLAIMED, PERFORMER_FOUND, RENTABLE, DONE, WAITING, GIVEN_UP)

PLANNING = frozenset({NEW, BOOKING, BOOKED, WAITING})  # before a claim: the planner's (DueIndex watches them)
CLAIM_OPEN = frozenset({CLAIMED, PERFORMER_FOUND, RENTABLE})  # the claim's side is open (LiveClaimIndex)
BACK_IN_RENT = frozenset({RENTABLE, DONE})
TERMINAL = frozenset({RENTABLE, DONE, GIVEN_UP})
FINAL = frozenset({DONE, GIVEN_UP})

# --- events -----------------------------------------------------------------------------------------------
CHOOSE_CABINET, BOOK, CLAIM, WAIT, END_ATTEMPT, GIVE_UP = (
    "choose_cabinet", "booked", "claim_stored", "wait", "end_attempt", "give_up")
APPROVAL, PERFORMER, PROGRESS, LEFT_SCOOTER, FINISHED = "approval", "performer", "progress", "left_scooter", "finished"
DROPPED, DROPPED_AFTER_SWAP = "dropped", "dropped_after_swap"
PLANNER_EVENTS = (CHOOSE_CABINET, BOOK, CLAIM, WAIT, END_ATTEMPT, GIVE_UP)
CLAIM_EVENTS = (APPROVAL, PERFORMER, PROGRESS, LEFT_SCOOTER, FINISHED, DROPPED, DROPPED_AFTER_SWAP)
EVENTS = PLANNER_EVENTS + CLAIM_EVENTS

# --- what a move does (reactions.py runs the claim ones) -------------------------------------------------
MOVE = "move"                    # a planner step: the write is all
ACCEPT = "accept"                # accept the claim with its version
TAKE_PERFORMER = "performer"     # store the performer, the contractor on the booking (+ servicing before the swap)
NOTE = "note"                    # only noted: claim status, current point, revision
RELEASE_SCOOTER = "back_in_rent"  # the doc's order: the low tag, servicing/finish, recharge_processing
FINISH = "finish"                # back in rent if not yet, then the contractor unset: the flow is done
RESCHEDULE = "reschedule"        # the booking released, the claim closed, the next attempt after a delay
CLOSE_AFTER_SWAP = "close_after_swap"  # back in rent if not yet; contractor unset, booking released; no new claim


@dataclasses.dataclass(frozen=True)
class Rule:
    to: str
    action: str


def _rules(**moves: tuple[str, str]) -> dict[str, Rule]:
    return {event: Rule(to, action) for event, (to, action) in moves.items()}


_PLANNING_ANYWHERE = dict(wait=(WAITING, MOVE), give_up=(GIVEN_UP, MOVE))
RULES: dict[str, dict[str, Rule]] = {
    NEW: _rules(choose_cabinet=(BOOKING, MOVE), **_PLANNING_ANYWHERE),
    BOOKING: _rules(choose_cabinet=(BOOKING, MOVE), booked=(BOOKED, MOVE), **_PLANNING_ANYWHERE),
    # A booked attempt only ends (its create failed: the booking is released, doc step 6) or gets its claim.
    BOOKED: _rules(claim_stored=(CLAIMED, MOVE), end_attempt=(WAITING, MOVE), give_up=(GIVEN_UP, MOVE)),
    WAITING: _rules(choose_cabinet=(BOOKING, MOVE), **_PLANNING_ANYWHERE),
    CLAIMED: _rules(
        approval=(CLAIMED, ACCEPT), performer=(PERFORMER_FOUND, TAKE_PERFORMER), progress=(CLAIMED, NOTE),
        left_scooter=(RENTABLE, RELEASE_SCOOTER), finished=(DONE, FINISH), dropped=(WAITING, RESCHEDULE),
        dropped_after_swap=(DONE, CLOSE_AFTER_SWAP)),
    PERFORMER_FOUND: _rules(
        approval=(PERFORMER_FOUND, NOTE), performer=(PERFORMER_FOUND, TAKE_PERFORMER),
        progress=(PERFORMER_FOUND, NOTE), left_scooter=(RENTABLE, RELEASE_SCOOTER), finished=(DONE, FINISH),
        dropped=(WAITING, RESCHEDULE), dropped_after_swap=(DONE, CLOSE_AFTER_SWAP)),
    # Back in rent: the claim goes on (the return at C); a new performer is still taken (the screens at C are
    # his), everything else is noted; its end closes the claim's side and never plans a second claim.
    RENTABLE: _rules(
        approval=(RENTABLE, NOTE), performer=(RENTABLE, TAKE_PERFORMER), progress=(RENTABLE, NOTE),
        left_scooter=(RENTABLE, NOTE), finished=(DONE, FINISH), dropped=(DONE, CLOSE_AFTER_SWAP),
        dropped_after_swap=(DONE, CLOSE_AFTER_SWAP)),
    DONE: {},
    GIVEN_UP: {},
}
# A claim dropped in these states may come after the swap (the courier had the battery at the scooter): the
# reactions ask the scooter before rescheduling (dropped -> dropped_after_swap when it holds a new, full battery).
SWAP_POSSIBLE = frozenset({PERFORMER_FOUND})


def decide(state: str, event: str) -> Rule | None:
    """The move `event` makes from `state`, or None: the event does not apply there (late, repeated, after the
    end) and changes nothing."""
    return RULES.get(state, {}).get(event)


def is_terminal(state: str) -> bool:
    return state in TERMINAL


def is_planning(state: str) -> bool:
    return state in PLANNING


# --- claim statuses -> claim events (CARGO-API-NOTES.md: statuses) -----------------------------------------
BEFORE_PERFORMER = frozenset({"new", "estimating", "ready_for_approval", "accepted", "performer_lookup",
                              "performer_draft"})
DROP_REASONS = {"failed": "claim_failed", "estimating_failed": "config_error",
                "performer_not_found": "performer_not_found", "cancelled": "claim_failed",
                "cancelled_with_payment": "claim_failed", "cancelled_by_taxi": "claim_failed",
                "cancelled_with_items_on_hands": "claim_failed"}
FINAL_STATUSES = frozenset({"delivered_finish", "returned", "returned_finish"})
# Cargo may report the walk back to C (a point of type "return") as returning instead of a second pickuped.
RETURN_WALK = frozenset({"returning", "return_arrived", "ready_for_return_confirmation"})
AT_POINT = frozenset({"pickup_arrived", "ready_for_pickup_confirmation", "delivery_arrived",
                      "ready_for_delivery_confirmation", "return_arrived", "ready_for_return_confirmation"})


@dataclasses.dataclass(frozen=True)
class ClaimEvent:
    event: str
    # The status says a courier has the claim: a task without its performer takes it first (a skipped
    # performer_found, or a claim seen late through claims/info).
    with_performer: bool


def classify(status: str, point_id: str | None, points: dict[str, str]) -> ClaimEvent:
    """The claim event a cargo status makes, read with the point it names (C = the route point of type return)."""
    at_return = point_id is not None and str(point_id) == points.get(RETURN)
    if status == "ready_for_approval":
        return ClaimEvent(APPROVAL, False)
    if status == "performer_found":
        return ClaimEvent(PERFORMER, False)
    if status in DROP_REASONS:
        return ClaimEvent(DROPPED, False)
    # "delivered" names the point it finished: at B the claim goes on to C; at C (or unnamed) it is the end.
    if status in FINAL_STATUSES or (status == "delivered" and (point_id is None or at_return)):
        return ClaimEvent(FINISHED, False)
    # Doc: "pickuped (the second point)": the courier left the swapped scooter; so does any status at C.
    if status in RETURN_WALK or (at_return and status not in BEFORE_PERFORMER):
        return ClaimEvent(LEFT_SCOOTER, True)
    return ClaimEvent(PROGRESS, status not in BEFORE_PERFORMER)


# --- the courier side's questions (read only) -------------------------------------------------------------

def claim_live(task: RechargeTask, claim_id: str) -> bool:
    """The claim is the task's current one and its side is open (not delivered, cancelled or failed)."""
    return task.claim_id == claim_id and task.status in CLAIM_OPEN


def scooter_open(task: RechargeTask) -> bool:
    """The scooter's side of the job is open: not back in rent yet."""
    return task.status in (CLAIMED, PERFORMER_FOUND)


def is_swapped(old_battery_id: str | None, battery_id: str, level: float, full_percent: int) -> bool:
    """"Battery swapped": a different battery (by id) charged at or above the full-charge config."""
    return (old_battery_id is None or battery_id != old_battery_id) and level >= full_percent


# --- writes -----------------------------------------------------------------------------------------------

def _membership(before: str, after: str, now) -> list:
    """The sparse indexes follow the state: DueIndex while planning (the planner sets its due_at), LiveClaimIndex
    while the claim's side is open."""
    actions = []
    if before in PLANNING and after not in PLANNING:
        actions += [RechargeTask.sweep.remove(), RechargeTask.due_at.remove()]
    if before not in CLAIM_OPEN and after in CLAIM_OPEN:
        actions += [RechargeTask.live_claim.set(LIVE), RechargeTask.claim_seen_at.set(epoch(now))]
    if before in CLAIM_OPEN and after not in CLAIM_OPEN:
        actions.append(RechargeTask.live_claim.remove())
    return actions


def _write(task: RechargeTask, actions: list, condition) -> bool:
    expected = RechargeTask.status == task.status
    if condition is not None:
        expected &= condition
    return update_if(task, actions, expected)


def move(task: RechargeTask, event: str, actions: list = (), condition=None) -> bool:
    """Move the task by `event`, writing `actions` with the move, conditional on the state it was read in (and
    `condition`). False when the table has no such move or another writer moved the task first (the caller
    reads again); on success `task` holds what was written."""
    rule = decide(task.status, event)
    if rule is None:
        log.event("scooters.event_not_applicable", task_id=task.task_id, status=task.status, by=event)
        return False
    before, now = task.status, clock.now()
    writes = [*actions, RechargeTask.updated_at.set(now), *_membership(before, rule.to, now)]
    if rule.to != before:
        writes.append(RechargeTask.status.set(rule.to))
    if not _write(task, writes, condition):
        log.event("scooters.task_moved_meanwhile", task_id=task.task_id, status=before, by=event)
        return False
    if rule.to != before:
        log.event("scooters.task_moved", task_id=task.task_id, status=rule.to, previous=before, by=event)
    return True


def touch(task: RechargeTask, actions: list, condition=None) -> bool:
    """A write that changes no state (bookkeeping), conditional on the state it was read in."""
    return _write(task, [*actions, RechargeTask.updated_at.set(clock.now())], condition)
