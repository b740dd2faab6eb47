"""The courier at the cabinet (design doc 003, part 3, pickup_arrived): the battery_exchange screens, the cell
the service picks, broken cells, the storekeeper's hand-over, and the slider check "Забрал все аккумуляторы".

A booked cell is
- taken      when the cabinet reports it without its battery and closed (its sensor: a battery taken out
             closes the cell by itself); if the cabinet cannot be read, a cell it reported opened for this
             courier counts as taken (the screen's counters only; the slider check always asks the cabinet);
- broken     when the courier reported it ("Ячейка не открылась") or the cabinet refused to open it; never
             picked again. A broken cell is done once the storekeeper's hand-over is noted;
- open       when the cabinet reports it open.

One cell per cabinet is open at a time. The cabinet enforces it (409), and we take a lock row per cabinet
(courier_models.CabinetLock) before asking it, so two couriers pressing at once get one cell and one 409
without both reaching the cabinet. The lock is released when its cell is seen closed (status, open, the slider
check) or reported broken; a lock whose cell the cabinet shows closed and which is older than STALE_AFTER
(longer than any cabinet call) is taken over; LOCK_SECONDS bounds it when nobody looks.

Errors of the cabinet call: a timeout is 408 `cabinet_timeout` (the app shows "Повторите еще раз"; the lock is
kept, since the cell may have opened, and the retry by the same courier opens the same cell); a failing
cabinets service is 503 `cabinet_manual_mode` (the doc: manual mode); another courier's open cell is 409
`cabinet_busy`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from chalicelib.core import clock
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import AppError, Conflict, NotFound
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import is_live

from . import courier_screens as screens
from . import courier_upstreams as upstreams
from .courier import claim_task, performer_task, progress_of, update_progress
from .courier_models import CabinetLock, CourierProgress
from .models import RechargeTask

log = get_logger(__name__)

LOCK_SECONDS = 180
STALE_AFTER_SECONDS = 10


class CabinetTimeout(AppError):
    status = 408
    code = "cabinet_timeout"


class CabinetManualMode(AppError):
    status = 503
    code = "cabinet_manual_mode"


def _busy() -> Conflict:
    return Conflict("Ячейку шкафа сейчас открыл другой курьер. Дождитесь своей очереди", code="cabinet_busy")


# --- what the courier has done at the cabinet ---------------------------------------------------------

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


def _booked(task: RechargeTask, cabinet: upstreams.Cabinet | None) -> list[str]:
    if task.cell_ids:
        return list(task.cell_ids)
    if cabinet is not None and task.book_id:  # the booking did not name its cells: the cabinet does
        return sorted(c.cell_id for c in cabinet.cells.values() if c.book_id == task.book_id)
    return []


def cells_of(task: RechargeTask, progress: CourierProgress | None, cabinet: upstreams.Cabinet | None) -> Cells:
    opened = set(progress.opened_cells or ()) if progress else set()
    broken = set(progress.broken_cells or ()) if progress else set()
    handed = set(progress.handed_over_cells or ()) if progress else set()
    booked = _booked(task, cabinet)
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


def _require_booking(task: RechargeTask) -> None:
    if not task.cabinet_id or not task.book_id:
        raise Conflict("the task has no battery booked", code="no_booking")


def _cabinet_or_raise(task: RechargeTask) -> upstreams.Cabinet:
    try:
        return upstreams.cabinet_cells(task.cabinet_id)
    except upstreams.CabinetTimeout:
        raise CabinetTimeout("Шкаф не ответил. Повторите ещё раз") from None
    except upstreams.CabinetDown:
        raise CabinetManualMode("the cabinets service is failing: manual mode") from None


def _cabinet_or_none(task: RechargeTask) -> upstreams.Cabinet | None:
    try:
        return upstreams.cabinet_cells(task.cabinet_id)
    except (upstreams.CabinetTimeout, upstreams.CabinetDown):
        log.warning_event("scooters.courier.cabinet_unread", task_id=task.task_id)
        return None


# --- the per-cabinet lock -----------------------------------------------------------------------------

def _lock_of(cabinet_id: str) -> CabinetLock | None:
    try:
        lock = CabinetLock.get(cabinet_id, consistent_read=True)
    except DoesNotExist:
        return None
    return lock if is_live(lock.expires_at) else None


def _acquire(task: RechargeTask, cabinet: upstreams.Cabinet, cell_id: str) -> None:
    """Hold the cabinet's lock for `cell_id`, or raise 409 cabinet_busy."""
    now = clock.now()
    mine = CabinetLock(task.cabinet_id, holder=task.task_id, cell_id=cell_id, acquired_at=now,
                       expires_at=now + dt.timedelta(seconds=LOCK_SECONDS))
    free_or_mine = (CabinetLock.cabinet_id.does_not_exist() | (CabinetLock.expires_at <= now)
                    | (CabinetLock.holder == task.task_id))
    if _put(mine, free_or_mine):
        return
    held = _lock_of(task.cabinet_id)
    if held is None:  # expired or released since: one more try
        if _put(mine, free_or_mine):
            return
        raise _busy()
    stale = (held.acquired_at <= now - dt.timedelta(seconds=STALE_AFTER_SECONDS)
             and cabinet.open_cell_id != held.cell_id)
    if stale and _put(mine, (CabinetLock.holder == held.holder) & (CabinetLock.cell_id == held.cell_id)
                      & (CabinetLock.acquired_at == held.acquired_at)):
        log.event("scooters.courier.lock_taken_over", cabinet_id=task.cabinet_id, task_id=task.task_id)
        return
    log.event("scooters.courier.cabinet_busy", cabinet_id=task.cabinet_id, task_id=task.task_id)
    raise _busy()


