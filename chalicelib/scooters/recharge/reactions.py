"""Apply a claim's state to its recharge task (doc part 3): the ONE code path for journal events (follower.py),
for what claims/info says (reconciler.py) and for a claim adopted by claims.py.

A claim state (claim id, cargo status, revision, current point) is classified by the lifecycle into a claim
event; the lifecycle says what that event does in the task's state; the reaction runs (its upstream calls are all
idempotent: tags by name, bookings by id, accept answering inappropriate_status once accepted); the move is
written conditional on the state read, the claim, and a newer revision. A writer that lost a race reads the task
again and decides again; a state not newer than the one applied (revision) is a duplicate.

Reactions (doc part 3):
    approval      accept with the claim's version (claims/info)
    performer     store the performer, set_contractor on the booking, car/details + servicing/start (before the
                  swap). A status that implies a performer (pickup_arrived after a skipped performer_found, or a
                  claim seen late through claims/info) takes the performer first.
    left_scooter  (pickuped at C, any status at C, returning): the task's own low-battery tag (and any other
                  battery_low* the scooter still carries), servicing/finish, recharge_processing: back in rent
    finished      (delivered at C, a final status): back in rent if not yet, unset_contractor: done
    dropped       failed (CRIT), estimating_failed (CRIT: the doc says only "CRIT", but left alone the battery would
                  stay booked and the scooter out of rent for good), performer_not_found, cancelled* (not in the
                  doc: an error line). Before the swap: the booking released, the claim closed, planned again.
                  After it (back in rent, or the scooter already holds a new full battery): only the claim's side
                  closes: contractor unset, booking released, and a metric + a log line for the discharged battery
                  still with the courier; never a second claim for a charged scooter.
    progress      noted (claim status, current point) for the courier screens
"""
from __future__ import annotations

from chalicelib.core import clock, metrics
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import epoch

from . import attempts, lifecycle, upstreams
from .lifecycle import BACK_IN_RENT, DROPPED, DROPPED_AFTER_SWAP, PERFORMER
from .models import RechargeTask, get_task, points_of
from .schemas import EXCLUDED_TAGS, FULL_CHARGE, Claim, JournalEvent

log = get_logger(__name__)

MAX_TRIES = 3
_AGAIN = object()


class RaceLost(Exception):
    """Other writers kept moving the task while this state was applied: apply it again later (transient)."""


def state_of(claim: Claim) -> JournalEvent:
    """A claims/info answer as the journal event it stands for."""
    return JournalEvent(claim_id=claim.id, new_status=claim.status, revision=claim.revision or 0,
                        current_point_id=claim.current_point_id, change_type="status_changed")


def apply(task: RechargeTask, event: JournalEvent, claim: Claim | None = None) -> str:
    """Apply one claim state to `task` (whose claim it names); returns what happened: the status applied,
    "duplicate", "ignored" (no move in this state: late, repeated, after the end) or "not_current"."""
    for _ in range(MAX_TRIES):
        outcome = _apply_once(task, event, claim)
        if outcome is not _AGAIN:
            return outcome
        task = get_task(task.task_id)
        if task is None:
            return "not_current"
    raise RaceLost(f"task {task.task_id} kept moving")


def _has_performer(task: RechargeTask, claim: Claim | None) -> bool:
    stored = (task.performer_park_id, task.performer_driver_profile_id)
    if not all(stored):
        return False
    info = claim.performer_info if claim is not None else None
    if info is None or not info.park_id or not info.driver_profile_id:
        return True
    return stored == (info.park_id, info.driver_profile_id)  # claims/info names another one: reassigned


def _apply_once(task: RechargeTask, event: JournalEvent, claim: Claim | None):
    if task.claim_id != event.claim_id:
        return "not_current"
    if task.claim_revision is not None and task.claim_revision >= event.revision:
        return "duplicate"
    classified = lifecycle.classify(event.new_status, event.current_point_id, points_of(task))
    if classified.with_performer and not _has_performer(task, claim) and lifecycle.decide(task.status, PERFORMER):
        if not _step(task, event, PERFORMER, claim, record=False):
            return _AGAIN
    kind = classified.event
    if kind == DROPPED and task.status in lifecycle.SWAP_POSSIBLE and _swapped(task):
        kind = DROPPED_AFTER_SWAP
    if lifecycle.decide(task.status, kind) is None:
        log.event("scooters.claim_state_ignored", task_id=task.task_id, claim_id=event.claim_id,
                  status=event.new_status, task_status=task.status)
        return "ignored"
    return event.new_status if _step(task, event, kind, claim, record=True) else _AGAIN


