"""What the sender reads and writes in DynamoDB: the profiles' queued events, the licences' line states, the
bindings, KRT's answers. Every write that moves a licence's flow is conditional (lines.py lists them), so a
racing writer, a repeated run or a late answer can never regress what is stored.

One class, so that a benchmark can stand an in-memory store in its place (bench/deptrans.py) and the sender's
own work is measured apart from moto's.
"""
from __future__ import annotations

import datetime as dt
import itertools
from typing import Iterator

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock
from chalicelib.core.dynamo import update_if

from . import sessions
from .lines import Flip, Schedule, change_due_key, recheck_due_key
from .models import DUE_SHARDS, PENDING_SHARDS, DriverProfile, LicenceLine, StatusQueueEntry, shard_of
from .schemas import LineState

PAGE_PER_SHARD = 50
# A licence nobody wrote for this long is forgotten: it was idle (a due one is rewritten every run).
LINE_LIFE = dt.timedelta(days=14)


def _pages(index, shards: int, page_size: int, key_condition=None) -> Iterator[list]:
    """Round-robin pages over a sharded sparse index: up to page_size per shard, oldest first per shard."""
    iterators = [iter(index.query(str(shard), key_condition, page_size=page_size)) for shard in range(shards)]
    while iterators:
        listed = []
        for shard in list(iterators):
            got = list(itertools.islice(shard, page_size))
            if len(got) < page_size:
                iterators.remove(shard)
            listed.extend(got)
        if listed:
            yield listed


def _rev_is(row: LicenceLine, rev: int):
    return LicenceLine.rev.does_not_exist() if not rev else LicenceLine.rev == rev


def mark_due(licence: str) -> None:
    """Something a licence's verdict rests on changed (an ID bound): it is due as a change, if it has lines."""
    update_if(LicenceLine(licence_pd_id=licence), LineStore.due_now(change_due_key(clock.now()), licence, news=False),
              LicenceLine.licence_pd_id.exists())


