"""The status sender (schedule DeptransStatusSender): queued line-state changes -> KRT -> session statuses.

A run drains the sparse `pending` index of deptrans_status_queue, oldest first, page by page, until its budget
is nearly spent. The index is eventually consistent, so every page is re-read from the table with a
consistent BatchGetItem and only what the table says is queued is handled.

Per entry:
- KRT cares about line state only (online/busy = on line, offline = off line). A change that does not flip
  the line state KRT was last told (`sent_line`) is dropped without a call. An "off line" for a driver KRT
  never saw on line (from us) is likewise nothing to say.
- Going off line after KRT saw the driver on line is always sent, wherever the driver is by then, to the
  registry ID that on-line change went to (`sent_id`): no filter and no lookup stands in its way.
- Coming on line is sent only for a driver with a registry ID bound to his licence (licence from the
  driver-profiles cache), with a configured category (categories cache) and inside the configured region
  (driver-trackstory, live). Outside the filters, without an ID or without a licence: dropped, and the next
  on-line event is judged afresh (`sent_line` did not change). An upstream that is down and not covered by a
  cache: the entry waits (stays queued) for a later run.
- KRT accepted -> its answer is stored in deptrans_session_statuses (TTL 1-30 days), then the entry leaves
  the queue only if its version is still the one sent (a newer status that came in meanwhile stays queued;
  `sent_*` records what KRT now knows either way). KRT unavailable (timeouts, 5xx, 429 past the in-process
  Retry-After cap, no token) -> the entry waits; 3 such failures in a row end the run (KRT is down: the queue
  stays as it is and drains when KRT is back). KRT refusing a change outright (a 4xx) drops it, logged.
- Each change has a stable event_id (driver + version): a change re-sent after a crash between KRT's answer
  and our write is recognised by KRT and changes nothing there. So nothing is lost and nothing is sent twice.

KRT calls run on a bounded thread pool (deptrans_sender_concurrency); lookups are batched per page.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock, http, metrics
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import AppError, UpstreamRejected, describe
from chalicelib.core.logs import get_logger

from . import bindings, caches, krt, upstreams
from .feeds import feed_fields
from .models import PENDING_SHARDS, DriverProfile, SessionStatus, StatusQueueEntry
from .schemas import CATEGORIES, REGION, SENDER_CONCURRENCY, SESSION_HISTORY_DAYS, LineState, line_state

log = get_logger(__name__)

PAGE_PER_SHARD = 50
KRT_FAILURES_TO_STOP = 3

SENT, DROPPED, WAIT = "sent", "dropped", "wait"


def event_id(entry: StatusQueueEntry) -> str:
    return hashlib.sha256(f"{entry.driver_key}|{entry.version}".encode()).hexdigest()[:32]


@dataclasses.dataclass
class _Run:
    deadline: float
    counts: Counter = dataclasses.field(default_factory=Counter)
    krt_failures_in_row: int = 0
    stopped: bool = False
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


def run(deadline: float) -> dict:
    """Drain the queue until `deadline` (time.monotonic()); returns what the run did, by outcome."""
    state = _Run(deadline=deadline)
    waiting: set[tuple[str, str]] = set()
    concurrency = SENDER_CONCURRENCY.get()
    http.keep_connections(krt.KRT, concurrency)  # a connection per sending thread
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="krt") as pool:
        while not state.over():
            progressed = False
            in_flight: list[dict] = []  # pages whose sends are running: the next page is prepared meanwhile
            for page in _pending_pages(waiting):
                if state.over():
                    break
                # A driver whose change is still being sent is left to the next pass: deciding his newer
                # change now would read what KRT was told before that send is recorded.
                busy = {key[0] for outcomes in in_flight for key in outcomes}
                page = [entry for entry in page if entry.driver_key not in busy]
                in_flight.append(_process(page, pool, state))
                if len(in_flight) > 1:
                    progressed = _settle(in_flight.pop(0), waiting) or progressed
            for outcomes in in_flight:
                progressed = _settle(outcomes, waiting) or progressed
            if not progressed:
                break  # one more pass would only find what waits
            state.count("passes")
    result = dict(state.counts)
    result["stopped_krt_down"] = state.stopped
    log.event("deptrans.sender_run", **result, metrics=metrics.counts("deptrans", {
        "ChangesSent": result.get("sent_on_line", 0) + result.get("sent_off_line", 0),
        "ChangesDropped": sum(v for k, v in result.items() if k.startswith("dropped_")),
        "ChangesRejected": result.get("rejected", 0), "ChangesWaiting": result.get("waiting", 0),
        "KrtFailures": result.get("krt_unavailable", 0), "SenderStoppedKrtDown": int(state.stopped)}))
    return result


def _settle(outcomes: dict, waiting: set[tuple[str, str]]) -> bool:
    """Wait for a page's sends; remember what waits (skipped for the rest of the run); True if any moved."""
    done = {key: (outcome.result() if isinstance(outcome, Future) else outcome) for key, outcome in outcomes.items()}
    waiting.update(key for key, outcome in done.items() if outcome == WAIT)
    return any(outcome != WAIT for outcome in done.values())


