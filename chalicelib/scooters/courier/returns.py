"""The courier back at the cabinet, point C: the battery_exchange screens in return mode (design doc 003:
"delivery_arrived for the second point: the same as the battery pickup flow"; reading: the same screens, the other
way round, since the courier brings the discharged battery back).

The battery returned is the scooter's discharged one (the task's `battery_id`), or, when the scooter was reported
missing or destroyed, the booked charged one, unused (the cabinets service knows it by the booking). The service
picks the cell: the return cell already told to the cabinet (a retry), else an empty closed cell of this booking
(one its charged battery left), else a free one; never a cell that did not open for this return. For that cell
it tells the cabinets service which battery it will hold (upstreams.assign_return_cell; doc 003 names no such
call), then opens it. Returned = the cabinet reports that cell closed with a battery in it.

The same rules as at A: one open cell per cabinet (409 cabinet_busy), 408 cabinet_timeout (retry the same cell),
503 cabinet_manual_mode, "Ячейка не открылась" marks the cell broken for the return; when no cell can be opened
the courier is sent to the storekeeper ("Невозможно открыть N ячеек. Обратитесь к кладовщику"), whose hand-over
(the bot, naming a broken return cell) counts as returned. The slider check at C passes only when the battery
is returned or handed to the storekeeper.
"""
from __future__ import annotations

import dataclasses

from chalicelib.core.errors import Conflict, NotFound
from chalicelib.core.logs import get_logger

from ..recharge.models import RechargeTask
from . import locks, screens, upstreams
from .authority import progress_of, update_progress
from .cabinet import cabinet_or_none, manual_mode, open_cell, read_cabinet, timeout
from .models import ClaimProgress

log = get_logger(__name__)


def battery_to_return(task: RechargeTask, progress: ClaimProgress | None) -> str | None:
    """The discharged battery after a swap; None (the booking's own charged battery) for a scooter reported
    missing or destroyed."""
    if progress is not None and progress.vehicle_report:
        return None
    return task.battery_id


@dataclasses.dataclass(frozen=True)
class Return:
    cell_id: str | None  # the cell the cabinet was told to hold the battery
    returned: bool  # in that cell, closed
    handed_over: bool  # to the storekeeper, by hand
    open: bool  # that cell is open now
    broken: list[str]  # cells that did not open for this return
    candidates: list[str]  # cells it may go into next, in order

    @property
    def done(self) -> bool:
        return self.returned or self.handed_over


def return_of(task: RechargeTask, progress: ClaimProgress | None, cabinet: upstreams.Cabinet | None) -> Return:
    cell_id = progress.return_cell if progress else None
    broken = sorted(progress.return_broken_cells or ()) if progress else []
    handed = bool(set(broken) & set(progress.handed_over_cells or ())) if progress else False
    known = cabinet.cells.get(cell_id) if cabinet is not None and cell_id else None
    returned = known is not None and known.has_battery and known.state not in ("open", "broken")
    is_open = known is not None and known.state == "open"
    candidates: list[str] = []
    if cabinet is not None:
        usable = [c for c in cabinet.cells.values() if c.cell_id not in broken and c.takes_return(task.book_id)]
        # The cell already told to the cabinet first, then this booking's own emptied cells, then free ones.
        usable.sort(key=lambda c: (c.cell_id != cell_id, c.book_id != task.book_id, c.cell_id))
        candidates = [c.cell_id for c in usable]
    return Return(cell_id=cell_id, returned=returned, handed_over=handed, open=is_open, broken=broken,
                  candidates=candidates)


def _stuck(state: Return) -> Conflict:
    if state.broken:
        return Conflict(screens.storekeeper_text(len(state.broken)), code="cells_broken")
    return Conflict("В шкафу нет свободной ячейки. Обратитесь к кладовщику", code="no_free_cell")


# --- the return screens (driver) ----------------------------------------------------------------------