def _noted(event: JournalEvent) -> list:
    actions = [RechargeTask.claim_revision.set(event.revision), RechargeTask.claim_status.set(event.new_status),
               RechargeTask.claim_seen_at.set(epoch(clock.now()))]
    if event.current_point_id is not None:
        actions.append(RechargeTask.current_point_id.set(str(event.current_point_id)))
    return actions


def _step(task: RechargeTask, event: JournalEvent, kind: str, claim: Claim | None, *, record: bool) -> bool:
    rule = lifecycle.decide(task.status, kind)
    noted = _noted(event) if record else []
    on_claim = RechargeTask.claim_id == event.claim_id
    if record:
        on_claim &= RechargeTask.claim_revision.does_not_exist() | (RechargeTask.claim_revision < event.revision)
    if rule.action == lifecycle.RESCHEDULE:
        return _reschedule(task, event, noted, on_claim)
    actions = REACTIONS[rule.action](task, event, claim)
    return lifecycle.move(task, kind, [*actions, *noted], on_claim)


# --- the reactions ----------------------------------------------------------------------------------------

def _accept(task: RechargeTask, event: JournalEvent, claim: Claim | None) -> list:
    for _ in range(2):  # a version that moved between info and accept: read it again once
        claim = upstreams.claim_info(event.claim_id)
        if claim.status != "ready_for_approval":
            return []  # accepted already (a replay), or moved on
        try:
            upstreams.accept_claim(event.claim_id, claim.version)
            log.event("scooters.claim_accepted", task_id=task.task_id, claim_id=event.claim_id)
            return []
        except UpstreamRejected as error:
            if error.upstream_status != 409:
                raise
    raise UpstreamUnavailable("cargo kept answering 409 to accept", code="claim_accept_conflict")


def _performer(task: RechargeTask) -> dict:
    return {"park_id": task.performer_park_id, "driver_profile_id": task.performer_driver_profile_id}


def _take_performer(task: RechargeTask, event: JournalEvent, claim: Claim | None) -> list:
    if claim is None or claim.id != event.claim_id or claim.performer_info is None:
        claim = upstreams.claim_info(event.claim_id)
    performer = claim.performer_info
    if performer is None or not performer.park_id or not performer.driver_profile_id:
        raise UpstreamUnavailable("cargo has no performer on the claim yet", code="no_performer")
    task.performer_park_id, task.performer_driver_profile_id = performer.park_id, performer.driver_profile_id
    if task.book_id:
        upstreams.set_contractor(task.book_id, f"{performer.park_id}_{performer.driver_profile_id}")
    if task.status not in BACK_IN_RENT:
        upstreams.set_tag_details(task.car_id, task.tag_id, {"performer": _performer(task), "claim_id": event.claim_id})
        upstreams.servicing_start(task.car_id, task.tag_id, _performer(task))
    log.event("scooters.performer_found", task_id=task.task_id, claim_id=event.claim_id)
    return [RechargeTask.performer_park_id.set(performer.park_id),
            RechargeTask.performer_driver_profile_id.set(performer.driver_profile_id)]


def _note(task: RechargeTask, event: JournalEvent, claim: Claim | None) -> list:
    return []


