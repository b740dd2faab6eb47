"""The battery_exchange screens and the storekeeper's hand-over: who may act, and which mode answers.

The same three screens (status / open / broken) serve both cabinet points: pickup mode at A (cabinet.py), return
mode at C (returns.py); authority.cabinet_mode says which. Only the claim's current performer, only while the
claim is live (authority.acting_task); the storekeeper bot (internal) only while the claim is live.
"""
from __future__ import annotations

from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger

from . import cabinet, returns
from .authority import RETURN_MODE, acting_task, cabinet_mode, live_task

log = get_logger(__name__)


def _mode(task):
    return returns if cabinet_mode(task) == RETURN_MODE else cabinet


def _task(identity: DriverIdentity, claim_id: str):
    task = acting_task(identity, claim_id)
    cabinet.require_booking(task)
    return task


def status_screen(identity: DriverIdentity, claim_id: str) -> list[dict]:
    task = _task(identity, claim_id)
    return _mode(task).status_items(task)


def open_next(identity: DriverIdentity, claim_id: str) -> list[dict]:
    task = _task(identity, claim_id)
    return _mode(task).open_next(task)


def report_broken(identity: DriverIdentity, claim_id: str, cell_id: str) -> list[dict]:
    task = _task(identity, claim_id)
    return _mode(task).report_broken(task, cell_id)


def storekeeper_handover(claim_id: str, cell_id: str) -> None:
    """The storekeeper handled a broken cell's battery by hand: handed it to the courier at A, or took the returned
    one at C."""
    task = live_task(claim_id)
    cabinet.require_booking(task)
    if returns.handover_return(task, cell_id):
        kind = "return"
    else:
        cabinet.handover_pickup(task, cell_id)
        kind = "pickup"
    log.event("scooters.courier.storekeeper_handover", cabinet_id=task.cabinet_id, cell_id=cell_id,
              claim_id=claim_id, kind=kind)
