"""Benchmark of the deptrans service, in-process on moto (run from the repo root):

    .venv/bin/python bench/deptrans.py            # DEPTRANS_BENCH_PROFILES=20000 for a quicker feed table

1. Status events through the queue handler (Chalice's test client, SQS batches of 10): events per second and
   DynamoDB write calls per batch of 10 (target: at most one conditional write per driver, no reads), for new
   events, replays, and batches where drivers repeat.
2. The sender: line-state changes sent per second by one run, against a fake KRT on loopback answering in
   10/50/200 ms (target >= 220/s at 50 ms), each WITH 10k licences waiting to be re-checked in the same run
   (on line, no ID: judged every run, trackstory over HTTP included) and without, side by side. The sender's
   storage is kept in memory there (bench/_deptrans_memory.py, the store's contract): moto's per-call cost,
   tens of ms here under load, is not DynamoDB's few ms. One row on moto shows that bound.
3. Feeds: DynamoDB items read per page for a table of 100k profiles (target <= 1.1x the page size).
4. The status feed's snapshot: rows read per licence when every licence has several answers (target <= 1.1),
   beside the history's size (what a feed over every answer, as before, would read).

moto's own speed is not DynamoDB's: quote ratios and call counts; the absolute times are moto's.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time

import _env  # noqa: E402
from _env import deliver, prepare  # noqa: E402

ROOT = prepare()

from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402
from pynamodb.connection.base import Connection  # noqa: E402

from app import app  # noqa: E402
from _deptrans_memory import MemoryStore  # noqa: E402
from _deptrans_upstreams import start_fake_upstreams  # noqa: E402
from chalicelib.core import aws, clock  # noqa: E402
from chalicelib.core.clock import utc_text  # noqa: E402
from chalicelib.deptrans import caches, events, feeds, krt, sender, sessions  # noqa: E402
from chalicelib.deptrans.lines import Flip, recheck_due_key  # noqa: E402
from chalicelib.deptrans.schemas import CATEGORIES, REGIONS, KrtShift, LineState  # noqa: E402
from chalicelib.deptrans.models import (  # noqa: E402
    DUE_SHARDS, DriverProfile, KrtTokenItem, LicenceLine, SessionHistory, SessionStatus, shard_of,
)

QUEUE = "deptrans_contractor_status_events"
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
PROFILES = int(os.environ.get("DEPTRANS_BENCH_PROFILES", "100000"))
CHANGES = int(os.environ.get("DEPTRANS_BENCH_CHANGES", "2000"))
WAITING = int(os.environ.get("DEPTRANS_BENCH_WAITING", "10000"))
MOTO_CHANGES, MOTO_WAITING = 300, 1000
SNAPSHOT_LICENCES = int(os.environ.get("DEPTRANS_BENCH_LICENCES", "2000"))
ANSWERS = 5
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


class Counter:
    """Every DynamoDB call PynamoDB makes, and the items its Query/Scan calls read."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.items_read = 0
        self.seconds = 0.0
        self._original = Connection._make_api_call
        self._lock = threading.Lock()

    def __enter__(self) -> "Counter":
        counter = self

        def counting(connection, operation, kwargs):
            started = time.perf_counter()
            try:
                answer = counter._original(connection, operation, kwargs)
            finally:
                with counter._lock:
                    counter.calls[operation] = counter.calls.get(operation, 0) + 1
                    counter.seconds += time.perf_counter() - started
            if operation in ("Query", "Scan"):
                with counter._lock:
                    counter.items_read += answer.get("ScannedCount", 0)
            return answer

        Connection._make_api_call = counting
        return self

    def __exit__(self, *exc) -> None:
        Connection._make_api_call = self._original

    def writes(self) -> int:
        return sum(self.calls.get(name, 0) for name in WRITES)


