"""The cargo claim of a planning attempt (doc part 2, step 6): its body, its creation, and no orphan claims.

A create whose answer is lost (timeouts on every retry) may still have made a claim. The attempt then ends as the
doc says (booking released, planned again later) and keeps its key on the task (`previous_attempt_key`). Before
the next attempt creates a claim, it REPLAYS that create: the old request_id with the CURRENT body. Cargo answers
a request_id it has seen with the first claim, whatever the body, and makes the claim from this body if it has
not (CARGO-API-NOTES.md). What comes back is
- live, and for the cabinet booked now (made from this body, or an earlier claim to the same cabinet): ADOPTED
  as this attempt's claim, and its state applied at once (a claim nobody accepts fails within 10 minutes);
- live, for another cabinet (that attempt's booking was released: the attempt was given up): CANCELLED, then this
  attempt creates its own claim with its own request_id;
- finished (failed, cancelled, e.g. never accepted): forgotten; this attempt creates its own.
So a lost create answer never ends in two live claims for one scooter. Doc 003 is silent on lost answers; it only
asks for "retries and an idempotency token" and, after them, to unbook and plan again.
"""
from __future__ import annotations

from chalicelib.core import metrics
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger

from . import attempts, lifecycle, reactions, upstreams
from .attempts import crit, reschedule
from .lifecycle import CLAIMED
from .models import DESTINATION, RETURN, SOURCE, RechargeTask
from .schemas import CLAIM_SETTINGS, DEPOTS, Claim, Depot, JournalEvent

log = get_logger(__name__)


class OrphanNotCancelled(Exception):
    """A live claim of an ended attempt would not cancel: creating another would send a second courier."""


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


def point_ids_of(claim: Claim) -> dict[str, str]:
    """Route point ids by type, as the claim reports them (never the ids we proposed)."""
    ids: dict[str, str] = {}
    for point in claim.route_points:
        if point.type in (SOURCE, DESTINATION, RETURN) and point.type not in ids:
            ids[point.type] = str(point.id)
    return ids


def task_id_of_claim(claim: Claim) -> str | None:
    """The recharge task a claim was made for (its item's extra_id, or B's external_order_id), if any."""
    for item in claim.items:
        if isinstance(item, dict) and item.get("extra_id"):
            return str(item["extra_id"])
    return next((p.external_order_id for p in claim.route_points if p.type == DESTINATION and p.external_order_id),
                None)


def is_live(claim: Claim) -> bool:
    return lifecycle.classify(claim.status, None, {}).event not in (lifecycle.DROPPED, lifecycle.FINISHED)


def _source(body_or_claim) -> list[float] | None:
    points = body_or_claim["route_points"] if isinstance(body_or_claim, dict) else [
        p.model_dump() for p in body_or_claim.route_points]
    for point in points:
        if point.get("type") == SOURCE:
            return [round(float(v), 6) for v in ((point.get("address") or {}).get("coordinates") or [])] or None
    return None


def _replay(task: RechargeTask, body: dict) -> Claim | None:
    """The unanswered create of an ended attempt, replayed: the claim to adopt, or None (see the docstring)."""
    found = upstreams.create_claim(attempts.request_id_of(task.previous_attempt_key), body)
    if task_id_of_claim(found) != task.task_id:
        crit("scooters.replayed_claim_not_ours", task_id=task.task_id, claim_id=found.id)
        return None
    if not is_live(found):
        log.event("scooters.replayed_claim_finished", task_id=task.task_id, claim_id=found.id, status=found.status)
        return None
    if _source(found) == _source(body):
        log.event("scooters.claim_adopted", task_id=task.task_id, claim_id=found.id, status=found.status,
                  metrics=metrics.count("scooters", "ClaimsAdopted"))
        return found
    try:
        upstreams.cancel_claim(found.id, found.version)
    except UpstreamRejected as error:
        raise OrphanNotCancelled(describe(error)) from error
    log.event("scooters.orphan_claim_cancelled", task_id=task.task_id, claim_id=found.id,
              metrics=metrics.count("scooters", "OrphanClaimsCancelled"))
    return None


