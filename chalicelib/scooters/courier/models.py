"""The courier screens' own tables (design doc 003, part 3). The recharge task lives in recharge/models.py.

- scooters_claim_progress: one item PER CLAIM (a scooter planned again gets a new claim, and a new courier starts
  from nothing: an earlier claim's broken cells or reports never carry over). What happened at its points. Cells
  are string sets, changed only with ADD, so a retried call changes nothing twice:
    opened_cells         booked cells the cabinet reported opened for this courier (the battery is taken)
    broken_cells         booked cells the courier reported "did not open", or the cabinet refused to open;
                         never picked again (a broken cell that had opened counts as broken, not as taken)
    handed_over_cells    broken cells (of the pickup or the return) the storekeeper handled by hand (the bot)
    vehicle_report       "missing" (vehicle_not_found) or "destroyed" (vehicle_destroyed); the first one sticks
    return_cell          the free cell the cabinets service was told holds the returned battery (at C)
    return_broken_cells  free cells that did not open for the return; never picked again
  `performer_*` is who acted (a former courier of a finished claim is told `claim_finished`, a stranger 403).
- scooters_cabinet_locks: one item per cabinet while one of its cells is open for a courier: the cabinet opens
  one cell at a time. Taken with a conditional put (free, expired, or already ours) BEFORE the cabinet is
  asked; released when the cell is seen closed or reported broken; `expires_at` bounds a lock whose holder
  vanished. Reads filter expiry themselves (TTL deletes late).

Kept apart from the task item: the recharge flow writes the task, and a courier's write must never race its
writes or be lost to a whole-item save.
"""
from __future__ import annotations

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UnicodeSetAttribute

from chalicelib.core.storage import EpochSeconds, Table, TableMeta

MISSING, DESTROYED = "missing", "destroyed"


class ClaimProgress(Table):
    class Meta(TableMeta):
        table_name = "scooters_claim_progress"

    claim_id = UnicodeAttribute(hash_key=True)
    task_id = UnicodeAttribute(null=True)
    performer_park_id = UnicodeAttribute(null=True)
    performer_driver_profile_id = UnicodeAttribute(null=True)
    opened_cells = UnicodeSetAttribute(null=True)
    broken_cells = UnicodeSetAttribute(null=True)
    handed_over_cells = UnicodeSetAttribute(null=True)
    vehicle_report = UnicodeAttribute(null=True)
    vehicle_reported_at = EpochSeconds(null=True)
    door_opened_at = EpochSeconds(null=True)
    return_cell = UnicodeAttribute(null=True)
    return_broken_cells = UnicodeSetAttribute(null=True)
    updated_at = EpochSeconds(null=True)
    expires_at = TTLAttribute(null=True)


class CabinetLock(Table):
    class Meta(TableMeta):
        table_name = "scooters_cabinet_locks"

    cabinet_id = UnicodeAttribute(hash_key=True)
    holder = UnicodeAttribute()  # the claim whose courier the cell is open for
    cell_id = UnicodeAttribute()
    acquired_at = EpochSeconds()
    # Epoch seconds, also the TTL: compared in the acquire condition.
    expires_at = TTLAttribute()
