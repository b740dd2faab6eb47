"""Courier screens (design doc 003, part 3): who may act on a claim, the actions at each route point, the
scooter-side actions, and the slider checks. The cabinet-side screens (cells, the per-cabinet lock) are in
courier_cabinet.py; the constructor items in courier_screens.py.

Readings of the doc (it leaves these open):
- Points. `point_id` is a route point id as the claim reports it; the recharge task keeps them in `point_ids`
  ("source" = A, the cabinet; "destination" = B, the scooter; "return" = C, the cabinet again). A point id
  that is none of these is 404.
- "On the way" vs "at" the scooter: the claim status the follower stored. At B after `delivery_arrived` /
  `ready_for_delivery_confirmation` (with `current_point_id` = B) the courier is AT the scooter
  (open_battery_door, vehicle_destroyed); before that, ON THE WAY (find_vehicle, vehicle_not_found). The
  journal lags by up to a minute; cargo-orders asks again on its next poll.
- The return point C: no actions and its slider check always passes. The battery_exchange screens hand out the
  BOOKED charged batteries (taken / left), all taken at A already; the cabinets service has no call to put a
  discharged battery into a cell; the follower's `delivered` releases the performer. The doc's "здесь все
  совпадает с флоу получения аккумов" is read as: the same cargo statuses, nothing for us to check.
- vehicle_not_found / vehicle_destroyed: the report is stored (the first one sticks: the other one is 409), the
  scooter gets a tag (`scooter_missing` / `scooter_destroyed`: service tags, so Drive keeps it out of rent), and
  the slider check at B then passes "as if the battery were swapped" (the flow goes on to return the charged
  battery to the cabinet).
- Full charge means level >= FULL_CHARGE_PERCENT (100: the cabinets hand out charged batteries, and the
  scooter backend reports the swapped one at 100).
"""
from __future__ import annotations

import datetime as dt

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import clock
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import Conflict, Forbidden, NotFound
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger

from . import courier_upstreams as upstreams
from .courier_models import DESTROYED, MISSING, CourierProgress
from .models import DESTINATION, RETURN, SOURCE, RechargeTask, points_of, task_by_claim

log = get_logger(__name__)

FULL_CHARGE_PERCENT = 100
AT_POINT_STATUSES = frozenset({"delivery_arrived", "ready_for_delivery_confirmation"})
REPORT_TAGS = {MISSING: "scooter_missing", DESTROYED: "scooter_destroyed"}
PROGRESS_KEEP_DAYS = 30

# Actions (cargo-orders' cargo/state `actions[].type`).
BATTERY_EXCHANGE = "battery_exchange"
FIND_VEHICLE, VEHICLE_NOT_FOUND = "find_vehicle", "vehicle_not_found"
OPEN_BATTERY_DOOR, VEHICLE_DESTROYED = "open_battery_door", "vehicle_destroyed"


# --- the task of a claim, and who may act on it -------------------------------------------------------

def claim_task(claim_id: str) -> RechargeTask:
    task = task_by_claim(claim_id)
    if task is None:
        raise NotFound("no recharge task for this claim", code="claim_not_found")
    return task


def performer_task(identity: DriverIdentity, claim_id: str) -> RechargeTask:
    """The claim's task, if the caller is its performer (403 for any other driver, also before one is found)."""
    task = claim_task(claim_id)
    if (task.performer_park_id, task.performer_driver_profile_id) != (identity.park_id,
                                                                      identity.driver_profile_id):
        log.event("scooters.courier.not_performer", claim_id=claim_id)
        raise Forbidden("only the claim's performer may do this", code="not_performer")
    return task


def point_kind(task: RechargeTask, point_id: str) -> str:
    points = points_of(task)
    for kind in (SOURCE, DESTINATION, RETURN):
        if points.get(kind) is not None and str(points[kind]) == point_id:
            return kind
    raise NotFound("no such route point in this claim", code="point_not_found")


def _scooter_point(task: RechargeTask, point_id: str) -> None:
    if point_kind(task, point_id) != DESTINATION:
        raise Conflict("this action is for the scooter's point only", code="not_scooter_point")


# --- progress (courier_models.CourierProgress) ------------------------------------------------------

def progress_of(task_id: str) -> CourierProgress | None:
    try:
        return CourierProgress.get(task_id, consistent_read=True)
    except DoesNotExist:
        return None


def vehicle_report_of(task_id: str) -> str | None:
    """"missing" / "destroyed" when the courier reported the scooter so (for the recharge flow: such a scooter
    keeps its report tag and should not be announced rentable), else None."""
    progress = progress_of(task_id)
    return progress.vehicle_report if progress is not None else None


