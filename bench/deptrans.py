"""Benchmark of the deptrans service, in-process on moto (run from the repo root):

    .venv/bin/python bench/deptrans.py            # DEPTRANS_BENCH_PROFILES=20000 for a quicker feed table

1. Status events through the queue handler (Chalice's test client, SQS batches of 10): events per second and
   DynamoDB write calls per batch of 10 (target: at most one conditional write per driver, no reads), for new
   events, replays, and batches where drivers repeat.
2. The sender: changes sent per second by one run, against a fake KRT on loopback answering in 10/50/200 ms
   (target >= 220/s at 50 ms). Twice: with its DynamoDB work on moto (moto's per-call cost, tens of ms here
   under load, not DynamoDB's few ms, caps that figure; its per-call time is printed), and with that work
   served from memory, which shows what the KRT pipeline itself (bounded concurrency, page preparation
   overlapped with sending, trackstory over HTTP) sustains.
3. Feeds: DynamoDB items read per page for a table of 100k profiles (target <= 1.1x the page size).

moto's own speed is not DynamoDB's: quote ratios and call counts; the absolute times are moto's.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import _env  # noqa: E402
from _env import deliver, prepare  # noqa: E402

ROOT = prepare()

from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402
from pynamodb.connection.base import Connection  # noqa: E402

from app import app  # noqa: E402
from chalicelib.core import aws, clock  # noqa: E402
from chalicelib.core.clock import utc_text  # noqa: E402
from chalicelib.deptrans import events, feeds, krt, sender  # noqa: E402
from chalicelib.deptrans.models import (  # noqa: E402
    PENDING_SHARDS, DriverProfile, KrtTokenItem, StatusQueueEntry, driver_key, shard_of,
)

QUEUE = "deptrans_contractor_status_events"
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
PROFILES = int(os.environ.get("DEPTRANS_BENCH_PROFILES", "100000"))
CHANGES = int(os.environ.get("DEPTRANS_BENCH_CHANGES", "600"))
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

class FakeUpstreams(BaseHTTPRequestHandler):
    """KRT (with a latency) and the driver upstreams, on 127.0.0.1, keep-alive."""

    protocol_version = "HTTP/1.1"
    latency = 0.05

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        path = self.path
        if path.endswith("/oauth/token"):
            answer = {"access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600}
        elif path.endswith("/api/v1/line-states"):
            time.sleep(self.latency)
            answer = {"shift": {"status": "active", "ends_at": "2026-11-23T22:00:00Z"}}
        elif path.endswith("/v1/driver/profiles/retrieve"):
            answer = {"profiles": [{**d, "driver_license_pd_id": f"pd-{d['driver_profile_id']}"}
                                   for d in body["drivers"]]}
        elif path.endswith("/v2/aggregation/categories"):
            answer = {"drivers": [{**d, "categories": ["econom"]} for d in body["drivers"]]}
        elif path.endswith("/v2/positions"):
            answer = {"results": [{**d, "position": [37.6, 55.75]} for d in body["drivers"]]}
        else:
            answer = {}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002
        pass


def _serve_fake_upstreams(latency: float, ports) -> None:
    FakeUpstreams.latency = latency
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeUpstreams)
    server.daemon_threads = True
    ports.put(server.server_port)
    server.serve_forever()


def start_fake_upstreams(latency: float):
    """The fake upstreams in a process of their own (as KRT is): they must not share the sender's GIL."""
    import multiprocessing

    ports = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve_fake_upstreams, args=(latency, ports), daemon=True)
    process.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    for name in ("krt", "driver_profiles", "personal", "driver_trackstory", "driver_categories_api"):
        os.environ[f"UPSTREAM_{name.upper()}_URL"] = f"{base}/{name}"
    os.environ["UPSTREAM_READ_TIMEOUT"] = "2.0"
    return process


def seed_changes(count: int) -> None:
    now = clock.now()
    with DriverProfile.batch_write() as batch:
        for n in range(count):
            pd_id = f"pd-bench{n}"
            batch.save(DriverProfile(licence_pd_id=pd_id, deptrans_id=f"ID{n:08d}", profiles={f"park/bench{n}"},
                                     updated_at=now, **feeds.feed_fields(pd_id, pd_id, now)))
    with StatusQueueEntry.batch_write() as batch:
        for n in range(count):
            key, at = driver_key("park", f"bench{n}"), now - dt.timedelta(seconds=60, milliseconds=n)
            version = f"{utc_text(at)}#online"
            batch.save(StatusQueueEntry(driver_key=key, park_id="park", driver_id=f"bench{n}", status="online",
                                        version=version, event_at=at, pending_shard=shard_of(key, PENDING_SHARDS),
                                        pending_key=version, expires_at=at + events.ENTRY_LIFE))