def back_in_rent(task: RechargeTask) -> None:
    """The doc's order: the low-battery tag off, servicing/finish, then recharge_processing off (rentable).

    The tag removed is the one the task was created for (a threshold tag like battery_low_40 is not
    `battery_low`), then any other battery_low* the scooter still carries: left on, it would list the scooter
    again at the next poll. A scooter the courier reported missing or destroyed goes the same way (the doc: "as
    if the battery were swapped"); the report's own tag keeps it out of rent, so it is not counted back in rent."""
    info = upstreams.car_info(task.car_id)
    names = [tag.tag for tag in info.tags] if info is not None else []
    own = task.low_tag or upstreams.BATTERY_LOW
    for tag in [own, *sorted({n for n in names if n.startswith(upstreams.BATTERY_LOW)} - {own})]:
        upstreams.remove_tag(task.car_id, tag)
    if not upstreams.servicing_finish(task.car_id, task.tag_id):
        log.warning_event("scooters.servicing_never_started", task_id=task.task_id)
    upstreams.remove_tag(task.car_id, upstreams.RECHARGE_PROCESSING)
    reported = sorted(set(names) & set(EXCLUDED_TAGS.get()))
    if reported:
        log.event("scooters.scooter_released_reported", task_id=task.task_id, car_id=task.car_id, report=reported[0],
                  metrics=metrics.count("scooters", "ScootersReported"))
        return
    log.event("scooters.scooter_rentable", task_id=task.task_id, car_id=task.car_id,
              metrics=metrics.count("scooters", "ScootersBackInRent"))


def _release_scooter(task: RechargeTask, event: JournalEvent, claim: Claim | None) -> list:
    back_in_rent(task)
    return []


def _finish(task: RechargeTask, event: JournalEvent, claim: Claim | None) -> list:
    if task.status not in BACK_IN_RENT:
        back_in_rent(task)  # the second pickuped never came (or came unreadable): do it now
    if task.book_id:
        upstreams.unset_contractor(task.book_id)
    log.event("scooters.recharge_done", task_id=task.task_id, claim_id=event.claim_id,
              metrics=metrics.count("scooters", "RechargesDone"))
    return [RechargeTask.claim_outcome.set("delivered")]


def _close_after_swap(task: RechargeTask, event: JournalEvent, claim: Claim | None) -> list:
    """Cancelled or failed after the swap: the scooter is charged; only the claim's side closes."""
    if task.status not in BACK_IN_RENT:
        back_in_rent(task)
    if task.book_id:
        upstreams.unset_contractor(task.book_id)
        upstreams.unbook(task.book_id)  # frees what was not taken; raises when the cabinets fail: applied again
    log.error_event("scooters.discharged_battery_with_courier", task_id=task.task_id, claim_id=event.claim_id,
                    status=event.new_status, battery_id=task.battery_id, cabinet_id=task.cabinet_id,
                    metrics=metrics.count("scooters", "DischargedBatteriesWithCourier"))
    return [RechargeTask.claim_outcome.set(event.new_status)]


def _reschedule(task: RechargeTask, event: JournalEvent, noted: list, on_claim) -> bool:
    status = event.new_status
    reason = lifecycle.DROP_REASONS[status]
    if status in ("failed", "estimating_failed"):
        attempts.crit(f"scooters.claim_{status}", task_id=task.task_id, claim_id=event.claim_id)
    elif status == "performer_not_found":
        log.event("scooters.performer_not_found", task_id=task.task_id, claim_id=event.claim_id)
    else:
        log.error_event("scooters.claim_cancelled", task_id=task.task_id, claim_id=event.claim_id, status=status)
    return attempts.reschedule(task, reason, release=True, event=DROPPED, condition=on_claim,
                               extra=[*noted, RechargeTask.claim_outcome.set(status)])


def _swapped(task: RechargeTask) -> bool:
    """Does the scooter already hold a new, full battery (the courier swapped it before the claim dropped)?"""
    info = upstreams.car_info(task.car_id)
    if info is None or info.battery is None:
        return False
    return lifecycle.is_swapped(task.battery_id, info.battery.id, info.battery.level, FULL_CHARGE.get())


REACTIONS = {
    lifecycle.ACCEPT: _accept, lifecycle.TAKE_PERFORMER: _take_performer, lifecycle.NOTE: _note,
    lifecycle.RELEASE_SCOOTER: _release_scooter, lifecycle.FINISH: _finish,
    lifecycle.CLOSE_AFTER_SWAP: _close_after_swap,
}