def serialise_moto() -> None:
    """moto's DynamoDB is not thread-safe (a Query iterating a table while another thread writes it raises);
    DynamoDB is. The sender reads its next page while its threads write: serialise moto's operations."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items",
                 "batch_get_item", "batch_write_item"):
        real = getattr(DynamoDBBackend, name)

        def locked(self, *args, _real=real, **kwargs):
            with lock:
                return _real(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def fresh_tables() -> None:
    _env.fresh_tables()
    krt.forget()


# --- 1. status events ------------------------------------------------------------------------------

def bench_events() -> list[dict]:
    fresh_tables()
    rng = random.Random(7)
    new = [{"park_id": "park", "driver_id": f"d{n}", "status": rng.choice(["online", "busy", "offline"]),
            "updated_at": (T0 + dt.timedelta(milliseconds=n)).isoformat()} for n in range(1000)]
    repeating = [{"park_id": "park", "driver_id": f"d{n % 300}", "status": rng.choice(["online", "busy", "offline"]),
                  "updated_at": (T0 + dt.timedelta(seconds=10, milliseconds=n)).isoformat()} for n in range(1000)]
    rows = []
    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
        deliver(client, "deptrans_status_events", QUEUE, new[:10], "warmup")
        for name, bodies in (("new drivers", new[10:]), ("replayed (all duplicates)", new[10:]),
                             ("drivers repeat in a batch (300 drivers)", repeating)):
            with Counter() as counter:
                seconds, failed = deliver(client, "deptrans_status_events", QUEUE, bodies, name)
            batches = -(-len(bodies) // 10)
            rows.append({"events": name, "count": len(bodies), "failed": failed,
                         "events_per_s": round(len(bodies) / seconds, 1),
                         "writes_per_batch_of_10": round(counter.writes() / batches, 2),
                         "reads": sum(counter.calls.get(op, 0) for op in ("GetItem", "BatchGetItem", "Query")),
                         "ms_per_dynamodb_call": round(counter.seconds * 1000 / max(1, sum(counter.calls.values())), 2)})
    return rows


# --- 2. the sender ---------------------------------------------------------------------------------

def seed(store, changes: int, waiting: int) -> None:
    """`changes` profiles with an on-line event of a bound licence, and `waiting` licences already on line but
    not reportable (no ID): due as re-checks, older than the run."""
    now = clock.now()
    for n in range(changes):
        store.queue_event("park", f"bench{n}", "online", now - dt.timedelta(seconds=60, milliseconds=n))
        store.bound[f"pd-bench{n}"] = f"ID{n:08d}"
    for n in range(waiting):
        store.waiting_licence(f"pd-wait{n}", f"park/wait{n}", now - dt.timedelta(minutes=5, milliseconds=n))


class MotoStore(sender.LineStore):
    """The real store on moto, seeded through the same calls."""

    def queue_event(self, park_id, driver_id, status, at) -> None:
        events.apply_events([events.StatusEvent(park_id=park_id, driver_id=driver_id, status=status, updated_at=at)])

    @property
    def bound(self):
        return _Binder()

    def waiting_licence(self, licence, profile, at) -> None:
        LicenceLine(licence_pd_id=licence, lines={profile: f"{utc_text(at)}#online"}, rev=1,
                    due_shard=shard_of(licence, DUE_SHARDS), due_key=recheck_due_key(at), wait_reason="no_id").save()


class _Binder:
    def __setitem__(self, pd_id: str, registry_id: str) -> None:
        now = clock.now()
        DriverProfile(licence_pd_id=pd_id, deptrans_id=registry_id, updated_at=now,
                      **feeds.feed_fields(pd_id, pd_id, now)).save()


def memory_caches():
    """The caches' answers from memory (their DynamoDB table is the store's business, not the pipeline's)."""
    originals = (caches.licences, caches.categories)
    caches.licences = lambda drivers, prefer_fresh=False: {d: f"pd-{d[1]}" for d in drivers}
    caches.categories = lambda drivers: {d: ["econom"] for d in drivers}
    return lambda: setattr(caches, "licences", originals[0]) or setattr(caches, "categories", originals[1])


def _prepared(store, changes: int, waiting: int) -> None:
    aws.client("ssm").put_parameter(Name=krt.credentials_parameter(), Type="SecureString",
                                    Value=krt.dumps_credentials("bench", "bench"), Overwrite=True)
    KrtTokenItem(name="krt", access_token="bench-token", token_expires_at=time.time() + 3600).save()
    seed(store, changes, waiting)


def _run_sender(latency: float, storage: str, store, changes: int, waiting: int) -> dict:
    with Counter() as counter:
        started = time.perf_counter()
        result = sender.run(deadline=time.monotonic() + 120, store=store)
        seconds = time.perf_counter() - started
    sent = result.get("sent_on_line", 0)
    return {"krt_ms": int(latency * 1000), "storage": storage, "changes": changes, "waiting": waiting,
            "sent": sent, "rechecked": result.get("waiting_no_id", 0), "seconds": round(seconds, 2),
            "sent_per_s": round(sent / seconds, 1), "dynamodb_calls": sum(counter.calls.values()),
            "concurrency": sender.SENDER_CONCURRENCY.get()}


