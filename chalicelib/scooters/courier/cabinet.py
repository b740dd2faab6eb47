"""The courier at the cabinet, point A (design doc 003, part 3, pickup_arrived): the battery_exchange screens in
pickup mode, the cell the service picks, broken cells, the storekeeper's hand-over, and the slider check "Забрал
все аккумуляторы". Also what the return at C (returns.py) shares: reading the cabinet and opening a cell.

A booked cell is
- taken      when the cabinet reports it without its battery and closed (its sensor: a battery taken out
             closes the cell by itself); if the cabinet cannot be read, a cell it reported opened for this
             courier counts as taken (the screen's counters only; the slider check always asks the cabinet);
- broken     when the courier reported it ("Ячейка не открылась") or the cabinet refused to open it; never
             picked again. A broken cell is done once the storekeeper's hand-over is noted;
- open       when the cabinet reports it open.

Errors of the cabinet call: a timeout is 408 `cabinet_timeout` (the app shows "Повторите еще раз"; the lock is
kept, since the cell may have opened, and the retry by the same courier opens the same cell); a failing
cabinets service is 503 `cabinet_manual_mode` (the doc: manual mode); another courier's open cell is 409
`cabinet_busy` (locks.py).
"""
from __future__ import annotations

import dataclasses

from chalicelib.core.errors import AppError, Conflict, NotFound
from chalicelib.core.logs import get_logger

from ..recharge.models import RechargeTask
from . import locks
from . import screens
from . import upstreams
from .authority import progress_of, update_progress
from .models import ClaimProgress

log = get_logger(__name__)


class CabinetTimeout(AppError):
    status = 408
    code = "cabinet_timeout"


class CabinetManualMode(AppError):
    status = 503
    code = "cabinet_manual_mode"


def timeout() -> CabinetTimeout:
    return CabinetTimeout("Шкаф не ответил. Повторите ещё раз")


def manual_mode() -> CabinetManualMode:
    return CabinetManualMode("the cabinets service is failing: manual mode")


def require_booking(task: RechargeTask) -> None:
    if not task.cabinet_id or not task.book_id:
        raise Conflict("the task has no battery booked", code="no_booking")


def read_cabinet(task: RechargeTask) -> upstreams.Cabinet:
    try:
        return upstreams.cabinet_cells(task.cabinet_id)
    except upstreams.CabinetTimeout:
        raise timeout() from None
    except upstreams.CabinetDown:
        raise manual_mode() from None


def cabinet_or_none(task: RechargeTask) -> upstreams.Cabinet | None:
    try:
        return upstreams.cabinet_cells(task.cabinet_id)
    except (upstreams.CabinetTimeout, upstreams.CabinetDown):
        log.warning_event("scooters.courier.cabinet_unread", task_id=task.task_id)
        return None


def open_cell(task: RechargeTask, cabinet: upstreams.Cabinet, cell_id: str) -> bool:
    """Take the cabinet's lock and open `cell_id`: True when open, False when the cabinet says it will not open
    (broken: the lock is released); raises the courier's 408 / 409 / 503 otherwise."""
    locks.acquire(cabinet, task.claim_id, cell_id)
    try:
        upstreams.open_cell(task.cabinet_id, task.book_id, cell_id)
    except upstreams.CellNotOpened:
        locks.release(task.cabinet_id, task.claim_id, cell_id)
        log.warning_event("scooters.courier.cell_not_opened", cabinet_id=task.cabinet_id, cell_id=cell_id)
        return False
    except upstreams.CabinetTimeout:
        log.warning_event("scooters.courier.cabinet_timeout", cabinet_id=task.cabinet_id, cell_id=cell_id)
        raise timeout() from None
    except upstreams.CabinetBusy:
        locks.release(task.cabinet_id, task.claim_id, cell_id)
        raise locks.busy() from None
    except upstreams.CellNotBooked:
        locks.release(task.cabinet_id, task.claim_id, cell_id)
        raise Conflict("Ячейка больше не забронирована. Обратитесь к кладовщику", code="cell_not_booked") from None
    except upstreams.CabinetDown:
        locks.release(task.cabinet_id, task.claim_id, cell_id)
        raise manual_mode() from None
    log.event("scooters.courier.cell_opened", cabinet_id=task.cabinet_id, cell_id=cell_id, claim_id=task.claim_id)
    return True


# --- what the courier has done at A -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Cells:
    booked: list[str]
    done: list[str]  # taken, or broken and handed over by the storekeeper
    open: list[str]  # booked cells the cabinet reports open
    broken_waiting: list[str]  # broken, not handed over yet
    openable: list[str]  # in the order they will be opened

    @property
    def left(self) -> int:
        return len(self.booked) - len(self.done)


