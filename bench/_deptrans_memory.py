"""The deptrans sender's storage (chalicelib/deptrans/store.py, LineStore) kept in memory, for bench/deptrans.py:
what the sender itself sustains (folding, judging pages with batched lookups over HTTP, the flow's decisions,
bounded KRT concurrency) measured apart from moto, whose per-call cost is not DynamoDB's.

Same contract as LineStore: pages are fresh copies (as a consistent re-read gives), decisions and settles apply
only over the revision read, acks only move forward. Rows are built as LicenceLine objects on every page, as
BatchGetItem's answer is.
"""
from __future__ import annotations

import threading
import types

from chalicelib.core import clock
from chalicelib.deptrans.lines import Schedule, change_due_key, recheck_due_key
from chalicelib.deptrans.models import LicenceLine, StatusQueueEntry
from chalicelib.deptrans.store import LineStore

PAGE = 200


class MemoryStore(LineStore):
    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}
        self.rows: dict[str, dict] = {}
        self.bound: dict[str, str] = {}
        self.answers = 0
        self.lock = threading.Lock()

    # --- seeding
    def queue_event(self, park_id: str, driver_id: str, status: str, at) -> None:
        key = f"{park_id}/{driver_id}"
        version = f"{clock.utc_text(at)}#{status}"
        self.entries[key] = dict(driver_key=key, park_id=park_id, driver_id=driver_id, status=status,
                                 version=version, event_at=at, pending_key=version, licence_pd_id=None)

    def waiting_licence(self, licence: str, profile: str, at) -> None:
        """A licence on line, not reportable (its due mark a re-check from `at`)."""
        self.rows[licence] = dict(licence_pd_id=licence, lines={profile: f"{clock.utc_text(at)}#online"}, rev=1,
                                  due_key=recheck_due_key(at), wait_reason="no_id")

    # --- LineStore
    def pending_profiles(self, skip):
        todo = sorted((e for e in self.entries.values() if e["pending_key"] and e["driver_key"] not in skip),
                      key=lambda e: e["version"])
        for start in range(0, len(todo), PAGE):
            yield [StatusQueueEntry(**e) for e in todo[start:start + PAGE] if e["pending_key"]]

    def fold(self, entry, licence) -> bool:
        with self.lock:
            changed = False
            if licence:
                row = self.rows.setdefault(licence, dict(licence_pd_id=licence, lines={}, rev=0))
                if row["lines"].get(entry.driver_key, "") < entry.version:
                    row["lines"][entry.driver_key] = entry.version
                    row.update(line_news=True, due_key=change_due_key(entry.event_at), rev=row["rev"] + 1)
                    changed = True
            stored = self.entries[entry.driver_key]
            stored["licence_pd_id"] = licence
            if stored["version"] == entry.version:
                stored["pending_key"] = None
            return changed

    def due_pages(self, before, skip):
        todo = sorted((row["due_key"], licence) for licence, row in self.rows.items()
                      if row.get("due_key") and row["due_key"] < before and licence not in skip)
        for start in range(0, len(todo), PAGE):
            with self.lock:
                page = [LicenceLine(**{**self.rows[licence], "lines": dict(self.rows[licence]["lines"])})
                        for _, licence in todo[start:start + PAGE] if self.rows[licence].get("due_key")]
            if page:
                yield page

    def bindings(self, licences):
        return {pd: types.SimpleNamespace(licence_pd_id=pd, deptrans_id=self.bound[pd])
                for pd in licences if pd in self.bound}

    def decide(self, row, flip) -> bool:
        with self.lock:
            stored = self.rows[row.licence_pd_id]
            if stored["rev"] != int(row.rev or 0):
                return False
            stored.update(flip_seq=flip.seq, flip_state=flip.state.value, flip_id=flip.registry_id, flip_key=flip.key,
                          flip_changed_at=flip.changed_at, flip_profile=flip.profile, line_news=None,
                          rev=stored["rev"] + 1)
            return True

    def acknowledge(self, row, flip, shift, after, rev) -> None:
        with self.lock:
            self.answers += 1  # the session rows
            self._ack(row, flip, flip.state, after, rev, clock.now())

    def reject(self, row, flip, rev) -> None:
        with self.lock:
            self.rows[row.licence_pd_id].update(rejected_seq=flip.seq)

    def _ack(self, row, flip, state, after, rev, now) -> None:
        stored = self.rows[row.licence_pd_id]
        if int(stored.get("acked_seq") or 0) >= flip.seq:
            return
        stored.update(acked_seq=flip.seq, acked_state=state.value, acked_id=flip.registry_id, acked_at=now)
        if stored["rev"] == rev:
            self._move(stored, after, None, now)
        stored["rev"] += 1

    def settle(self, row, schedule, reason) -> bool:
        with self.lock:
            stored = self.rows[row.licence_pd_id]
            if stored["rev"] != int(row.rev or 0):
                return False
            self._move(stored, schedule, reason, clock.now())
            stored.update(line_news=None, rev=stored["rev"] + 1)
            return True

    @staticmethod
    def _move(stored: dict, schedule: Schedule, reason, now) -> None:
        if schedule is Schedule.IDLE:
            stored.update(due_key=None, wait_reason=None)
        elif schedule is Schedule.RECHECK:
            stored.update(due_key=recheck_due_key(now), wait_reason=reason)
