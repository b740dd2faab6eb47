"""Scooters HTTP routes (design doc 003, part 3: the courier screens): parse -> courier/ -> render.

Driver routes act only for the claim's current performer (403 otherwise) and only while the claim is live (409
claim_finished after the job); internal ones are for cargo-orders and the storekeeper bot. Unknown claim
(cargo_ref_id) -> 404, bad parameters -> 400.
"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import DRIVER, INTERNAL, Call, route

from .courier import actions, exchange, screens
from .courier.models import DESTROYED, MISSING
from .courier.schemas import (
    Action, ActionOut, CellQuery, ClaimQuery, HandoverOut, PointCheckOut, PointQuery, ScreenOut, StateActionsOut,
)
from .recharge.schemas import FULL_CHARGE

bp = Blueprint(__name__)

SCREENS = screens.BASE
ACTIONS = "/scooters-misc/taximeter/v1"


# --- internal: cargo-orders and the storekeeper bot ---------------------------------------------------

@route(bp, "/scooters-misc/v1/cargo/state-actions", kind=INTERNAL, query=PointQuery, response=StateActionsOut,
       errors=(404,))
def state_actions(call: Call) -> StateActionsOut:
    """The courier's actions at a route point of the claim (battery_exchange / find_vehicle, ... )."""
    found = actions.state_actions(call.query.cargo_ref_id, call.query.point_id)
    return StateActionsOut(actions=[Action(type=kind, mode=mode) for kind, mode in found])


@route(bp, "/scooters-misc/v1/cargo/point-check", method="POST", kind=INTERNAL, query=PointQuery,
       response=PointCheckOut, errors=(404, 408, 409, 503), configs=(FULL_CHARGE,))
def point_check(call: Call) -> PointCheckOut:
    """Slider check: 200 when the point is done, else 409 with a message for the courier."""
    actions.point_check(call.query.cargo_ref_id, call.query.point_id)
    return PointCheckOut(status="done")


@route(bp, "/scooters-misc/v1/cabinet/storekeeper-handover", method="POST", kind=INTERNAL, query=CellQuery,
       response=HandoverOut, errors=(404, 409))
def storekeeper_handover(call: Call) -> HandoverOut:
    """The storekeeper handed the battery of a broken cell to the courier (from the storekeeper bot)."""
    exchange.storekeeper_handover(call.query.cargo_ref_id, call.query.cell_id)
    return HandoverOut(cell_id=call.query.cell_id, handed_over=True)


# --- driver: the battery_exchange screens ---------------------------------------------------------------

@route(bp, f"{SCREENS}/status", kind=DRIVER, query=ClaimQuery, response=ScreenOut, errors=(403, 404, 409))
def battery_exchange_status(call: Call) -> ScreenOut:
    """Counters (taken / left), the next battery's button, the close message, or the storekeeper message."""
    return ScreenOut(constructor_items=exchange.status_screen(call.identity, call.query.cargo_ref_id))


@route(bp, f"{SCREENS}/open", method="POST", kind=DRIVER, query=ClaimQuery, response=ScreenOut,
       errors=(403, 404, 408, 409, 503))
def battery_exchange_open(call: Call) -> ScreenOut:
    """Open the next cell (the service picks it): 409 cabinet_busy, 408 cabinet_timeout, 503 manual mode."""
    return ScreenOut(constructor_items=exchange.open_next(call.identity, call.query.cargo_ref_id))


@route(bp, f"{SCREENS}/broken", method="POST", kind=DRIVER, query=CellQuery, response=ScreenOut,
       errors=(403, 404, 409))
def battery_exchange_broken(call: Call) -> ScreenOut:
    """"Ячейка не открылась": the cell is marked broken; answers the status screen."""
    items = exchange.report_broken(call.identity, call.query.cargo_ref_id, call.query.cell_id)
    return ScreenOut(constructor_items=items)


# --- driver: the scooter's point -------------------------------------------------------------------------

@route(bp, f"{ACTIONS}/find_vehicle", method="POST", kind=DRIVER, query=PointQuery, response=ActionOut,
       errors=(403, 404, 409, 503))
def find_vehicle(call: Call) -> ActionOut:
    """The scooter beeps."""
    return ActionOut(status="ok", message=actions.find_vehicle(call.identity, call.query.cargo_ref_id,
                                                               call.query.point_id))


@route(bp, f"{ACTIONS}/vehicle_not_found", method="POST", kind=DRIVER, query=PointQuery, response=ActionOut,
       errors=(403, 404, 409, 503))
def vehicle_not_found(call: Call) -> ActionOut:
    """The scooter is not there: tagged missing; the flow goes on as if the battery were swapped."""
    return ActionOut(status="ok", message=actions.report_vehicle(call.identity, call.query.cargo_ref_id,
                                                                 call.query.point_id, MISSING))


@route(bp, f"{ACTIONS}/open_battery_door", method="POST", kind=DRIVER, query=PointQuery, response=ActionOut,
       errors=(403, 404, 409, 503))
def open_battery_door(call: Call) -> ActionOut:
    """Open the scooter's battery door for the swap (409 door_stuck: use "Ремонт")."""
    return ActionOut(status="ok", message=actions.open_battery_door(call.identity, call.query.cargo_ref_id,
                                                                    call.query.point_id))


@route(bp, f"{ACTIONS}/vehicle_destroyed", method="POST", kind=DRIVER, query=PointQuery, response=ActionOut,
       errors=(403, 404, 409, 503))
def vehicle_destroyed(call: Call) -> ActionOut:
    """The scooter is broken ("Ремонт"): tagged destroyed; the flow goes on as if the battery were swapped."""
    return ActionOut(status="ok", message=actions.report_vehicle(call.identity, call.query.cargo_ref_id,
                                                                 call.query.point_id, DESTROYED))
