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

import collections
import contextvars
import dataclasses
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from chalicelib.core import clock, http, metrics
from chalicelib.core.errors import AppError, UpstreamRejected, describe
from chalicelib.core.logs import get_logger

from . import caches, krt, lines, verdicts
from .lines import HOLD, ON, SETTLE, Reason, Schedule, Step, Verdict
from .models import LicenceLine
from .schemas import RECHECKS_PER_RUN, SENDER_CONCURRENCY
from .store import LineStore

log = get_logger(__name__)

KRT_FAILURES_TO_STOP = 3
MAX_QUEUED_JOBS = 400  # about two pages of steps waiting for the pool while the next pages are judged
JUDGED_AHEAD = 2  # pages whose lookups run while this thread plans
SETTLES_PER_JOB = 25  # settles are one write each: a job writes a few, sends are a job each
SENT, REJECTED, WAIT, SETTLED, CHANGED = "sent", "rejected", "wait", "settled", "changed"
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
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="krt") as pool, \
            ThreadPoolExecutor(max_workers=JUDGED_AHEAD, thread_name_prefix="judge") as judges:
        while not state.over():
            folded = _fold_pass(store, state, pool)
            flipped = _due_pass(store, state, pool, judges, before)
            state.count("passes")
            if not (folded or flipped):
                break  # one more pass would only find what waits
    return _report(state)


def _submit(pool: ThreadPoolExecutor, fn, *args):
    """Run on the pool in this thread's context (context variables, e.g. tracing, follow the work)."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


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
            jobs.append(_submit(pool, store.fold, entry, licence))  # one profile per entry: no two folds collide
        for job in jobs:
            state.count("folded" if job.result() else "folded_stale")
        moved = moved or bool(jobs)
    return moved


def _due_pass(store: LineStore, state: _Run, pool: ThreadPoolExecutor, judges: ThreadPoolExecutor,
              before: str) -> bool:
    """One pass over the due licences; True if anything moved (see _settle). The next pages are judged (their
    lookups wait on the network) while this thread plans one and the steps of earlier ones run; it waits only
    when MAX_QUEUED_JOBS are not done yet. A licence is never planned while a job of its own is in flight."""
    moved = False
    pages = iter(store.due_pages(before, state.held))
    judging: collections.deque = collections.deque()  # (page, Future of its verdicts), in order
    in_flight: collections.deque[dict] = collections.deque()  # pages whose steps were submitted, oldest first
    busy: set[str] = set()
    while _judge_ahead(pages, judging, judges, store, state) or judging:
        if state.over():
            break
        page, judged = judging.popleft()
        page = [row for row in page if row.licence_pd_id not in busy]
        jobs = _handle(page, judged.result(), pool, store, state)
        busy.update(jobs)
        in_flight.append(jobs)
        while in_flight and (_done(in_flight[0]) or sum(map(len, in_flight)) > MAX_QUEUED_JOBS):
            moved = _settle(in_flight.popleft(), state, busy) or moved
    for _, judged in judging:
        judged.cancel()
    while in_flight:
        moved = _settle(in_flight.popleft(), state, busy) or moved
    return moved


def _judge_ahead(pages, judging: collections.deque, judges: ThreadPoolExecutor, store: LineStore,
                 state: _Run) -> bool:
    """Keep JUDGED_AHEAD pages being judged; False once the pass has nothing more to read."""
    while len(judging) < JUDGED_AHEAD:
        page = next(pages, None)
        if page is None or state.over():
            return False
        if state.rechecks_left <= 0 and all(row.due_key.startswith("1#") for row in page):
            return False  # each shard is read in key order, changes first: only re-checks are left
        page = [row for row in page if state.take(row)]
        if page:
            judging.append((page, _submit(judges, verdicts.judge, page, store)))
    return True


def _done(jobs: dict) -> bool:
    return all(future.done() for *_, future in jobs.values())


def _handle(page: list[LicenceLine], judged: dict, pool: ThreadPoolExecutor, store: LineStore,
            state: _Run) -> dict:
    """Plan each licence of a judged page and hand the steps to the pool: their writes and KRT calls run there,
    one job per send, settles in chunks. licence -> (row, verdict, step, Future of its outcome)."""
    now = clock.now()
    jobs: dict = {}
    settles: list = []
    for row in page:
        verdict = judged[row.licence_pd_id]
        step = lines.plan(row, verdict, now)
        if step.action == HOLD:
            state.held.add(row.licence_pd_id)
            state.count("held")
            state.note(row, verdict, lines.told(row)[0] is ON, step.reason)
        elif step.action == SETTLE:
            settles.append((row, verdict, step))
        else:
            jobs[row.licence_pd_id] = (row, verdict, step, _submit(pool, _take_step, store, row, step, state))
    for start in range(0, len(settles), SETTLES_PER_JOB):
        chunk = settles[start:start + SETTLES_PER_JOB]
        future = _submit(pool, _settle_chunk, store, [(row, step) for row, _, step in chunk], state)
        for index, (row, verdict, step) in enumerate(chunk):
            jobs[row.licence_pd_id] = (row, verdict, step, _Part(future, index))
    return jobs


class _Part:
    """One licence's outcome inside a chunk's future."""

    def __init__(self, future, index: int) -> None:
        self.future, self.index = future, index

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> str:
        return self.future.result()[self.index]


def _settle_chunk(store: LineStore, chunk: list, state: _Run) -> list[str]:
    return [_take_step(store, row, step, state) for row, step in chunk]


def _take_step(store: LineStore, row: LicenceLine, step: Step, state: _Run) -> str:
    if step.action == SETTLE:
        if not store.settle(row, step.schedule, step.reason.value if step.reason else None):
            state.count("changed_meanwhile")
            return CHANGED
        state.count(step.schedule.value)
        return SETTLED
    if state.over():
        return WAIT
    if step.new and not store.decide(row, step.flip):
        state.count("changed_meanwhile")  # written since it was read: judged again next pass
        return CHANGED
    return _send(store, row, step, int(row.rev or 0) + (1 if step.new else 0), state)


def _settle(jobs: dict, state: _Run, busy: set[str]) -> bool:
    """Wait for a page's jobs and note where each licence stands; True if a flip went out or was refused, or
    a licence changed while it was judged (the next pass judges it again)."""
    moved = False
    for licence, (row, verdict, step, future) in jobs.items():
        outcome = future.result()
        busy.discard(licence)
        krt_has_on = lines.told(row)[0] is ON
        if outcome == SETTLED:
            state.note(row, verdict, krt_has_on, step.reason)
        elif outcome == WAIT:
            state.held.add(licence)
            state.note(row, verdict, krt_has_on, Reason.krt)
        elif outcome == CHANGED:
            moved = True
        else:
            moved = True
            now_on = outcome == SENT and step.flip.state is ON
            state.note(row, verdict, now_on, Reason.rejected if outcome == REJECTED else verdict.reason)
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
