"""One open cell per cabinet (design doc 003: "В одном шкафу нельзя открыть одновременно больше одной ячейки").

The cabinet enforces it (409), and we take a lock row per cabinet (models.CabinetLock) before asking it, so two
couriers pressing at once get one cell and one 409 without both reaching the cabinet. The lock is held for a
claim; it is released when its cell is seen closed (status, open, the slider check) or reported broken; a lock
whose cell the cabinet shows closed and which is older than STALE_AFTER_SECONDS (longer than any cabinet call) is
taken over; LOCK_SECONDS bounds it when nobody looks.
"""
from __future__ import annotations

import datetime as dt

from chalicelib.core import clock
from chalicelib.core.dynamo import delete_if, save_if
from chalicelib.core.errors import Conflict
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import get_live

from .models import CabinetLock
from .upstreams import Cabinet

log = get_logger(__name__)

LOCK_SECONDS = 180
STALE_AFTER_SECONDS = 10


def busy() -> Conflict:
    return Conflict("Ячейку шкафа сейчас открыл другой курьер. Дождитесь своей очереди", code="cabinet_busy")


def lock_of(cabinet_id: str) -> CabinetLock | None:
    return get_live(CabinetLock, cabinet_id, consistent_read=True)


def acquire(cabinet: Cabinet, holder: str, cell_id: str) -> None:
    """Hold the cabinet's lock for `cell_id` on behalf of claim `holder`, or raise 409 cabinet_busy."""
    now = clock.now()
    cabinet_id = cabinet.cabinet_id
    mine = CabinetLock(cabinet_id, holder=holder, cell_id=cell_id, acquired_at=now,
                       expires_at=now + dt.timedelta(seconds=LOCK_SECONDS))
    free_or_mine = (CabinetLock.cabinet_id.does_not_exist() | (CabinetLock.expires_at <= now)
                    | (CabinetLock.holder == holder))
    if save_if(mine, free_or_mine):
        return
    held = lock_of(cabinet_id)
    if held is None:  # expired or released since: one more try
        if save_if(mine, free_or_mine):
            return
        raise busy()
    stale = (held.acquired_at <= now - dt.timedelta(seconds=STALE_AFTER_SECONDS)
             and cabinet.open_cell_id != held.cell_id)
    if stale and save_if(mine, (CabinetLock.holder == held.holder) & (CabinetLock.cell_id == held.cell_id)
                      & (CabinetLock.acquired_at == held.acquired_at)):
        log.event("scooters.courier.lock_taken_over", cabinet_id=cabinet_id, claim_id=holder)
        return
    log.event("scooters.courier.cabinet_busy", cabinet_id=cabinet_id, claim_id=holder)
    raise busy()


def release(cabinet_id: str, holder: str, cell_id: str | None = None) -> None:
    condition = CabinetLock.holder == holder
    if cell_id is not None:
        condition &= CabinetLock.cell_id == cell_id
    delete_if(CabinetLock(cabinet_id), condition)  # False: not ours (any more)


def release_if_closed(cabinet: Cabinet, holder: str) -> None:
    held = lock_of(cabinet.cabinet_id)
    if held is not None and held.holder == holder and cabinet.open_cell_id != held.cell_id:
        release(cabinet.cabinet_id, holder, held.cell_id)
