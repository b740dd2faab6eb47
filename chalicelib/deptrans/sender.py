"""The status sender (schedule DeptransStatusSender): profiles' status events -> licences' line states -> KRT.

A run repeats passes until its budget is nearly spent or a pass moves nothing:
1. Fold. The queued profile events (sparse `pending` index of deptrans_status_queue, re-read consistently) go
   into their licences' lines (licence from the driver-profiles cache; a profile that moved leaves the old
   licence). A profile whose licence cannot be looked up (no cached answer, upstream down) waits in the queue.
2. Due licences (sparse `due` index of deptrans_line_states): changes first, then re-checks, oldest first; at
   most deptrans_rechecks_per_run re-checks a run. A page is judged at once (verdicts.py, lookups batched) and
   each licence takes its next step (lines.plan): a flip is decided (a conditional write) and sent on the
   thread pool, or the licence settles (idle, waiting with its reason, reported). Never two sends for one
   licence at once: a licence whose flip is still in flight is left to the next pass.
KRT accepted -> its answer is stored (sessions.py), then the ack. KRT unavailable (timeouts, 5xx, 429 past the
in-process Retry-After cap, no token) -> the flip stays decided and goes again, under its own key, next pass or
run; 3 failures in a row end the run (KRT is down: nothing is lost, it drains when KRT is back). KRT refusing a
flip (a 4xx) -> recorded (lines.py), logged. A crash anywhere leaves conditional writes behind that the next run
takes up: an unacknowledged flip is re-sent with its key (KRT recognises it), a queued event is folded again.

Each run publishes (EMF) what it did, how many licences wait and why, and the product metric: drivers on line in
the regions, how many of them KRT has, and how many it cannot have, by reason (no ID, no position, category,
upstream).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from chalicelib.core import clock, http, metrics
from chalicelib.core.errors import AppError, UpstreamRejected, describe
from chalicelib.core.logs import get_logger

from . import caches, krt, lines, verdicts
from .lines import ON, HOLD, SETTLE, Reason, Schedule, Step, Verdict
from .models import LicenceLine
from .schemas import RECHECKS_PER_RUN, SENDER_CONCURRENCY
from .store import LineStore

log = get_logger(__name__)

KRT_FAILURES_TO_STOP = 3
SENT, REJECTED, WAIT = "sent", "rejected", "wait"
# The product metric's reasons: why a driver on line in the regions is not on line at KRT.
# KRT refusing an on_line is KRT not taking the ID; a flip still on its way counts as the upstream's.
LOST_AS = {Reason.no_id: "no_id", Reason.rejected: "no_id", Reason.no_position: "no_position",
           Reason.category: "category", Reason.upstream: "upstream", Reason.krt: "upstream", None: "upstream"}
LOST_REASONS = ("no_id", "no_position", "category", "upstream")


@dataclasses.dataclass
class _Run:
    deadline: float
    rechecks_left: int
    counts: Counter = dataclasses.field(default_factory=Counter)
    krt_failures_in_row: int = 0
    stopped: bool = False
    profiles_waiting: set[str] = dataclasses.field(default_factory=set)
    held: set[str] = dataclasses.field(default_factory=set)  # licences left alone for the rest of the run
    # licence -> (counts as supply in the regions, KRT has it on line, why not): the last pass that saw it wins
    notes: dict[str, tuple[bool, bool, Reason | None]] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def krt_result(self, ok: bool) -> None:
        with self.lock:
            self.krt_failures_in_row = 0 if ok else self.krt_failures_in_row + 1
            if self.krt_failures_in_row >= KRT_FAILURES_TO_STOP and not self.stopped:
                self.stopped = True
                log.warning_event("deptrans.sender_stopped_krt_down")

    def over(self) -> bool:
        return self.stopped or time.monotonic() >= self.deadline

    def take(self, row: LicenceLine) -> bool:
        """A change is always taken; a re-check while the run's allowance lasts."""
        if not row.due_key.startswith("1#"):
            return True
        if self.rechecks_left <= 0:
            return False
        self.rechecks_left -= 1
        return True

    def note(self, row: LicenceLine, verdict: Verdict, reported: bool, reason: Reason | None) -> None:
        supply = lines.raw_on(row) and verdict.in_regions is not False
        self.notes[row.licence_pd_id] = (supply, reported, None if reported else reason)


def run(deadline: float, store: LineStore | None = None) -> dict:
    """Fold and send until `deadline` (time.monotonic()); returns what the run did, by outcome."""
    store = store or LineStore()
    state = _Run(deadline=deadline, rechecks_left=RECHECKS_PER_RUN.get())
    # Re-checks written during this run sort after this key: a licence is re-checked at most once a run.
    before = lines.recheck_due_key(clock.now())
    concurrency = SENDER_CONCURRENCY.get()
    http.keep_connections(krt.KRT, concurrency)  # a connection per sending thread
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="krt") as pool:
        while not state.over():
            folded = _fold_pass(store, state, pool)
            flipped = _due_pass(store, state, pool, before)
            state.count("passes")
            if not (folded or flipped):
                break  # one more pass would only find what waits
    return _report(state)


def _fold_pass(store: LineStore, state: _Run, pool: ThreadPoolExecutor) -> bool:
    """Fold every queued profile event into its licence; True if any left the queue."""
    moved = False
    for page in store.pending_profiles(state.profiles_waiting):
        if state.over():
            break
        licences = caches.licences([(entry.park_id, entry.driver_id) for entry in page])
        jobs = []
        for entry in page:
            driver = (entry.park_id, entry.driver_id)
            # No answer (cache empty, driver-profiles down): the licence it was folded into last, else it waits.
            licence = licences[driver] if driver in licences else entry.licence_pd_id
            if driver not in licences and licence is None:
                state.profiles_waiting.add(entry.driver_key)
                state.count("profiles_waiting")
                continue
            if licence is None and entry.licence_pd_id is None:
                state.count("profiles_without_licence")
            jobs.append(pool.submit(store.fold, entry, licence))  # one profile per entry: no two folds collide
        for job in jobs:
            state.count("folded" if job.result() else "folded_stale")
        moved = moved or bool(jobs)
    return moved