def _put(lock: CabinetLock, condition) -> bool:
    try:
        lock.save(condition=condition)
        return True
    except PutError as error:
        if not condition_failed(error):
            raise
        return False


def _release(cabinet_id: str, task_id: str, cell_id: str | None = None) -> None:
    condition = CabinetLock.holder == task_id
    if cell_id is not None:
        condition &= CabinetLock.cell_id == cell_id
    try:
        CabinetLock(cabinet_id).delete(condition=condition)
    except DeleteError as error:
        if not condition_failed(error):
            raise


def _release_if_closed(task: RechargeTask, cabinet: upstreams.Cabinet) -> None:
    held = _lock_of(task.cabinet_id)
    if held is not None and held.holder == task.task_id and cabinet.open_cell_id != held.cell_id:
        _release(task.cabinet_id, task.task_id, held.cell_id)


# --- screens (driver) ---------------------------------------------------------------------------------

def status_screen(identity: DriverIdentity, claim_id: str) -> list[dict]:
    task = performer_task(identity, claim_id)
    _require_booking(task)
    return _status_items(task, claim_id)


def _status_items(task: RechargeTask, claim_id: str) -> list[dict]:
    cabinet = _cabinet_or_none(task)
    if cabinet is not None:
        _release_if_closed(task, cabinet)
    return screens.status_items(claim_id, cells_of(task, progress_of(task.task_id), cabinet))


