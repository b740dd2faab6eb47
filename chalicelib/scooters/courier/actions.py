"""The courier's actions per route point, the scooter-side actions, and the slider checks (design doc 003, part 3).
Who may act: authority.py; the cabinet screens: cabinet.py (A) and returns.py (C).

Readings of the doc (it leaves these open):
- Points. `point_id` is a route point id as the claim reports it; the task keeps them in `point_ids` ("source" =
  A, the cabinet; "destination" = B, the scooter; "return" = C, the cabinet again). Any other id is 404.
- Actions answer for the point asked about, from where the courier is (authority.position_at: cargo is asked
  when the stored state does not show the courier at that point):
    A  `battery_exchange` (pickup mode) until the courier leaves A;
    B  AT the scooter (delivery_arrived / ready_for_delivery_confirmation at B): open_battery_door +
       vehicle_destroyed; before that, on the way: find_vehicle + vehicle_not_found; after B (back in rent, or
       the courier at C): none;
    C  AT C (arrived there): `battery_exchange` in return mode (doc: "delivery_arrived for the second point: the
       same as the battery pickup flow": the same screens put the discharged battery into a free cell).
  A finished claim has no actions.
- vehicle_not_found / vehicle_destroyed: the report is stored (the first one sticks: the other one is 409), the
  scooter gets a tag (`scooter_missing` / `scooter_destroyed`: service tags, so Drive keeps it out of rent, and
  the poll's filter excludes them), and the slider check at B passes "as if the battery were swapped": the
  courier brings the charged battery back to C.
- Swapped (the slider at B) means a different battery id charged at or above `scooters_full_charge_percent`
  (config, 95): a 99 % battery is a charged one.
- The slider at C passes only when the battery is returned into a cell or handed to the storekeeper.
"""
from __future__ import annotations

from chalicelib.core import clock
from chalicelib.core.errors import Conflict
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger

from ..recharge import lifecycle
from ..recharge.models import DESTINATION, RETURN, SOURCE, RechargeTask
from ..recharge.schemas import FULL_CHARGE
from . import cabinet, returns
from . import upstreams
from .authority import (
    PICKUP, RETURN_MODE, acting_task, claim_task, live_task, point_kind, position_at, progress_of, update_progress,
)
from .models import DESTROYED, MISSING, ClaimProgress

log = get_logger(__name__)

REPORT_TAGS = {MISSING: "scooter_missing", DESTROYED: "scooter_destroyed"}
AT_SCOOTER = frozenset({"delivery_arrived", "ready_for_delivery_confirmation"})

# Actions (cargo-orders' cargo/state `actions[].type`), and the mode of battery_exchange.
BATTERY_EXCHANGE = "battery_exchange"
FIND_VEHICLE, VEHICLE_NOT_FOUND = "find_vehicle", "vehicle_not_found"
OPEN_BATTERY_DOOR, VEHICLE_DESTROYED = "open_battery_door", "vehicle_destroyed"


# --- state-actions (internal, for cargo-orders) -----------------------------------------------------

def state_actions(claim_id: str, point_id: str) -> list[tuple[str, str | None]]:
    """[(action type, mode)] at the point: see the docstring."""
    task = claim_task(claim_id)
    kind = point_kind(task, point_id)
    if not lifecycle.claim_live(task, claim_id):
        return []
    position = position_at(task, point_id)
    if kind == SOURCE:
        left_a = position.point_id is not None and position.point_id != point_id
        return [] if left_a or task.status in lifecycle.BACK_IN_RENT else [(BATTERY_EXCHANGE, PICKUP)]
    if kind == DESTINATION:
        points = task.point_ids.as_dict()
        if not lifecycle.scooter_open(task) or position.point_id == points.get(RETURN):
            return []
        if position.point_id == point_id and position.status in AT_SCOOTER:
            return [(OPEN_BATTERY_DOOR, None), (VEHICLE_DESTROYED, None)]
        return [(FIND_VEHICLE, None), (VEHICLE_NOT_FOUND, None)]
    return [(BATTERY_EXCHANGE, RETURN_MODE)] if position.at(point_id) else []