def create_claim(task: RechargeTask) -> str:
    """Create (or adopt) the attempt's claim and store it on the task: BOOKED -> CLAIMED."""
    try:
        body = claim_body(task)
    except ValueError as error:
        crit("scooters.claim_body_invalid", task_id=task.task_id, error=describe(error))
        reschedule(task, "config_error", release=True)
        return "config_error"
    sent_key, claim, adopted = None, None, False
    try:
        if task.previous_attempt_key:
            sent_key = task.previous_attempt_key
            claim = _replay(task, body)
            adopted = claim is not None
        if claim is None:
            sent_key = attempts.attempt_key(task)
            claim = upstreams.create_claim(attempts.claim_request_id(task), body)
        if len(point_ids_of(claim)) < 3:
            claim = upstreams.claim_info(claim.id)
    except UpstreamUnavailable as error:
        # core.http already retried with backoff: release the battery and try again later (doc step 6). The claim
        # may exist: the key of the create that went unanswered is kept for the next attempt's replay.
        log.warning_event("scooters.claim_create_unavailable", task_id=task.task_id, error=describe(error))
        reschedule(task, "upstream_unavailable", release=True, unanswered_key=sent_key)
        return "cargo_unavailable"
    except UpstreamRejected as error:
        crit("scooters.claim_create_rejected", task_id=task.task_id, status=error.upstream_status)
        reschedule(task, "config_error", release=True)
        return "claim_rejected"
    except OrphanNotCancelled as error:
        crit("scooters.orphan_claim_not_cancelled", task_id=task.task_id, error=str(error))
        reschedule(task, "config_error", release=True)
        return "orphan_claim"
    ids = point_ids_of(claim)
    if task_id_of_claim(claim) != task.task_id or len(ids) < 3:
        crit("scooters.claim_not_ours", task_id=task.task_id, claim_id=claim.id)
        reschedule(task, "config_error", release=True)
        return "claim_not_ours"
    stored = [RechargeTask.claim_id.set(claim.id), RechargeTask.claim_version.set(claim.version),
              RechargeTask.claim_status.set(claim.status), RechargeTask.point_ids.set(ids),
              RechargeTask.failures.set(0), RechargeTask.not_before.remove(), RechargeTask.reason.remove(),
              RechargeTask.previous_attempt_key.remove(), RechargeTask.claim_revision.remove(),
              RechargeTask.claim_outcome.remove(), RechargeTask.performer_park_id.remove(),
              RechargeTask.performer_driver_profile_id.remove()]
    stored.append(RechargeTask.current_point_id.set(str(claim.current_point_id))
                  if claim.current_point_id is not None else RechargeTask.current_point_id.remove())
    same_booking = (RechargeTask.attempt == task.attempt) & (RechargeTask.book_id == task.book_id)
    if not lifecycle.move(task, lifecycle.CLAIM, stored, same_booking):
        return "moved"
    log.event("scooters.claim_created", task_id=task.task_id, claim_id=claim.id, attempt=task.attempt,
              adopted=adopted, metrics=metrics.count("scooters", "ClaimsCreated"))
    if adopted:
        _apply_now(task, claim)
    return CLAIMED


def _apply_now(task: RechargeTask, claim: Claim) -> None:
    """An adopted claim may wait for its accept already: its state goes through the follower's own path now
    (failing that, the reconciler applies it at its next look)."""
    state = JournalEvent(claim_id=claim.id, new_status=claim.status, revision=claim.revision or 0,
                         current_point_id=claim.current_point_id)
    try:
        reactions.apply(task, state, claim=claim)
    except Exception as error:  # noqa: BLE001 - the claim is stored; the reconciler heals what failed here
        log.warning_event("scooters.adopted_claim_not_applied", task_id=task.task_id, claim_id=claim.id,
                          error=describe(error))
        lifecycle.touch(task, [RechargeTask.claim_seen_at.set(0)], RechargeTask.claim_id == claim.id)