def bench_sender_on_moto() -> list[dict]:
    server = start_fake_upstreams(0.050)
    try:
        fresh_tables()
        store = MotoStore()
        _prepared(store, MOTO_CHANGES, MOTO_WAITING)
        return [_run_sender(0.050, "moto", store, MOTO_CHANGES, MOTO_WAITING)]
    finally:
        server.terminate()
        server.join(5)


def bench_sender_in_memory() -> list[dict]:
    """Outside moto: under mock_aws every HTTP call of the process (KRT's, trackstory's) is first matched
    against moto's ~180 AWS URL patterns (~1 ms of CPU a call here), which no Lambda pays. The configs and the
    KRT token are read once under moto, as a warm Lambda has them cached; the store and caches are in memory."""
    rows = []
    for latency in (0.010, 0.050, 0.200):
        for waiting in (0, WAITING):
            server = start_fake_upstreams(latency)
            try:
                store = MemoryStore()
                with mock_aws():
                    fresh_tables()
                    _prepared(store, 0, 0)
                    for definition in (sender.RECHECKS_PER_RUN, sender.SENDER_CONCURRENCY, REGIONS, CATEGORIES):
                        definition.get()
                    krt.access_token()
                seed(store, CHANGES, waiting)
                restore = memory_caches()
                try:
                    rows.append(_run_sender(latency, "memory", store, CHANGES, waiting))
                finally:
                    restore()
            finally:
                server.terminate()
                server.join(5)
    return rows


# --- 3. feeds --------------------------------------------------------------------------------------

def bench_feeds() -> list[dict]:
    fresh_tables()
    now = T0 + dt.timedelta(days=1)
    clock.freeze(now)
    started = time.perf_counter()
    with DriverProfile.batch_write() as batch:
        for n in range(PROFILES):
            moment = T0 + dt.timedelta(milliseconds=n * 300)  # some share a millisecond with no one, all distinct ids
            pd_id = f"pd{n:07d}"
            batch.save(DriverProfile(licence_pd_id=pd_id, deptrans_id=f"ID{n:08d}", profiles={f"p/d{n}"},
                                     updated_at=moment, **feeds.feed_fields(pd_id, pd_id, moment)))
    seeded = time.perf_counter() - started
    rows = []
    for limit, pages in ((100, 3), (1000, 2)):
        cursor = None
        # From the start (a full snapshot) and from the middle (an incremental consumer).
        for label in ("snapshot", "incremental"):
            if label == "incremental":
                middle = f"{int((T0 + dt.timedelta(milliseconds=PROFILES * 150)).timestamp() * 1000):013d}#0"
                cursor = feeds.encode_cursor([middle] * len(feeds.decode_cursor(None)))
            for _ in range(pages):
                with Counter() as counter:
                    page_started = time.perf_counter()
                    page = feeds.read_page(DriverProfile, cursor, limit)
                    seconds = time.perf_counter() - page_started
                cursor = page.cursor
                rows.append({"from": label, "limit": limit, "returned": len(page.items),
                             "items_read": counter.items_read, "ratio": round(counter.items_read / max(1, len(page.items)), 3),
                             "queries": counter.calls.get("Query", 0), "scans": counter.calls.get("Scan", 0),
                             "moto_ms": round(seconds * 1000)})
    clock.freeze(None)
    print(f"(seeded {PROFILES} profiles in {seeded:.0f} s)")
    return rows


# --- 4. status snapshot ---------------------------------------------------------------------------

def bench_snapshot() -> list[dict]:
    """KRT's answers for SNAPSHOT_LICENCES licences, ANSWERS each (recorded as the sender does), then a full
    snapshot of the status feed: rows read per licence; beside it, what a feed over the history would read."""
    fresh_tables()
    start = T0 + dt.timedelta(days=1)
    for n in range(SNAPSHOT_LICENCES):
        for seq in range(1, ANSWERS + 1):
            moment = start + dt.timedelta(seconds=seq * 60, milliseconds=n)
            flip = Flip(seq=seq, state=LineState.on_line if seq % 2 else LineState.off_line, registry_id=f"ID{n:08d}",
                        key=f"k{n}-{seq}", changed_at=moment, profile=f"park/d{n}")
            sessions.record(f"pd{n:06d}", flip, KrtShift(status="active", ends_at=moment + dt.timedelta(hours=12)),
                            moment)
    clock.freeze(start + dt.timedelta(hours=1))
    rows = []
    for limit in (100, 1000):
        cursor, returned, read, pages = None, 0, 0, 0
        while True:
            page = feeds.read_page(SessionStatus, cursor, limit)
            if not page.items:
                break
            cursor, returned, read, pages = page.cursor, returned + len(page.items), read + page.items_read, pages + 1
        rows.append({"limit": limit, "licences": SNAPSHOT_LICENCES, "returned": returned, "read": read,
                     "pages": pages, "per_licence": round(read / SNAPSHOT_LICENCES, 3),
                     "history_rows": sum(1 for _ in SessionHistory.scan())})
    clock.freeze(None)
    return rows