def _pending_pages(waiting: set[tuple[str, str]]) -> Iterator[list[StatusQueueEntry]]:
    """One pass over the pending index: pages of up to PAGE_PER_SHARD from every shard, oldest first per shard,
    re-read consistently from the table; what waits in this run is skipped."""
    shards = [iter(StatusQueueEntry.pending.query(str(shard), page_size=PAGE_PER_SHARD))
              for shard in range(PENDING_SHARDS)]
    while shards:
        listed: list[StatusQueueEntry] = []
        for shard in list(shards):
            got = list(itertools.islice(shard, PAGE_PER_SHARD))
            if len(got) < PAGE_PER_SHARD:
                shards.remove(shard)
            listed.extend(item for item in got if (item.driver_key, item.pending_key) not in waiting)
        if not listed:
            continue
        keys = list(dict.fromkeys(item.driver_key for item in listed))
        fresh = list(StatusQueueEntry.batch_get(keys, consistent_read=True))
        page = [item for item in fresh if item.pending_key is not None
                and (item.driver_key, item.version) not in waiting]
        if page:
            yield sorted(page, key=lambda item: item.version)


def _process(page: list[StatusQueueEntry], pool: ThreadPoolExecutor, state: _Run) -> dict:
    """Decide every entry of the page; the sends go to the pool. (driver_key, version) -> outcome or Future."""
    outcomes: dict = {}
    sends: list[tuple[StatusQueueEntry, str, str]] = []  # (entry, registry id, licence pd_id)
    coming_on: list[StatusQueueEntry] = []
    for entry in page:
        line = line_state(entry.status)
        if entry.sent_line == line.value or (line is LineState.off_line and entry.sent_line != LineState.on_line.value):
            outcomes[(entry.driver_key, entry.version)] = _drop(entry, state, "dropped_no_flip")
        elif line is LineState.off_line:
            sends.append((entry, entry.sent_id, entry.sent_pd_id))
        else:
            coming_on.append(entry)
    decided = _filter_coming_on(coming_on)
    for entry in coming_on:
        key = (entry.driver_key, entry.version)
        reason_or_target = decided[key]
        if reason_or_target == WAIT:
            outcomes[key] = WAIT
            state.count("waiting")
        elif isinstance(reason_or_target, str):
            outcomes[key] = _drop(entry, state, reason_or_target)
        else:
            sends.append((entry, *reason_or_target))
    for entry, deptrans_id, pd_id in sends:
        outcomes[(entry.driver_key, entry.version)] = pool.submit(_send, entry, deptrans_id, pd_id, state)
    return outcomes


def _filter_coming_on(entries: list[StatusQueueEntry]) -> dict:
    """(driver_key, version) -> WAIT, a drop reason, or (registry id, licence pd_id) to send to."""
    result: dict = {}
    if not entries:
        return result
    key = {id(entry): (entry.driver_key, entry.version) for entry in entries}
    driver = {id(entry): (entry.park_id, entry.driver_id) for entry in entries}
    licences = caches.licences([driver[id(e)] for e in entries])
    candidates = []
    for entry in entries:
        if driver[id(entry)] not in licences:
            result[key[id(entry)]] = WAIT
        elif licences[driver[id(entry)]] is None:
            result[key[id(entry)]] = "dropped_no_licence"
        else:
            candidates.append(entry)
    pd_ids = list(dict.fromkeys(licences[driver[id(e)]] for e in candidates))
    bindings = {item.licence_pd_id: item for item in DriverProfile.batch_get(pd_ids)} if pd_ids else {}
    bound = []
    for entry in candidates:
        if licences[driver[id(entry)]] in bindings:
            bound.append(entry)
        else:
            result[key[id(entry)]] = "dropped_no_id"
    if not bound:
        return result
    categories = caches.categories([driver[id(e)] for e in bound])
    wanted = set(CATEGORIES.get())
    in_category = []
    for entry in bound:
        if driver[id(entry)] not in categories:
            result[key[id(entry)]] = WAIT
        elif not wanted & set(categories[driver[id(entry)]]):
            result[key[id(entry)]] = "dropped_category"
        else:
            in_category.append(entry)
    if not in_category:
        return result
    try:
        positions = upstreams.positions([driver[id(e)] for e in in_category])
    except AppError as error:
        log.warning_event("deptrans.trackstory_unavailable", drivers=len(in_category), error=describe(error))
        result.update({key[id(entry)]: WAIT for entry in in_category})
        return result
    region = REGION.get()
    for entry in in_category:
        position = positions.get(driver[id(entry)])
        if position is None:
            result[key[id(entry)]] = "dropped_no_position"
        elif not region.contains(*position):
            result[key[id(entry)]] = "dropped_region"
        else:
            binding = bindings[licences[driver[id(entry)]]]
            _remember_profile(binding, entry)
            result[key[id(entry)]] = (binding.deptrans_id, binding.licence_pd_id)
    return result


