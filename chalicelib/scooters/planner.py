"""Plan a recharge (doc part 2, steps 1-6): choose a cabinet, book a battery, create the cargo claim.

One task per message of `scooters_misc_recharge`. Replays are harmless: every step is keyed on the task's
planning `attempt` (a conditional write guards each move; the booking token and the claim's request_id are
made from the attempt's random key, so a replay of the same attempt gets the same booking and the same claim).
An attempt ends when its booking is released (no claim could be made, or the claim failed / found no
performer): the task waits (`waiting`, `not_before`) and the next attempt starts with attempt + 1.

Delays beyond SQS's 15 minutes: the message carries `not_before`; a message that arrives early is sent again
with the rest of the delay (at most 15 minutes a hop). The finder's schedule sweeps tasks whose planning is
overdue (DueIndex), so a lost message or a failed send cannot strand a task.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import uuid

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock, metrics, queues
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import epoch

from . import upstreams
from .models import (
    BOOKED, BOOKING, CLAIMED, DESTINATION, NEW, RETURN, SOURCE, SWEEP, WAITING, RechargeTask, get_task,
)
from .schemas import (
    ALGORITHM, CLAIM_SETTINGS, DEPOTS, NEAREST, RETRY_DELAYS, Depot, NearestParams, PlanMessage, RechargeAlgorithm,
)

log = get_logger(__name__)

QUEUE = "scooters_misc_recharge"
SQS_MAX_DELAY = 900
TASK_TTL = dt.timedelta(days=14)
# Planning takes seconds; SQS redeliveries of a failing message span minutes. After this, the sweep re-sends.
WATCHDOG_SECONDS = 15 * 60
# A waiting task's own message is due at not_before; the sweep steps in this much later.
WAITING_GRACE_SECONDS = 5 * 60
EARTH_RADIUS_KM = 6371.0088
PLANNABLE = (NEW, BOOKING, BOOKED, WAITING)


def crit(event: str, **fields) -> None:
    """The doc's CRIT: a critical log line, `crit: true` for the alarm's filter."""
    log.event(event, logging.CRITICAL, crit=True, **fields)


def great_circle_km(a: list[float], b: list[float]) -> float:
    """Haversine distance between two [lon, lat] points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def recharge_algorithm(task: RechargeTask) -> RechargeAlgorithm:
    """The doc's experiment `scooters_recharge_algorithm`, evaluated for this scooter."""
    return ALGORITHM.get(car_id=task.car_id)


def new_attempt_key() -> str:
    return uuid.uuid4().hex


def attempt_key(task: RechargeTask) -> str:
    """The attempt's random key. Tasks written before keys were stored: the digest they always used."""
    if task.attempt_key:
        return task.attempt_key
    return hashlib.sha256(f"{task.task_id}\n{task.attempt}".encode()).hexdigest()[:40]


def claim_request_id(task: RechargeTask) -> str:
    """Stable for every retry and replay of one attempt (cargo answers a repeated request_id with the first
    claim); a new attempt gets a new one (a reused request_id would answer the old, failed claim)."""
    return f"scooters-claim-{attempt_key(task)}"


def booking_token(task: RechargeTask, cabinet_id: str) -> str:
    """One booking call per attempt and cabinet: its retries and replays share this token, nothing else does."""
    return f"scooters-book-{attempt_key(task)}:{cabinet_id}"


# --- messages -------------------------------------------------------------------------------------------

def enqueue(task_id: str, attempt: int, not_before: dt.datetime | None = None) -> None:
    delay = 0
    if not_before is not None:
        delay = max(0, min(SQS_MAX_DELAY, math.ceil((not_before - clock.now()).total_seconds())))
    message = PlanMessage(task_id=task_id, attempt=attempt,
                          not_before=epoch(not_before) if not_before is not None else None)
    queues.send(QUEUE, message, delay_seconds=delay)


def _watchdog(now: dt.datetime) -> int:
    return epoch(now) + WATCHDOG_SECONDS


# --- writes ---------------------------------------------------------------------------------------------

def _update(task: RechargeTask, actions: list, condition) -> bool:
    """Apply `actions` when the task is still in the attempt (and state) this handler read; False when a
    concurrent handler moved it first (it carries on; this one stops)."""
    now = clock.now()
    actions = actions + [RechargeTask.updated_at.set(now)]
    try:
        task.update(actions=actions, condition=(RechargeTask.attempt == task.attempt) & condition)
    except UpdateError as error:
        if condition_failed(error):
            log.event("scooters.task_moved_meanwhile", task_id=task.task_id, attempt=task.attempt)
            return False
        raise
    return True


def _release(task: RechargeTask) -> list[str]:
    """Unbook the task's booking (and older ones that failed to unbook); what still fails stays pending."""
    pending = list(task.pending_unbook_ids or [])
    if task.book_id and task.book_id not in pending:
        pending.append(task.book_id)
    left = []
    for book_id in pending:
        try:
            upstreams.unbook(book_id)
        except (UpstreamUnavailable, UpstreamRejected) as error:
            log.error_event("scooters.unbook_failed", task_id=task.task_id, book_id=book_id, error=describe(error))
            left.append(book_id)
    return left


