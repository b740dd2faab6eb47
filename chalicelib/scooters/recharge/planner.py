"""Plan a recharge (doc part 2, steps 1-6): choose a cabinet, book a battery, create the cargo claim.

One task per message of `scooters_misc_recharge`. Replays are harmless: every step is keyed on the task's
planning `attempt` and moves the task through the lifecycle (a conditional write on the state read guards each
move; the booking token and the claim's request_id are made from the attempt's random key, so a replay of the
same attempt gets the same booking and the same claim). Pauses and ends of an attempt: attempts.py; the claim
itself, and how a lost create answer never leaves an orphan claim: claims.py.

A task planned again after a wait first asks the scooter whether it still needs us: a scooter unknown to the
backend, charged otherwise (its low-battery tag gone) or tagged with an excluded tag (reported missing or
destroyed) is given up: nobody is sent, our `recharge_processing` tag is removed. (Doc 003 has no such step; without
it a waiting task would book a battery and send a courier to a scooter that no longer needs one.)

The finder's schedule sweeps tasks whose planning is overdue (DueIndex), so a lost message or a failed send cannot
strand a task.
"""
from __future__ import annotations

import datetime as dt
import math

from chalicelib.core import clock, metrics
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import epoch

from . import attempts, claims, lifecycle, upstreams
from .attempts import crit, reschedule
from .lifecycle import BOOKED, WAITING
from .models import SWEEP, RechargeTask, get_task
from .schemas import ALGORITHM, DEPOTS, EXCLUDED_TAGS, NEAREST, Depot, NearestParams, PlanMessage, RechargeAlgorithm

log = get_logger(__name__)

QUEUE = attempts.QUEUE
EARTH_RADIUS_KM = 6371.0088


def great_circle_km(a: list[float], b: list[float]) -> float:
    """Haversine distance between two [lon, lat] points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def recharge_algorithm(task: RechargeTask) -> RechargeAlgorithm:
    """The doc's experiment `scooters_recharge_algorithm`, evaluated for this scooter."""
    return ALGORITHM.get(car_id=task.car_id)


def _in_attempt(task: RechargeTask):
    return RechargeTask.attempt == task.attempt


# --- planning -------------------------------------------------------------------------------------------

def plan(message: PlanMessage) -> str:
    """Handle one planning message; returns what happened (for logs and tests)."""
    task = get_task(message.task_id)
    if task is None:
        log.event("scooters.plan_no_task", task_id=message.task_id)
        return "no_task"
    if message.attempt != task.attempt:
        log.event("scooters.plan_stale_message", task_id=task.task_id, attempt=message.attempt, now=task.attempt)
        return "stale"
    if not lifecycle.is_planning(task.status):
        log.event("scooters.plan_replay", task_id=task.task_id, status=task.status)
        return "already_planned"
    now = clock.now()
    due = max(message.not_before or 0, epoch(task.not_before) if task.not_before else 0)
    if due > epoch(now):
        # Longer than SQS can delay: hop again with what is left.
        attempts.enqueue(task.task_id, task.attempt, dt.datetime.fromtimestamp(due, dt.timezone.utc))
        log.event("scooters.plan_not_yet", task_id=task.task_id, seconds_left=due - epoch(now))
        return "not_yet"
    if task.pending_unbook_ids:
        left = attempts.release_bookings(task)
        lifecycle.touch(task, [RechargeTask.pending_unbook_ids.set(left or None)], _in_attempt(task))
    if task.status == WAITING:
        gone = _no_longer_needed(task)
        if gone:
            return give_up(task, gone)
    if task.status != BOOKED or not task.book_id:
        outcome = _book(task)
        if outcome != BOOKED:
            return outcome
    return claims.create_claim(task)


def _no_longer_needed(task: RechargeTask) -> str | None:
    """Why the scooter needs no recharge any more, or None (also None when the backend cannot say now: the
    attempt goes on, and the next one asks again)."""
    try:
        info = upstreams.car_info(task.car_id)
    except (UpstreamUnavailable, UpstreamRejected) as error:
        log.warning_event("scooters.car_info_unavailable", task_id=task.task_id, error=describe(error))
        return None
    if info is None:
        return "scooter_unknown"
    names = {tag.tag for tag in info.tags}
    if names & set(EXCLUDED_TAGS.get()):
        return "scooter_reported"
    if task.tag_id not in {tag.tag_id for tag in info.tags}:
        return "charged_otherwise"
    return None


def give_up(task: RechargeTask, reason: str) -> str:
    """Stop for good: release what is booked, take our tag off the scooter, and say so (a task given up is final;
    the finder starts a new one if the scooter is listed again)."""
    left = attempts.release_bookings(task)
    if reason != "scooter_unknown":
        upstreams.remove_tag(task.car_id, upstreams.RECHARGE_PROCESSING)
    actions = [RechargeTask.reason.set(reason), RechargeTask.pending_unbook_ids.set(left or None),
               RechargeTask.not_before.remove()]
    actions += [attribute.remove() for attribute in attempts.BOOKING_FIELDS]
    if not lifecycle.move(task, lifecycle.GIVE_UP, actions, _in_attempt(task)):
        return "moved"
    log.event("scooters.task_given_up", task_id=task.task_id, reason=reason,
              metrics=metrics.count("scooters", "TasksGivenUp", reason=reason))
    return "given_up"