class LineStore:
    # --- profiles' events (deptrans_status_queue) ------------------------------------------------------
    def pending_profiles(self, skip: set[str]) -> Iterator[list[StatusQueueEntry]]:
        """One pass over the queued profile events, re-read consistently (the index lags the table)."""
        for listed in _pages(StatusQueueEntry.pending, PENDING_SHARDS, PAGE_PER_SHARD):
            keys = [item.driver_key for item in listed if item.driver_key not in skip]
            if not keys:
                continue
            fresh = [item for item in StatusQueueEntry.batch_get(keys, consistent_read=True)
                     if item.pending_key is not None]
            if fresh:
                yield sorted(fresh, key=lambda item: item.version)

    def fold(self, entry: StatusQueueEntry, licence: str | None) -> bool:
        """The profile's newest status into its licence's lines (out of the one it left), then off the queue.
        True when a licence changed. Safe to repeat: each write is conditional, the dequeue comes last."""
        changed = False
        if entry.licence_pd_id and entry.licence_pd_id != licence:
            changed = self._drop_line(entry.licence_pd_id, entry.driver_key)
        if licence:
            changed = self._put_line(licence, entry) or changed
        queued = StatusQueueEntry(driver_key=entry.driver_key)
        where = [StatusQueueEntry.licence_pd_id.set(licence) if licence else StatusQueueEntry.licence_pd_id.remove()]
        if not update_if(queued, where + [StatusQueueEntry.pending_shard.remove(), StatusQueueEntry.pending_key.remove()],
                       StatusQueueEntry.version == entry.version):
            # A newer event came meanwhile: it stays queued; where the line lives is recorded all the same.
            update_if(queued, where, StatusQueueEntry.driver_key.exists())
        return changed

    @staticmethod
    def due_now(due_key: str, licence: str, news: bool = True) -> list:
        """The actions that make a licence due as a change; `news`: a line changed (a flip it causes dates from
        the event, not from when we learnt it: lines.py)."""
        return [LicenceLine.due_shard.set(shard_of(licence, DUE_SHARDS)), LicenceLine.due_key.set(due_key),
                *([LicenceLine.line_news.set(True)] if news else []), LicenceLine.rev.add(1),
                LicenceLine.expires_at.set(clock.now() + LINE_LIFE)]

    def _put_line(self, licence: str, entry: StatusQueueEntry) -> bool:
        line = LicenceLine.lines[entry.driver_key]
        actions = [line.set(entry.version), *self.due_now(change_due_key(entry.event_at), licence)]
        row = LicenceLine(licence_pd_id=licence)
        try:
            return update_if(row, actions, line.does_not_exist() | (line < entry.version))
        except UpdateError as error:
            if "document path" not in str(error):
                raise
        # The licence's first line: the map itself does not exist yet (DynamoDB cannot set a path in it).
        first = [LicenceLine.lines.set({entry.driver_key: entry.version}), *actions[1:]]
        if update_if(row, first, LicenceLine.lines.does_not_exist()):
            return True
        return update_if(row, actions, line.does_not_exist() | (line < entry.version))

    def _drop_line(self, licence: str, profile: str) -> bool:
        line = LicenceLine.lines[profile]
        return update_if(LicenceLine(licence_pd_id=licence),
                       [line.remove(), *self.due_now(change_due_key(clock.now()), licence)], line.exists())

    # --- licences (deptrans_line_states) ---------------------------------------------------------------
    def due_pages(self, before: str, skip: set[str]) -> Iterator[list[LicenceLine]]:
        """One pass over the due licences with a due key below `before` (changes, then re-checks, oldest
        first), re-read consistently; what `skip` names is left out."""
        for listed in _pages(LicenceLine.due, DUE_SHARDS, PAGE_PER_SHARD, LicenceLine.due_key < before):
            keys = [item.licence_pd_id for item in listed if item.licence_pd_id not in skip]
            if not keys:
                continue
            fresh = [row for row in LicenceLine.batch_get(keys, consistent_read=True)
                     if row.due_key is not None and row.due_key < before]
            if fresh:
                yield sorted(fresh, key=lambda row: row.due_key)

    def bindings(self, licences: list[str]) -> dict[str, DriverProfile]:
        return {item.licence_pd_id: item for item in DriverProfile.batch_get(licences)} if licences else {}

    def decide(self, row: LicenceLine, flip: Flip) -> bool:
        """Record the flip KRT is to be told, before telling it: only over the very revision judged."""
        rev = int(row.rev or 0)
        return update_if(LicenceLine(licence_pd_id=row.licence_pd_id), [
            LicenceLine.flip_seq.set(flip.seq), LicenceLine.flip_state.set(flip.state.value),
            LicenceLine.flip_id.set(flip.registry_id), LicenceLine.flip_key.set(flip.key),
            LicenceLine.flip_changed_at.set(flip.changed_at), LicenceLine.line_news.remove(),
            *([LicenceLine.flip_profile.set(flip.profile)] if flip.profile else [LicenceLine.flip_profile.remove()]),
            LicenceLine.rev.set(rev + 1), LicenceLine.expires_at.set(clock.now() + LINE_LIFE),
        ], _rev_is(row, rev))

    def acknowledge(self, row: LicenceLine, flip: Flip, shift, after: Schedule, rev: int) -> None:
        """KRT took the flip: its answer is stored, then the ack (acked_seq only grows). The licence's next due
        mark goes with it when nothing changed since the decision (`rev`)."""
        now = clock.now()
        sessions.record(row.licence_pd_id, flip, shift, now)
        self._ack(row, flip, flip.state, after, rev, now)

    def reject(self, row: LicenceLine, flip: Flip, rev: int) -> None:
        """KRT refused the flip (a 4xx). Refused off_line: nothing of ours is on line at KRT under that ID."""
        now = clock.now()
        if flip.state is LineState.off_line:
            self._ack(row, flip, LineState.off_line, Schedule.AGAIN, rev, now)
            return
        update_if(LicenceLine(licence_pd_id=row.licence_pd_id),
                [LicenceLine.rejected_seq.set(flip.seq), LicenceLine.rev.add(1),
                 *self._schedule(row.licence_pd_id, Schedule.RECHECK, "rejected", now)],
                LicenceLine.flip_seq == flip.seq)

    def _ack(self, row: LicenceLine, flip: Flip, state: LineState, after: Schedule, rev: int,
             now: dt.datetime) -> None:
        item = LicenceLine(licence_pd_id=row.licence_pd_id)
        acked = [LicenceLine.acked_seq.set(flip.seq), LicenceLine.acked_state.set(state.value),
                 LicenceLine.acked_id.set(flip.registry_id), LicenceLine.acked_at.set(now)]
        newer = LicenceLine.acked_seq.does_not_exist() | (LicenceLine.acked_seq < flip.seq)
        if update_if(item, acked + [LicenceLine.rev.set(rev + 1),
                                  *self._schedule(row.licence_pd_id, after, None, now)], newer & _rev_is(row, rev)):
            return
        # The row changed since the decision (a fold, a bind): the ack alone; the licence stays due as it is.
        update_if(item, acked + [LicenceLine.rev.add(1)], newer)

    def settle(self, row: LicenceLine, schedule: Schedule, reason: str | None) -> bool:
        """No flip now: the licence's due mark moves (only over the very revision judged)."""
        rev = int(row.rev or 0)
        actions = [*self._schedule(row.licence_pd_id, schedule, reason, clock.now()),
                   LicenceLine.line_news.remove(), LicenceLine.rev.set(rev + 1)]
        return update_if(LicenceLine(licence_pd_id=row.licence_pd_id), actions, _rev_is(row, rev))

    @staticmethod
    def _schedule(licence: str, schedule: Schedule, reason: str | None, now: dt.datetime) -> list:
        if schedule is Schedule.AGAIN:
            return [LicenceLine.expires_at.set(now + LINE_LIFE)]
        if schedule is Schedule.IDLE:
            return [LicenceLine.due_shard.remove(), LicenceLine.due_key.remove(), LicenceLine.wait_reason.remove(),
                    LicenceLine.expires_at.set(now + LINE_LIFE)]
        return [LicenceLine.due_shard.set(shard_of(licence, DUE_SHARDS)), LicenceLine.due_key.set(recheck_due_key(now)),
                LicenceLine.wait_reason.set(reason) if reason else LicenceLine.wait_reason.remove(),
                LicenceLine.expires_at.set(now + LINE_LIFE)]