def _remember_profile(binding: DriverProfile, entry: StatusQueueEntry) -> None:
    """The feed lists the profiles seen with a licence: a new one (another park) joins it once."""
    if entry.driver_key in (binding.profiles or set()):
        return
    try:
        binding.update(actions=bindings.profile_seen(binding.licence_pd_id, entry.driver_key, clock.now()),
                       condition=DriverProfile.licence_pd_id.exists())
    except UpdateError as error:
        if not condition_failed(error):
            log.warning_event("deptrans.profile_remember_failed", error=describe(error))


def _drop(entry: StatusQueueEntry, state: _Run, reason: str) -> str:
    """Leave the queue without a call, unless a newer status replaced the entry meanwhile."""
    try:
        StatusQueueEntry(driver_key=entry.driver_key).update(
            actions=[StatusQueueEntry.pending_shard.remove(), StatusQueueEntry.pending_key.remove()],
            condition=StatusQueueEntry.version == entry.version,
        )
    except UpdateError as error:
        if not condition_failed(error):
            log.warning_event("deptrans.dequeue_failed", error=describe(error))
            return WAIT
        state.count("replaced")
    state.count(reason)
    return DROPPED


def _send(entry: StatusQueueEntry, deptrans_id: str | None, pd_id: str | None, state: _Run) -> str:
    if state.over():
        return WAIT
    line = line_state(entry.status)
    if not deptrans_id or not pd_id:  # an old entry from before sent_id existed: nothing to address
        return _drop(entry, state, "dropped_no_id")
    try:
        shift = krt.report_line_state(deptrans_id, line, entry.event_at, event_id(entry))
    except UpstreamRejected as error:
        state.krt_result(True)
        log.warning_event("deptrans.krt_rejected", park_id=entry.park_id, driver_id=entry.driver_id,
                          status=error.upstream_status)
        return _drop(entry, state, "rejected")
    except AppError as error:
        state.krt_result(False)
        state.count("krt_unavailable")
        log.warning_event("deptrans.krt_unavailable", error=describe(error))
        return WAIT
    state.krt_result(True)
    try:
        _store_session(entry, line, pd_id, shift)
        _mark_sent(entry, line, deptrans_id, pd_id, state)
    except Exception as error:  # KRT has it; the entry stays queued and its re-send is recognised by event_id
        log.error_event("deptrans.sent_not_recorded", error=describe(error))
        state.count("not_recorded")
        return WAIT
    state.count("sent_" + line.value)
    return SENT


def _store_session(entry: StatusQueueEntry, line: LineState, pd_id: str, shift) -> None:
    now = clock.now()
    change_key = f"{entry.version}#{entry.driver_key}"
    SessionStatus(
        licence_pd_id=pd_id, change_key=change_key, session_status=shift.status, ended_at=shift.ends_at,
        line_state=line.value, changed_at=entry.event_at, park_id=entry.park_id, driver_id=entry.driver_id,
        updated_at=now, expires_at=now + dt.timedelta(days=SESSION_HISTORY_DAYS.get()),
        **feed_fields(pd_id, f"{pd_id}#{change_key}", now),
    ).save()


def _mark_sent(entry: StatusQueueEntry, line: LineState, deptrans_id: str, pd_id: str, state: _Run) -> None:
    told = [StatusQueueEntry.sent_line.set(line.value), StatusQueueEntry.sent_version.set(entry.version),
            StatusQueueEntry.sent_id.set(deptrans_id), StatusQueueEntry.sent_pd_id.set(pd_id)]
    item = StatusQueueEntry(driver_key=entry.driver_key)
    try:
        item.update(actions=told + [StatusQueueEntry.pending_shard.remove(), StatusQueueEntry.pending_key.remove()],
                    condition=StatusQueueEntry.version == entry.version)
        return
    except UpdateError as error:
        if not condition_failed(error):
            raise
    # A newer status arrived during the send: it stays queued; record what KRT knows now.
    state.count("replaced")
    try:
        item.update(actions=told, condition=StatusQueueEntry.sent_version.does_not_exist()
                    | (StatusQueueEntry.sent_version < entry.version))
    except UpdateError as error:
        if not condition_failed(error):
            raise