# --- the scooter's point (driver) ---------------------------------------------------------------------

def _scooter_task(identity: DriverIdentity, claim_id: str, point_id: str) -> RechargeTask:
    task = acting_task(identity, claim_id, scooter=True)
    if point_kind(task, point_id) != DESTINATION:
        raise Conflict("this action is for the scooter's point only", code="not_scooter_point")
    return task


def find_vehicle(identity: DriverIdentity, claim_id: str, point_id: str) -> str:
    task = _scooter_task(identity, claim_id, point_id)
    upstreams.signal(task.car_id)
    log.event("scooters.courier.signal", task_id=task.task_id, claim_id=claim_id)
    return "Самокат подаёт звуковой сигнал"


def report_vehicle(identity: DriverIdentity, claim_id: str, point_id: str, report: str) -> str:
    """vehicle_not_found / vehicle_destroyed: store the report (first one sticks), tag the scooter."""
    task = _scooter_task(identity, claim_id, point_id)
    condition = ClaimProgress.vehicle_report.does_not_exist() | (ClaimProgress.vehicle_report == report)
    if not update_progress(task, [ClaimProgress.vehicle_report.set(report),
                                  ClaimProgress.vehicle_reported_at.set(clock.now())], condition=condition):
        raise Conflict("the scooter was already reported otherwise", code="already_reported")
    # After the report is stored: a retry after a failed tag call tags again (tag/add is idempotent upstream).
    upstreams.add_tag(task.car_id, REPORT_TAGS[report])
    log.event("scooters.courier.vehicle_reported", task_id=task.task_id, claim_id=claim_id, report=report)
    if report == MISSING:
        return "Отметили, что самоката нет. Верните аккумулятор в шкаф"
    return "Отметили, что самокат сломан. Верните аккумулятор в шкаф"


def open_battery_door(identity: DriverIdentity, claim_id: str, point_id: str) -> str:
    task = _scooter_task(identity, claim_id, point_id)
    try:
        upstreams.open_battery_door(task.car_id)
    except upstreams.DoorStuck:
        raise Conflict("Батарейный отсек не открывается. Нажмите «Ремонт»", code="door_stuck") from None
    update_progress(task, [ClaimProgress.door_opened_at.set(clock.now())])
    log.event("scooters.courier.door_opened", task_id=task.task_id, claim_id=claim_id)
    return "Батарейный отсек открыт. Замените аккумулятор и закройте отсек"


# --- slider checks (internal, for cargo-orders) -------------------------------------------------------

def point_check(claim_id: str, point_id: str) -> None:
    """Returns when the point is done; raises Conflict with a message for the courier otherwise."""
    task = live_task(claim_id)
    kind = point_kind(task, point_id)
    if kind == SOURCE:
        cabinet.check_cabinet_point(task)
    elif kind == DESTINATION:
        _check_scooter_point(task)
    else:
        returns.check_return_point(task)


def _check_scooter_point(task: RechargeTask) -> None:
    progress = progress_of(task.claim_id)
    if progress is not None and progress.vehicle_report in (MISSING, DESTROYED):
        return  # "as if the battery were swapped": the charged battery goes back to the cabinet
    if task.status in lifecycle.BACK_IN_RENT:
        return  # the scooter left B swapped (the follower saw the courier leave it)
    battery = upstreams.car_battery(task.car_id)
    full = FULL_CHARGE.get()
    if lifecycle.is_swapped(task.battery_id, battery.battery_id, battery.level, full):
        return
    if task.battery_id is not None and battery.battery_id == task.battery_id:
        raise Conflict("В самокате прежний аккумулятор. Замените его на заряженный", code="battery_not_swapped")
    raise Conflict(f"Аккумулятор в самокате заряжен на {int(battery.level)} %. Поставьте заряженный (от {full} %)",
                   code="battery_not_charged")