def reschedule(task: RechargeTask, reason: str, *, release: bool, expect_claim: str | None = None) -> bool:
    """Park the task until a delay passes (by `reason`, backing off on repeats) and send its next message.

    release=True ends the attempt: the booking is released (unbook), the claim id dropped, attempt + 1.
    `expect_claim`: the claim the caller reacted to (the write then holds only while it is still the task's).
    """
    delays = RETRY_DELAYS.get()
    failures = (task.failures or 0) + 1
    delay = min(getattr(delays, reason, delays.upstream_unavailable) * 2 ** min(failures - 1, 16), delays.max_delay)
    now = clock.now()
    not_before = now + dt.timedelta(seconds=delay)
    attempt = task.attempt + 1 if release else task.attempt
    actions = [
        RechargeTask.status.set(WAITING), RechargeTask.not_before.set(not_before), RechargeTask.reason.set(reason),
        RechargeTask.failures.set(failures), RechargeTask.expires_at.set(now + TASK_TTL),
        RechargeTask.sweep.set(SWEEP), RechargeTask.due_at.set(epoch(not_before) + WAITING_GRACE_SECONDS),
    ]
    if release:
        pending = _release(task)
        actions += [RechargeTask.attempt.set(attempt), RechargeTask.attempt_key.set(new_attempt_key()),
                    RechargeTask.pending_unbook_ids.set(pending or None)]
        actions += [attribute.remove() for attribute in (
            RechargeTask.book_id, RechargeTask.cell_ids, RechargeTask.cabinet_id, RechargeTask.store_id,
            RechargeTask.cabinet_position, RechargeTask.claim_id, RechargeTask.claim_version,
            RechargeTask.claim_revision, RechargeTask.claim_status, RechargeTask.point_ids,
            RechargeTask.current_point_id, RechargeTask.performer_park_id, RechargeTask.performer_driver_profile_id)]
    condition = RechargeTask.claim_id == expect_claim if expect_claim else RechargeTask.status.is_in(*PLANNABLE)
    if not _update(task, actions, condition):
        return False
    log.event("scooters.task_rescheduled", task_id=task.task_id, reason=reason, delay_seconds=delay,
              attempt=attempt, released=release,
              metrics=metrics.count("scooters", "TasksRescheduled", reason=reason))
    try:
        enqueue(task.task_id, attempt, not_before)
    except Exception as error:  # the task is parked with due_at: the sweep sends it when this send is lost
        log.error_event("scooters.reschedule_send_failed", task_id=task.task_id, error=describe(error))
    return True


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
    if task.status not in PLANNABLE:
        log.event("scooters.plan_replay", task_id=task.task_id, status=task.status)
        return "already_planned"
    now = clock.now()
    due = max(message.not_before or 0, epoch(task.not_before) if task.not_before else 0)
    if due > epoch(now):
        # Longer than SQS can delay: hop again with what is left.
        enqueue(task.task_id, task.attempt, dt.datetime.fromtimestamp(due, dt.timezone.utc))
        log.event("scooters.plan_not_yet", task_id=task.task_id, seconds_left=due - epoch(now))
        return "not_yet"
    if task.pending_unbook_ids:
        left = _release(task)
        _update(task, [RechargeTask.pending_unbook_ids.set(left or None)], RechargeTask.status.is_in(*PLANNABLE))
    if task.status != BOOKED or not task.book_id:
        outcome = _book(task)
        if outcome != BOOKED:
            return outcome
    return _create_claim(task)


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
        chosen = [RechargeTask.status.set(BOOKING), RechargeTask.store_id.set(store_id),
                  RechargeTask.cabinet_id.set(cabinet_id)]
        chosen.append(RechargeTask.cabinet_position.set(position) if position else RechargeTask.cabinet_position.remove())
        if not _update(task, chosen, RechargeTask.status.is_in(NEW, BOOKING, WAITING)):
            return "moved"
        try:
            booking = upstreams.book(cabinet_id, booking_token(task, cabinet_id))
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
        booked = [RechargeTask.status.set(BOOKED), RechargeTask.book_id.set(booking.book_id),
                  RechargeTask.cell_ids.set(booking.cell_ids) if booking.cell_ids else RechargeTask.cell_ids.remove(),
                  RechargeTask.due_at.set(_watchdog(clock.now())), RechargeTask.sweep.set(SWEEP)]
        if not _update(task, booked, (RechargeTask.status == BOOKING) & (RechargeTask.cabinet_id == cabinet_id)):
            return "moved"
        log.event("scooters.battery_booked", task_id=task.task_id, store_id=store_id, cabinet_id=cabinet_id,
                  book_id=booking.book_id)
        return BOOKED
    log.event("scooters.no_cabinet", task_id=task.task_id, candidates=len(candidates))
    # Nothing was booked in this attempt (every cabinet refused): the recorded cabinet is forgotten too.
    if task.cabinet_id:
        _update(task, [RechargeTask.cabinet_id.remove(), RechargeTask.store_id.remove(),
                       RechargeTask.cabinet_position.remove()], RechargeTask.status.is_in(*PLANNABLE))
    reschedule(task, "no_cabinet", release=False)
    return "no_cabinet"