def booked_cells(task: RechargeTask, cabinet: upstreams.Cabinet | None) -> list[str]:
    if task.cell_ids:
        return list(task.cell_ids)
    if cabinet is not None and task.book_id:  # the booking did not name its cells: the cabinet does
        return sorted(c.cell_id for c in cabinet.cells.values() if c.book_id == task.book_id)
    return []


def cells_of(task: RechargeTask, progress: ClaimProgress | None, cabinet: upstreams.Cabinet | None) -> Cells:
    opened = set(progress.opened_cells or ()) if progress else set()
    broken = set(progress.broken_cells or ()) if progress else set()
    handed = set(progress.handed_over_cells or ()) if progress else set()
    booked = booked_cells(task, cabinet)
    done, is_open, waiting, openable = [], [], [], []
    for cell_id in booked:
        known = cabinet.cells.get(cell_id) if cabinet is not None else None
        if known is not None:
            taken = not known.has_battery and known.state != "open"
            cell_open = known.state == "open"
            cell_broken = cell_id in broken or known.state == "broken"
        else:
            taken = cell_id in opened and cell_id not in broken
            cell_open = False
            cell_broken = cell_id in broken
        if taken or (cell_broken and cell_id in handed):
            done.append(cell_id)
        elif cell_open:
            is_open.append(cell_id)
        elif cell_broken:
            waiting.append(cell_id)
        else:
            openable.append(cell_id)
    return Cells(booked=booked, done=done, open=is_open, broken_waiting=waiting, openable=openable)


# --- the pickup screens (driver) ----------------------------------------------------------------------

def status_items(task: RechargeTask) -> list[dict]:
    cabinet = cabinet_or_none(task)
    if cabinet is not None:
        locks.release_if_closed(cabinet, task.claim_id)
    return screens.status_items(task.claim_id, cells_of(task, progress_of(task.claim_id), cabinet))


def open_next(task: RechargeTask) -> list[dict]:
    """Open the next booked cell for the courier (the service picks it); the screen with the two buttons."""
    cabinet = read_cabinet(task)
    cells = cells_of(task, progress_of(task.claim_id), cabinet)
    if cells.open:  # a retry while the courier's cell is open: the same cell, nothing opened twice
        return screens.opened_items(task.claim_id, cells.open[0])
    if cabinet.open_cell_id is not None:  # a cell outside this booking is open (another courier, by hand)
        raise locks.busy()
    for cell_id in cells.openable:
        if not open_cell(task, cabinet, cell_id):
            update_progress(task, [ClaimProgress.broken_cells.add({cell_id})])
            continue  # broken cells are never picked again: try the next one
        update_progress(task, [ClaimProgress.opened_cells.add({cell_id})])
        return screens.opened_items(task.claim_id, cell_id)
    after = cells_of(task, progress_of(task.claim_id), cabinet)
    if after.left == 0:
        raise Conflict("Все аккумуляторы получены", code="all_taken")
    raise Conflict(screens.storekeeper_text(len(after.broken_waiting)), code="cells_broken")


def report_broken(task: RechargeTask, cell_id: str) -> list[dict]:
    """"Ячейка не открылась": the cell is broken (never picked again); the status screen after it."""
    booked_cell(task, cell_id)
    update_progress(task, [ClaimProgress.broken_cells.add({cell_id})])
    locks.release(task.cabinet_id, task.claim_id, cell_id)
    log.event("scooters.courier.cell_broken", cabinet_id=task.cabinet_id, cell_id=cell_id, claim_id=task.claim_id)
    return status_items(task)


def booked_cell(task: RechargeTask, cell_id: str) -> None:
    booked = list(task.cell_ids or ())
    if not booked:  # the booking did not name its cells: ask the cabinet which are ours
        booked = booked_cells(task, read_cabinet(task))
    if cell_id not in booked:
        raise NotFound("no such cell in this claim's booking", code="cell_not_found")


def handover_pickup(task: RechargeTask, cell_id: str) -> None:
    """The storekeeper handed the battery of a broken booked cell to the courier by hand."""
    booked_cell(task, cell_id)
    progress = progress_of(task.claim_id)
    if progress is None or cell_id not in (progress.broken_cells or ()):
        raise Conflict("the cell is not marked broken", code="cell_not_broken")
    update_progress(task, [ClaimProgress.handed_over_cells.add({cell_id})])


# --- slider check at the cabinet (internal) -----------------------------------------------------------

def check_cabinet_point(task: RechargeTask) -> None:
    require_booking(task)
    cabinet = read_cabinet(task)
    locks.release_if_closed(cabinet, task.claim_id)
    cells = cells_of(task, progress_of(task.claim_id), cabinet)
    if cells.open:
        raise Conflict("Закройте открытую ячейку шкафа", code="cell_open")
    if cells.left == 0:
        return
    if len(cells.broken_waiting) == cells.left:
        raise Conflict(screens.storekeeper_text(cells.left), code="cells_broken")
    raise Conflict(f"Заберите все аккумуляторы: осталось {cells.left}", code="batteries_left")