def open_next(identity: DriverIdentity, claim_id: str) -> list[dict]:
    """Open the next cell for the courier (the service picks it); the screen with the two buttons."""
    task = performer_task(identity, claim_id)
    _require_booking(task)
    cabinet = _cabinet_or_raise(task)
    cells = cells_of(task, progress_of(task.task_id), cabinet)
    if cells.open:  # a retry while the courier's cell is open: the same cell, nothing opened twice
        return screens.opened_items(claim_id, cells.open[0])
    if cabinet.open_cell_id is not None:  # a cell outside this booking is open (another courier, by hand)
        raise _busy()
    for cell_id in cells.openable:
        _acquire(task, cabinet, cell_id)
        try:
            upstreams.open_cell(task.cabinet_id, task.book_id, cell_id)
        except upstreams.CellNotOpened:
            update_progress(task, [CourierProgress.broken_cells.add({cell_id})])
            _release(task.cabinet_id, task.task_id, cell_id)
            log.warning_event("scooters.courier.cell_not_opened", cabinet_id=task.cabinet_id, cell_id=cell_id)
            continue  # broken cells are never picked again: try the next one
        except upstreams.CabinetTimeout:
            log.warning_event("scooters.courier.cabinet_timeout", cabinet_id=task.cabinet_id, cell_id=cell_id)
            raise CabinetTimeout("Шкаф не ответил. Повторите ещё раз") from None
        except upstreams.CabinetBusy:
            _release(task.cabinet_id, task.task_id, cell_id)
            raise _busy() from None
        except upstreams.CellNotBooked:
            _release(task.cabinet_id, task.task_id, cell_id)
            raise Conflict("Ячейка больше не забронирована. Обратитесь к кладовщику", code="cell_not_booked") from None
        except upstreams.CabinetDown:
            _release(task.cabinet_id, task.task_id, cell_id)
            raise CabinetManualMode("the cabinets service is failing: manual mode") from None
        update_progress(task, [CourierProgress.opened_cells.add({cell_id})])
        log.event("scooters.courier.cell_opened", cabinet_id=task.cabinet_id, cell_id=cell_id,
                  task_id=task.task_id)
        return screens.opened_items(claim_id, cell_id)
    after = cells_of(task, progress_of(task.task_id), cabinet)
    if after.left == 0:
        raise Conflict("Все аккумуляторы получены", code="all_taken")
    raise Conflict(screens.storekeeper_text(len(after.broken_waiting)), code="cells_broken")


def report_broken(identity: DriverIdentity, claim_id: str, cell_id: str) -> list[dict]:
    """"Ячейка не открылась": the cell is broken (never picked again); the status screen after it."""
    task = performer_task(identity, claim_id)
    _require_booking(task)
    _booked_cell(task, cell_id)
    update_progress(task, [CourierProgress.broken_cells.add({cell_id})])
    _release(task.cabinet_id, task.task_id, cell_id)
    log.event("scooters.courier.cell_broken", cabinet_id=task.cabinet_id, cell_id=cell_id, task_id=task.task_id)
    return _status_items(task, claim_id)


def _booked_cell(task: RechargeTask, cell_id: str) -> None:
    booked = list(task.cell_ids or ())
    if not booked:  # the booking did not name its cells: ask the cabinet which are ours
        cabinet = _cabinet_or_raise(task)
        booked = _booked(task, cabinet)
    if cell_id not in booked:
        raise NotFound("no such cell in this claim's booking", code="cell_not_found")


# --- the storekeeper bot (internal) -------------------------------------------------------------------

def storekeeper_handover(claim_id: str, cell_id: str) -> None:
    """The storekeeper handed the battery of a broken cell to the courier by hand."""
    task = claim_task(claim_id)
    _require_booking(task)
    _booked_cell(task, cell_id)
    progress = progress_of(task.task_id)
    if progress is None or cell_id not in (progress.broken_cells or ()):
        raise Conflict("the cell is not marked broken", code="cell_not_broken")
    update_progress(task, [CourierProgress.handed_over_cells.add({cell_id})])
    log.event("scooters.courier.storekeeper_handover", cabinet_id=task.cabinet_id, cell_id=cell_id,
              task_id=task.task_id)


# --- slider check at the cabinet (internal) -----------------------------------------------------------

def check_cabinet_point(task: RechargeTask) -> None:
    _require_booking(task)
    cabinet = _cabinet_or_raise(task)
    _release_if_closed(task, cabinet)
    cells = cells_of(task, progress_of(task.task_id), cabinet)
    if cells.open:
        raise Conflict("Закройте открытую ячейку шкафа", code="cell_open")
    if cells.left == 0:
        return
    if len(cells.broken_waiting) == cells.left:
        raise Conflict(screens.storekeeper_text(cells.left), code="cells_broken")
    raise Conflict(f"Заберите все аккумуляторы: осталось {cells.left}", code="batteries_left")
