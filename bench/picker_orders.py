"""Benchmark of the picker orders service, in-process on moto (run from the repo root):

    .venv/bin/python bench/picker_orders.py

1. The fallback job picker_orders_updater: DynamoDB items read per run against the number of stale orders,
   in a table holding 10x more fresh orders (half in the listed status, half in an unlisted one).
   Target: items read / stale orders <= 1.1 (it must not grow with the table).
2. Events through the queue handler (Chalice's test client, SQS batches of 10): events per second and
   DynamoDB calls per event, for events in order, replays, and events arriving out of order.

moto's own speed is not DynamoDB's: quote the ratios and call counts, not the absolute times.
"""
from __future__ import annotations

import datetime as dt
import random
import sys
import time

# As in a warm Lambda: configs are cached, not read per event.
from _env import deliver, fresh_tables, prepare  # noqa: E402

ROOT = prepare()

from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402
from pynamodb.connection.base import Connection  # noqa: E402

from app import app  # noqa: E402
from chalicelib.core import clock, config  # noqa: E402
from chalicelib.picker_orders import updater, upstreams  # noqa: E402
from chalicelib.picker_orders.models import PickerOrder, event_version  # noqa: E402
from chalicelib.picker_orders.schemas import STATUSES_TIMEOUT, OrderState, UpstreamPickerOrder  # noqa: E402

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
TIMEOUT = 300
QUEUE = "eats_orders_tracking_picker_orders"