def status_items(task: RechargeTask) -> list[dict]:
    cabinet = cabinet_or_none(task)
    if cabinet is not None:
        locks.release_if_closed(cabinet, task.claim_id)
    state = return_of(task, progress_of(task.claim_id), cabinet)
    if state.open:
        return screens.return_opened_items(task.claim_id, state.cell_id, counters=True)
    if state.done:
        return screens.return_done_items()
    if cabinet is not None and not state.candidates:
        return screens.return_stuck_items(_stuck(state).message)
    return screens.return_start_items(task.claim_id)


def open_next(task: RechargeTask) -> list[dict]:
    """Open a cell for the returned battery (the service picks it); the screen with the two buttons."""
    cabinet = read_cabinet(task)
    progress = progress_of(task.claim_id)
    state = return_of(task, progress, cabinet)
    if state.done:
        raise Conflict("Аккумулятор уже сдан", code="all_returned")
    if state.open:  # a retry while the cell is open: the same cell, nothing opened twice
        return screens.return_opened_items(task.claim_id, state.cell_id)
    if cabinet.open_cell_id is not None:
        raise locks.busy()
    battery_id = battery_to_return(task, progress)
    for cell_id in state.candidates:
        try:
            upstreams.assign_return_cell(task.cabinet_id, task.book_id, cell_id, battery_id)
        except upstreams.CellNotFree:
            continue  # taken meanwhile (another courier, by hand): the next one
        except upstreams.CabinetTimeout:
            raise timeout() from None
        except upstreams.CabinetDown:
            raise manual_mode() from None
        update_progress(task, [ClaimProgress.return_cell.set(cell_id)])
        if not open_cell(task, cabinet, cell_id):
            update_progress(task, [ClaimProgress.return_broken_cells.add({cell_id})])
            continue
        log.event("scooters.courier.return_cell_opened", cabinet_id=task.cabinet_id, cell_id=cell_id,
                  claim_id=task.claim_id, battery_id=battery_id)
        return screens.return_opened_items(task.claim_id, cell_id)
    raise _stuck(return_of(task, progress_of(task.claim_id), cabinet))


def report_broken(task: RechargeTask, cell_id: str) -> list[dict]:
    """"Ячейка не открылась" at C: the return cell is broken for this return (never picked again)."""
    progress = progress_of(task.claim_id)
    if progress is None or cell_id not in {progress.return_cell, *(progress.return_broken_cells or ())}:
        raise NotFound("no such cell in this claim's return", code="cell_not_found")
    update_progress(task, [ClaimProgress.return_broken_cells.add({cell_id})])
    locks.release(task.cabinet_id, task.claim_id, cell_id)
    log.event("scooters.courier.return_cell_broken", cabinet_id=task.cabinet_id, cell_id=cell_id,
              claim_id=task.claim_id)
    return status_items(task)


def handover_return(task: RechargeTask, cell_id: str) -> bool:
    """The storekeeper took the returned battery by hand (the cell did not open); False when `cell_id` is no
    broken return cell of this claim."""
    progress = progress_of(task.claim_id)
    if progress is None or cell_id not in (progress.return_broken_cells or ()):
        return False
    update_progress(task, [ClaimProgress.handed_over_cells.add({cell_id})])
    return True


# --- slider check at C (internal) ---------------------------------------------------------------------

def check_return_point(task: RechargeTask) -> None:
    progress = progress_of(task.claim_id)
    state = return_of(task, progress, None)
    if state.handed_over:
        return
    cabinet = read_cabinet(task)
    locks.release_if_closed(cabinet, task.claim_id)
    state = return_of(task, progress, cabinet)
    if state.open:
        raise Conflict("Закройте открытую ячейку шкафа", code="cell_open")
    if state.returned:
        return
    if state.broken and not state.candidates:
        raise _stuck(state)
    raise Conflict("Положите аккумулятор в ячейку шкафа: нажмите «Сдать аккумулятор»", code="battery_not_returned")