def _candidates(task: RechargeTask) -> list[tuple[float, Depot]] | str:
    algorithm = recharge_algorithm(task)
    if algorithm.method != NEAREST:
        crit("scooters.unknown_recharge_algorithm", task_id=task.task_id, method=algorithm.method)
        return "config_error"
    try:
        params = NearestParams.model_validate(algorithm.params)
    except ValueError:
        crit("scooters.invalid_recharge_algorithm_params", task_id=task.task_id, method=algorithm.method)
        return "config_error"
    max_km = min(params.max_distance_km, params.walk_speed_kmh * params.max_walk_min / 60)
    found = [(great_circle_km(list(task.position), depot.position), depot) for depot in DEPOTS.get()]
    return sorted((pair for pair in found if pair[0] <= max_km), key=lambda pair: pair[0])


def _book(task: RechargeTask) -> str:
    candidates = _candidates(task)
    if isinstance(candidates, str):
        reschedule(task, candidates, release=False)
        return candidates
    # A cabinet chosen before a crash (or an answer lost on the way) is tried first with the same token: the
    # cabinets service answers the booking it made, so a replay never books a second battery.
    order: list[tuple[str, str, list[float] | None]] = []
    if task.cabinet_id and task.store_id and not task.book_id:
        order.append((task.store_id, task.cabinet_id, list(task.cabinet_position or []) or None))
    if candidates:
        try:
            stores = upstreams.available_for_booking([depot.store_id for _, depot in candidates])
        except (UpstreamUnavailable, UpstreamRejected) as error:
            log.warning_event("scooters.availability_unavailable", task_id=task.task_id, error=describe(error))
            reschedule(task, "upstream_unavailable", release=False)
            return "upstream_unavailable"
        by_store = {store.store_id: store for store in stores}
        for _, depot in candidates:
            store = by_store.get(depot.store_id)
            if store and store.available > 0 and store.cabinet_id != task.cabinet_id:
                order.append((depot.store_id, store.cabinet_id, depot.position))
    for store_id, cabinet_id, position in order:
        chosen = [RechargeTask.store_id.set(store_id), RechargeTask.cabinet_id.set(cabinet_id)]
        chosen.append(RechargeTask.cabinet_position.set(position) if position
                      else RechargeTask.cabinet_position.remove())
        if not lifecycle.move(task, lifecycle.CHOOSE_CABINET, chosen, _in_attempt(task)):
            return "moved"
        try:
            booking = upstreams.book(cabinet_id, attempts.booking_token(task, cabinet_id))
        except UpstreamUnavailable as error:
            # The booking may exist without us knowing: the task keeps this cabinet, so the next try asks again
            # with the same token and gets it.
            log.warning_event("scooters.book_unavailable", task_id=task.task_id, cabinet_id=cabinet_id,
                              error=describe(error))
            reschedule(task, "upstream_unavailable", release=False)
            return "upstream_unavailable"
        except UpstreamRejected as error:
            log.error_event("scooters.book_rejected", task_id=task.task_id, cabinet_id=cabinet_id,
                            error=describe(error))
            continue
        if booking is None:
            # Someone took the last battery between availability and book: the next cabinet.
            log.event("scooters.book_race_lost", task_id=task.task_id, cabinet_id=cabinet_id,
                      metrics=metrics.count("scooters", "BookingRacesLost"))
            continue
        booked = [RechargeTask.book_id.set(booking.book_id),
                  RechargeTask.cell_ids.set(booking.cell_ids) if booking.cell_ids else RechargeTask.cell_ids.remove(),
                  RechargeTask.due_at.set(attempts.watchdog(clock.now())), RechargeTask.sweep.set(SWEEP)]
        same_cabinet = _in_attempt(task) & (RechargeTask.cabinet_id == cabinet_id)
        if not lifecycle.move(task, lifecycle.BOOK, booked, same_cabinet):
            return "moved"
        log.event("scooters.battery_booked", task_id=task.task_id, store_id=store_id, cabinet_id=cabinet_id,
                  book_id=booking.book_id)
        return BOOKED
    log.event("scooters.no_cabinet", task_id=task.task_id, candidates=len(candidates))
    # Nothing was booked in this attempt (every cabinet refused): the recorded cabinet is forgotten too.
    if task.cabinet_id:
        lifecycle.touch(task, [RechargeTask.cabinet_id.remove(), RechargeTask.store_id.remove(),
                               RechargeTask.cabinet_position.remove()], _in_attempt(task))
    reschedule(task, "no_cabinet", release=False)
    return "no_cabinet"