class Counter:
    """Every DynamoDB call PynamoDB makes, and the items its reads touched, per table."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.items_read: dict[str, int] = {}
        self._original = Connection._make_api_call

    def __enter__(self) -> "Counter":
        counter = self

        def counting(connection, operation, kwargs):
            counter.calls[operation] = counter.calls.get(operation, 0) + 1  # before: refused writes raise
            answer = counter._original(connection, operation, kwargs)
            table = kwargs.get("TableName", "?")
            if operation in ("Query", "Scan"):
                counter.items_read[table] = counter.items_read.get(table, 0) + answer.get("ScannedCount", 0)
            elif operation == "GetItem" and "Item" in answer:
                counter.items_read[table] = counter.items_read.get(table, 0) + 1
            return answer

        Connection._make_api_call = counting
        return self

    def __exit__(self, *exc) -> None:
        Connection._make_api_call = self._original

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def seed_orders(stale: int, fresh: int, now: dt.datetime) -> None:
    with PickerOrder.batch_write() as batch:
        for i in range(stale):
            updated = now - dt.timedelta(seconds=TIMEOUT + 60 + i)
            batch.save(_order(f"stale-{i}", OrderState.picking, updated))
        for i in range(fresh):
            # Half fresh in the listed status, half (even old) in an unlisted one: neither may be read.
            if i % 2:
                batch.save(_order(f"fresh-{i}", OrderState.picking, now - dt.timedelta(seconds=i % TIMEOUT)))
            else:
                batch.save(_order(f"other-{i}", OrderState.assigned, now - dt.timedelta(hours=2)))


def _order(order_nr: str, status: OrderState, updated: dt.datetime) -> PickerOrder:
    return PickerOrder(order_nr=order_nr, status=status.value, picker_id="p1", place_id="place-1",
                       customer_id="c1", picking_at=updated, last_event=event_version(updated, status),
                       updated_at=updated, expires_at=updated + dt.timedelta(days=7))


def bench_updater() -> list[dict]:
    now = T0 + dt.timedelta(hours=3)

    def upstream_agrees(order_nr: str) -> UpstreamPickerOrder:
        return UpstreamPickerOrder(eats_id=order_nr, status=OrderState.picking, picker_id="p1",
                                   status_updated_at=now - dt.timedelta(hours=1))

    upstreams.fetch_order = upstream_agrees  # in-process: this measures DynamoDB, not HTTP
    rows = []
    for stale in (10, 30, 100):
        fresh = 10 * stale
        fresh_tables()
        # Stored as an operator would (the experiment's value for everyone); read from the configs table, which
        # the items-read count below leaves out.
        config.write(STATUSES_TIMEOUT.name, [{"status": OrderState.picking.value, "timeout": TIMEOUT}])
        clock.freeze(now)
        seed_orders(stale, fresh, now)
        with Counter() as counter:
            started = time.perf_counter()
            report = updater.refresh_stale_orders()
            seconds = time.perf_counter() - started
        read = counter.items_read.get("picker_orders", 0)
        rows.append({"stale": stale, "fresh": fresh, "table": stale + fresh, "refreshed": report.stale,
                     "items_read": read, "ratio": round(read / stale, 3), "scans": counter.calls.get("Scan", 0),
                     "queries": counter.calls.get("Query", 0), "writes": counter.calls.get("UpdateItem", 0),
                     "ms": round(seconds * 1000, 1)})
    clock.freeze(None)
    return rows


def _events(orders: int) -> list[dict]:
    flow = ["new", "assigned", "picking", "PHONE", "picked_up", "paid"]
    events = []
    for n in range(orders):
        for step, status in enumerate(flow):
            created = T0 + dt.timedelta(minutes=step, seconds=n % 60)
            body = {"event_type": "STATUS_CHANGE", "order_nr": f"order-{n}", "order_status": status,
                    "place_id": "place-1", "customer_id": f"c{n}", "picker_id": "p1",
                    "created_at": created.isoformat()}
            if status == "PHONE":
                body.update(event_type="PICKER_PHONE_FORWARDING_READY", order_status="picking",
                            customer_picker_phone_forwarding={"phone": "+70000000000",
                                                              "expires_at": (created + dt.timedelta(hours=1)).isoformat()})
            events.append(body)
    return events


def bench_events() -> list[dict]:
    fresh_tables()
    clock.freeze(T0 + dt.timedelta(minutes=10))
    rows = []
    in_order = _events(60)
    shuffled = _events(60)
    for body in shuffled:
        body["order_nr"] = "late-" + body["order_nr"]
    random.Random(7).shuffle(shuffled)
    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
        warmup = _events(2)
        for body in warmup:
            body["order_nr"] = "warmup-" + body["order_nr"]
        deliver(client, "picker_order_events", QUEUE, warmup, "warmup")  # first-call costs (config reads, connections)
        for name, bodies in (("in order", in_order), ("replayed (all duplicates)", in_order),
                             ("shuffled (out of order)", shuffled)):
            with Counter() as counter:
                seconds, failed = deliver(client, "picker_order_events", QUEUE, bodies, name)
            rows.append({"events": name, "count": len(bodies), "failed": failed,
                         "events_per_s": round(len(bodies) / seconds, 1),
                         "dynamodb_calls_per_event": round(counter.total_calls / len(bodies), 3),
                         "calls": dict(sorted(counter.calls.items()))})
    clock.freeze(None)
    return rows


def main() -> None:
    started = time.perf_counter()
    with mock_aws():
        updater = bench_updater()
        events = bench_events()
    print("picker_orders_updater: items read per run vs stale orders (table has 10x more fresh orders)")
    print(f"{'stale':>6} {'fresh':>6} {'read':>6} {'ratio':>6} {'scans':>6} {'queries':>8} {'writes':>7} {'ms':>8}")
    for row in updater:
        print(f"{row['stale']:>6} {row['fresh']:>6} {row['items_read']:>6} {row['ratio']:>6} {row['scans']:>6} "
              f"{row['queries']:>8} {row['writes']:>7} {row['ms']:>8}")
    worst = max(row["ratio"] for row in updater)
    print(f"worst ratio items_read/stale = {worst} (target <= 1.1): {'OK' if worst <= 1.1 else 'FAIL'}")
    print()
    print("queue handler picker_order_events (SQS batches of 10, moto)")
    for row in events:
        print(f"  {row['events']:<26} {row['count']:>4} events  failed={row['failed']}  "
              f"{row['events_per_s']:>7} events/s  {row['dynamodb_calls_per_event']:>5} DynamoDB calls/event  "
              f"{row['calls']}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if worst > 1.1 or any(row["failed"] for row in events):
        sys.exit(1)


if __name__ == "__main__":
    main()