def _depot(store_id: str | None) -> Depot | None:
    return next((depot for depot in DEPOTS.get() if depot.store_id == store_id), None)


def claim_body(task: RechargeTask) -> dict:
    """The claim of doc part 2, step 6: one battery, A = the cabinet, B = the scooter, C = the cabinet again."""
    settings = CLAIM_SETTINGS.get()
    depot = _depot(task.store_id)
    cabinet_position = list(task.cabinet_position or []) or (depot.position if depot else None)
    if not cabinet_position:
        raise ValueError("the task's cabinet has no position")
    contact = (depot.contact if depot and depot.contact else settings.contact).model_dump()
    cabinet_address = {"fullname": (depot.address if depot and depot.address else f"Шкаф {task.cabinet_id}"),
                       "coordinates": cabinet_position}  # [lon, lat]: the other order is unknown_zone
    battery = settings.battery

    def point(point_id: int, kind: str, address: dict, **extra) -> dict:
        # The doc asks for "skip_confirmation = False so there are no SMS confirmations", but in this API false
        # is what DEMANDS a code from the courier: the doc's intent (no SMS) is skip_confirmation: true.
        return {"point_id": point_id, "visit_order": point_id, "type": kind, "contact": contact,
                "address": address, "skip_confirmation": True, **extra}

    return {
        "items": [{
            "title": battery.title, "cost_value": battery.cost_value, "cost_currency": battery.cost_currency,
            "quantity": 1, "weight": battery.weight_kg,
            "size": {"length": battery.length_m, "width": battery.width_m, "height": battery.height_m},
            "pickup_point": 1, "dropoff_point": 2, "extra_id": task.task_id,
        }],
        "route_points": [
            point(1, SOURCE, cabinet_address),
            point(2, DESTINATION, {"fullname": f"Самокат {task.car_id}", "coordinates": list(task.position)},
                  external_order_id=task.task_id),
            point(3, RETURN, dict(cabinet_address)),
        ],
        "client_requirements": {"taxi_class": settings.taxi_class},
        "emergency_contact": settings.contact.model_dump(),
        "comment": settings.comment,
    }


def point_ids_of(claim) -> dict[str, str]:
    """Route point ids by type, as the claim reports them (never the ids we proposed)."""
    ids: dict[str, str] = {}
    for point in claim.route_points:
        if point.type in (SOURCE, DESTINATION, RETURN) and point.type not in ids:
            ids[point.type] = str(point.id)
    return ids


def _create_claim(task: RechargeTask) -> str:
    request_id = claim_request_id(task)
    try:
        claim = upstreams.create_claim(request_id, claim_body(task))
        ids = point_ids_of(claim)
        if len(ids) < 3:
            claim = upstreams.claim_info(claim.id)
            ids = point_ids_of(claim)
    except UpstreamUnavailable as error:
        # core.http already retried with backoff: release the battery and try again later (doc step 6).
        log.warning_event("scooters.claim_create_unavailable", task_id=task.task_id, error=describe(error))
        reschedule(task, "upstream_unavailable", release=True)
        return "cargo_unavailable"
    except UpstreamRejected as error:
        crit("scooters.claim_create_rejected", task_id=task.task_id, status=error.upstream_status)
        reschedule(task, "config_error", release=True)
        return "claim_rejected"
    if not any(item.get("extra_id") == task.task_id for item in claim.items) or len(ids) < 3:
        crit("scooters.claim_not_ours", task_id=task.task_id, claim_id=claim.id)
        reschedule(task, "config_error", release=True)
        return "claim_not_ours"
    stored = [RechargeTask.status.set(CLAIMED), RechargeTask.claim_id.set(claim.id),
              RechargeTask.claim_version.set(claim.version), RechargeTask.claim_status.set(claim.status),
              RechargeTask.point_ids.set(ids), RechargeTask.failures.set(0),
              RechargeTask.sweep.remove(), RechargeTask.due_at.remove(), RechargeTask.not_before.remove(),
              RechargeTask.reason.remove()]
    if claim.current_point_id is not None:
        stored.append(RechargeTask.current_point_id.set(str(claim.current_point_id)))
    if not _update(task, stored, (RechargeTask.status == BOOKED) & (RechargeTask.book_id == task.book_id)):
        return "moved"
    log.event("scooters.claim_created", task_id=task.task_id, claim_id=claim.id, attempt=task.attempt,
              metrics=metrics.count("scooters", "ClaimsCreated"))
    return CLAIMED