def main() -> None:
    started = time.perf_counter()
    only = os.environ.get("DEPTRANS_BENCH_ONLY", "events,sender,feeds,snapshot").split(",")
    serialise_moto()
    sender_rows = bench_sender_in_memory() if "sender" in only else []
    with mock_aws():
        event_rows = bench_events() if "events" in only else []
        sender_rows += bench_sender_on_moto() if "sender" in only else []
        feed_rows = bench_feeds() if "feeds" in only else []
        snapshot_rows = bench_snapshot() if "snapshot" in only else []
    print("status events through deptrans_status_events (batches of 10, moto)")
    print(f"{'events':<42} {'count':>6} {'failed':>6} {'ev/s':>7} {'writes/10':>10} {'reads':>6} {'ms/call':>8}")
    for r in event_rows:
        print(f"{r['events']:<42} {r['count']:>6} {r['failed']:>6} {r['events_per_s']:>7} "
              f"{r['writes_per_batch_of_10']:>10} {r['reads']:>6} {r['ms_per_dynamodb_call']:>8}")
    print()
    print("sender: changes sent per second by one run that also re-checks the waiting licences (fake KRT on loopback)")
    print(f"{'krt ms':>6} {'storage':>8} {'changes':>8} {'waiting':>8} {'sent':>6} {'rechecked':>10} {'s':>7} "
          f"{'sent/s':>8} {'ddb calls':>10} {'threads':>8}")
    for r in sender_rows:
        print(f"{r['krt_ms']:>6} {r['storage']:>8} {r['changes']:>8} {r['waiting']:>8} {r['sent']:>6} "
              f"{r['rechecked']:>10} {r['seconds']:>7} {r['sent_per_s']:>8} {r['dynamodb_calls']:>10} "
              f"{r['concurrency']:>8}")
    if sender_rows:
        at50 = {r["waiting"]: r["sent_per_s"] for r in sender_rows if r["krt_ms"] == 50 and r["storage"] == "memory"}
        print(f"at 50 ms with {WAITING} waiting: {at50[WAITING]}/s (target >= 220/s): "
              f"{'OK' if at50[WAITING] >= 220 else 'FAIL'}; without them {at50[0]}/s, "
              f"ratio {round(at50[WAITING] / at50[0], 2)}")
    print()
    print(f"feeds: items read per page, deptrans_profiles with {PROFILES} items")
    print(f"{'from':<12} {'limit':>6} {'returned':>9} {'read':>6} {'ratio':>6} {'queries':>8} {'scans':>6} {'moto ms':>8}")
    for r in feed_rows:
        print(f"{r['from']:<12} {r['limit']:>6} {r['returned']:>9} {r['items_read']:>6} {r['ratio']:>6} "
              f"{r['queries']:>8} {r['scans']:>6} {r['moto_ms']:>8}")
    if feed_rows:
        worst = max(r["ratio"] for r in feed_rows)
        print(f"worst items_read/page = {worst} (target <= 1.1): {'OK' if worst <= 1.1 else 'FAIL'}")
    print()
    print(f"status feed snapshot: {SNAPSHOT_LICENCES} licences, {ANSWERS} answers each")
    print(f"{'limit':>6} {'licences':>9} {'returned':>9} {'read':>6} {'pages':>6} {'read/licence':>13} {'history rows':>13}")
    for r in snapshot_rows:
        print(f"{r['limit']:>6} {r['licences']:>9} {r['returned']:>9} {r['read']:>6} {r['pages']:>6} "
              f"{r['per_licence']:>13} {r['history_rows']:>13}")
    if snapshot_rows:
        worst = max(r["per_licence"] for r in snapshot_rows)
        history = snapshot_rows[0]["history_rows"] / SNAPSHOT_LICENCES
        print(f"snapshot rows read per licence = {worst} (target <= 1.1): {'OK' if worst <= 1.1 else 'FAIL'}; "
              f"a feed over the history would read {history:.1f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