def _due_pass(store: LineStore, state: _Run, pool: ThreadPoolExecutor, before: str) -> bool:
    """One pass over the due licences; True if any flip went out (or was refused)."""
    moved = False
    in_flight: list[dict] = []  # pages whose sends run: the next page is judged meanwhile
    busy: set[str] = set()
    for page in store.due_pages(before, state.held):
        if state.over():
            break
        if state.rechecks_left <= 0 and all(row.due_key.startswith("1#") for row in page):
            break  # each shard is read in key order, changes first: only re-checks are left
        page = [row for row in page if row.licence_pd_id not in busy and state.take(row)]
        if not page:
            continue
        sends = _handle(page, store, pool, state)
        busy.update(sends)
        in_flight.append(sends)
        if len(in_flight) > 1:
            moved = _settle(in_flight.pop(0), state, busy) or moved
    for sends in in_flight:
        moved = _settle(sends, state, busy) or moved
    return moved


def _handle(page: list[LicenceLine], store: LineStore, pool: ThreadPoolExecutor, state: _Run) -> dict:
    """Judge a page and take each licence's step; the sends go to the pool. licence -> (row, verdict, step, Future)."""
    now = clock.now()
    judged = verdicts.judge(page, store)
    sends: dict = {}
    for row in page:
        verdict = judged[row.licence_pd_id]
        step = lines.plan(row, verdict, now)
        krt_has_on = lines.told(row)[0] is ON
        if step.action == HOLD:
            state.held.add(row.licence_pd_id)
            state.count("held")
            state.note(row, verdict, krt_has_on, step.reason)
        elif step.action == SETTLE:
            reason = step.reason.value if step.reason else None
            state.count(step.schedule.value if store.settle(row, step.schedule, reason) else "changed_meanwhile")
            state.note(row, verdict, krt_has_on, step.reason)
        elif step.new and not store.decide(row, step.flip):
            state.count("changed_meanwhile")  # written since it was read: judged again next pass
        else:
            rev = int(row.rev or 0) + (1 if step.new else 0)
            sends[row.licence_pd_id] = (row, verdict, step, pool.submit(_send, store, row, step, rev, state))
    return sends


def _settle(sends: dict, state: _Run, busy: set[str]) -> bool:
    """Wait for a page's sends and note where each licence stands; True if any flip went out or was refused."""
    moved = False
    for licence, (row, verdict, step, future) in sends.items():
        outcome = future.result()
        busy.discard(licence)
        if outcome == WAIT:
            state.held.add(licence)
            state.note(row, verdict, lines.told(row)[0] is ON, Reason.krt)
            continue
        moved = True
        now_on = outcome == SENT and step.flip.state is ON
        reason = Reason.rejected if outcome == REJECTED else verdict.reason
        state.note(row, verdict, now_on, reason)
    return moved


def _send(store: LineStore, row: LicenceLine, step: Step, rev: int, state: _Run) -> str:
    if state.over():
        return WAIT
    flip = step.flip
    try:
        shift = krt.report_line_state(flip.registry_id, flip.state, flip.changed_at, flip.key)
    except UpstreamRejected as error:
        state.krt_result(True)
        log.warning_event("deptrans.krt_rejected", profile=flip.profile, state=flip.state.value,
                          status=error.upstream_status)
        store.reject(row, flip, rev)
        state.count("rejected")
        return REJECTED
    except AppError as error:
        state.krt_result(False)
        state.count("krt_unavailable")
        log.warning_event("deptrans.krt_unavailable", error=describe(error))
        return WAIT
    state.krt_result(True)
    try:
        store.acknowledge(row, flip, shift, step.schedule or Schedule.AGAIN, rev)
    except Exception as error:  # KRT has it; the flip stays decided and its re-send is recognised by its key
        log.error_event("deptrans.sent_not_recorded", error=describe(error))
        state.count("not_recorded")
        return WAIT
    state.count("sent_" + flip.state.value)
    return SENT


def _report(state: _Run) -> dict:
    result = dict(state.counts)
    waiting, lost = Counter(), Counter()
    supply = reported = 0
    for in_supply, on_at_krt, reason in state.notes.values():
        if reason is not None and not on_at_krt:
            waiting[reason.value] += 1
        if in_supply:
            supply += 1
            reported += on_at_krt
            if not on_at_krt:
                lost[LOST_AS[reason]] += 1
    result.update({f"waiting_{name}": n for name, n in waiting.items()})
    result.update(supply_on_line=supply, supply_reported=reported,
                  **{f"supply_lost_{name}": n for name, n in lost.items()})
    result["stopped_krt_down"] = state.stopped
    log.event("deptrans.sender_run", **result, metrics=metrics.counts("deptrans", {
        "ChangesSent": result.get("sent_on_line", 0) + result.get("sent_off_line", 0),
        "ChangesRejected": result.get("rejected", 0), "KrtFailures": result.get("krt_unavailable", 0),
        "SenderStoppedKrtDown": int(state.stopped), "WaitingTotal": sum(waiting.values()),
        **{f"Waiting{_camel(reason.value)}": waiting.get(reason.value, 0) for reason in Reason},
        "SupplyOnLine": supply, "SupplyReported": reported,
        **{f"SupplyLost{_camel(name)}": lost.get(name, 0) for name in LOST_REASONS}}))
    return result


def _camel(name: str) -> str:
    return name.title().replace("_", "")