class InMemoryStorage:
    """The sender's DynamoDB work served from memory (pending pages, caches, bindings, writes): what the KRT
    pipeline itself sustains (bounded concurrency, batched trackstory lookups over HTTP, the KRT calls)."""

    def __init__(self, count: int) -> None:
        now = clock.now()
        self.entries = []
        for n in range(count):
            key, at = driver_key("park", f"bench{n}"), now - dt.timedelta(seconds=60, milliseconds=n)
            version = f"{utc_text(at)}#online"
            self.entries.append(StatusQueueEntry(driver_key=key, park_id="park", driver_id=f"bench{n}",
                                                 status="online", version=version, event_at=at, pending_key=version))
        self.bindings = {f"pd-bench{n}": DriverProfile(licence_pd_id=f"pd-bench{n}", deptrans_id=f"ID{n:08d}",
                                                       profiles={f"park/bench{n}"}) for n in range(count)}

    def __enter__(self):
        done: set[tuple[str, str]] = set()
        memory = self

        def pages(waiting):
            todo = [e for e in memory.entries if (e.driver_key, e.version) not in waiting | done]
            for start in range(0, len(todo), sender.PAGE_PER_SHARD * PENDING_SHARDS):
                yield todo[start:start + sender.PAGE_PER_SHARD * PENDING_SHARDS]

        class Bindings:
            @staticmethod
            def batch_get(pd_ids):
                return [memory.bindings[pd_id] for pd_id in pd_ids if pd_id in memory.bindings]

        self.originals = (sender._store_session, sender._mark_sent, sender._pending_pages, sender.DriverProfile,
                          sender.caches.licences, sender.caches.categories)
        sender._store_session = lambda entry, *args: None
        sender._mark_sent = lambda entry, *args: done.add((entry.driver_key, entry.version))
        sender._pending_pages = pages
        sender.DriverProfile = Bindings
        sender.caches.licences = lambda drivers, prefer_fresh=False: {d: f"pd-{d[1]}" for d in drivers}
        sender.caches.categories = lambda drivers: {d: ["econom"] for d in drivers}
        return self

    def __exit__(self, *exc):
        (sender._store_session, sender._mark_sent, sender._pending_pages, sender.DriverProfile,
         sender.caches.licences, sender.caches.categories) = self.originals


def bench_sender() -> list[dict]:
    rows = []
    for latency in (0.010, 0.050, 0.200):
        server = start_fake_upstreams(latency)
        try:
            for free in (False, True):
                fresh_tables()
                aws.client("ssm").put_parameter(Name=krt.credentials_parameter(), Type="SecureString",
                                                Value=krt.dumps_credentials("bench", "bench"), Overwrite=True)
                count = CHANGES if latency < 0.2 or free else CHANGES // 2
                if not free:
                    seed_changes(count)
                KrtTokenItem(name="krt", access_token="bench-token", token_expires_at=time.time() + 3600).save()
                # In a warm Lambda the pending index is read once per page; here the first pages also fill the caches.
                context = InMemoryStorage(count) if free else None
                with Counter() as counter:
                    if context:
                        context.__enter__()
                    try:
                        started = time.perf_counter()
                        result = sender.run(deadline=time.monotonic() + 60)
                        seconds = time.perf_counter() - started
                    finally:
                        if context:
                            context.__exit__(None, None, None)
                sent = result.get("sent_on_line", 0)
                rows.append({"krt_ms": int(latency * 1000), "storage": "memory" if free else "moto",
                             "changes": count, "sent": sent, "seconds": round(seconds, 2),
                             "sent_per_s": round(sent / seconds, 1),
                             "ms_per_dynamodb_call": round(counter.seconds * 1000 / max(1, sum(counter.calls.values())), 2),
                             "concurrency": sender.SENDER_CONCURRENCY.get()})
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


def main() -> None:
    started = time.perf_counter()
    only = os.environ.get("DEPTRANS_BENCH_ONLY", "events,sender,feeds").split(",")
    serialise_moto()
    with mock_aws():
        event_rows = bench_events() if "events" in only else []
        sender_rows = bench_sender() if "sender" in only else []
        feed_rows = bench_feeds() if "feeds" in only else []
    print("status events through deptrans_status_events (batches of 10, moto)")
    print(f"{'events':<42} {'count':>6} {'failed':>6} {'ev/s':>7} {'writes/10':>10} {'reads':>6} {'ms/call':>8}")
    for r in event_rows:
        print(f"{r['events']:<42} {r['count']:>6} {r['failed']:>6} {r['events_per_s']:>7} "
              f"{r['writes_per_batch_of_10']:>10} {r['reads']:>6} {r['ms_per_dynamodb_call']:>8}")
    print()
    print("sender: changes sent per second by one run (fake KRT on loopback)")
    print(f"{'krt ms':>6} {'storage':>8} {'changes':>8} {'sent':>6} {'s':>7} {'sent/s':>8} {'ms/ddb call':>12} {'threads':>8}")
    for r in sender_rows:
        print(f"{r['krt_ms']:>6} {r['storage']:>8} {r['changes']:>8} {r['sent']:>6} {r['seconds']:>7} "
              f"{r['sent_per_s']:>8} {r['ms_per_dynamodb_call']:>12} {r['concurrency']:>8}")
    if sender_rows:
        at50 = next(r for r in sender_rows if r["krt_ms"] == 50 and r["storage"] == "memory")["sent_per_s"]
        print(f"KRT pipeline at 50 ms: {at50}/s (target >= 220/s): {'OK' if at50 >= 220 else 'FAIL'}")
    print()
    print(f"feeds: items read per page, deptrans_profiles with {PROFILES} items")
    print(f"{'from':<12} {'limit':>6} {'returned':>9} {'read':>6} {'ratio':>6} {'queries':>8} {'scans':>6} {'moto ms':>8}")
    for r in feed_rows:
        print(f"{r['from']:<12} {r['limit']:>6} {r['returned']:>9} {r['items_read']:>6} {r['ratio']:>6} "
              f"{r['queries']:>8} {r['scans']:>6} {r['moto_ms']:>8}")
    if feed_rows:
        worst = max(r["ratio"] for r in feed_rows)
        print(f"worst items_read/page = {worst} (target <= 1.1): {'OK' if worst <= 1.1 else 'FAIL'}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