def update_progress(task: RechargeTask, actions: list, condition=None) -> None:
    """An upsert of the task's progress item (created by its first write)."""
    now = clock.now()
    keep = max(task.expires_at, now + dt.timedelta(days=PROGRESS_KEEP_DAYS)) if task.expires_at else (
        now + dt.timedelta(days=PROGRESS_KEEP_DAYS))
    item = CourierProgress(task.task_id)
    item.update(actions=[*actions, CourierProgress.updated_at.set(now), CourierProgress.claim_id.set(task.claim_id),
                         CourierProgress.expires_at.set(keep)], condition=condition)


# --- state-actions (internal, for cargo-orders) -----------------------------------------------------

def state_actions(claim_id: str, point_id: str) -> list[str]:
    task = claim_task(claim_id)
    kind = point_kind(task, point_id)
    if kind == SOURCE:
        return [BATTERY_EXCHANGE]
    if kind == DESTINATION:
        arrived = task.claim_status in AT_POINT_STATUSES and str(task.current_point_id) == point_id
        return [OPEN_BATTERY_DOOR, VEHICLE_DESTROYED] if arrived else [FIND_VEHICLE, VEHICLE_NOT_FOUND]
    return []


# --- the scooter's point (driver) ---------------------------------------------------------------------

def find_vehicle(identity: DriverIdentity, claim_id: str, point_id: str) -> str:
    task = performer_task(identity, claim_id)
    _scooter_point(task, point_id)
    upstreams.signal(task.car_id)
    log.event("scooters.courier.signal", task_id=task.task_id, claim_id=claim_id)
    return "Самокат подаёт звуковой сигнал"


def report_vehicle(identity: DriverIdentity, claim_id: str, point_id: str, report: str) -> str:
    """vehicle_not_found / vehicle_destroyed: store the report (first one sticks), tag the scooter."""
    task = performer_task(identity, claim_id)
    _scooter_point(task, point_id)
    condition = CourierProgress.vehicle_report.does_not_exist() | (CourierProgress.vehicle_report == report)
    try:
        update_progress(task, [CourierProgress.vehicle_report.set(report),
                               CourierProgress.vehicle_reported_at.set(clock.now())], condition=condition)
    except UpdateError as error:
        if not condition_failed(error):
            raise
        raise Conflict("the scooter was already reported otherwise", code="already_reported") from None
    # After the report is stored: a retry after a failed tag call tags again (tag/add is idempotent upstream).
    upstreams.add_tag(task.car_id, REPORT_TAGS[report])
    log.event("scooters.courier.vehicle_reported", task_id=task.task_id, claim_id=claim_id, report=report)
    if report == MISSING:
        return "Отметили, что самоката нет. Верните аккумулятор в шкаф"
    return "Отметили, что самокат сломан. Верните аккумулятор в шкаф"


def open_battery_door(identity: DriverIdentity, claim_id: str, point_id: str) -> str:
    task = performer_task(identity, claim_id)
    _scooter_point(task, point_id)
    try:
        upstreams.open_battery_door(task.car_id)
    except upstreams.DoorStuck:
        raise Conflict("Батарейный отсек не открывается. Нажмите «Ремонт»", code="door_stuck") from None
    update_progress(task, [CourierProgress.door_opened_at.set(clock.now())])
    log.event("scooters.courier.door_opened", task_id=task.task_id, claim_id=claim_id)
    return "Батарейный отсек открыт. Замените аккумулятор и закройте отсек"


# --- slider checks (internal, for cargo-orders) -------------------------------------------------------

def point_check(claim_id: str, point_id: str) -> None:
    """Returns when the point is done; raises Conflict with a message for the courier otherwise."""
    from . import courier_cabinet

    task = claim_task(claim_id)
    kind = point_kind(task, point_id)
    if kind == SOURCE:
        courier_cabinet.check_cabinet_point(task)
    elif kind == DESTINATION:
        _check_scooter_point(task)


def _check_scooter_point(task: RechargeTask) -> None:
    progress = progress_of(task.task_id)
    if progress is not None and progress.vehicle_report in (MISSING, DESTROYED):
        return  # "as if the battery were swapped": the charged battery goes back to the cabinet
    battery = upstreams.car_battery(task.car_id)
    if task.battery_id is not None and battery.battery_id == task.battery_id:
        raise Conflict("В самокате прежний аккумулятор. Замените его на заряженный", code="battery_not_swapped")
    if battery.level < FULL_CHARGE_PERCENT:
        raise Conflict(f"Аккумулятор в самокате заряжен на {int(battery.level)} %. Поставьте заряженный",
                       code="battery_not_charged")

