"""Benchmark of the scooters recharge flow, in-process: moto for AWS, the upstream simulator on loopback.

    .venv/bin/python bench/scooters.py

1. Planning cost: upstream calls and DynamoDB calls per task (one planning message -> booking -> claim), for a
   first delivery and for a replay of the same message.
2. Journal throughput: claims journal events handled per second by the follower (every event a real reaction:
   accept, performer_found, the pickups, delivered), and again when every event is a duplicate.
3. The poll (ScootersFindDischarged) for fleets of 1k and 10k cars with 1 % discharged, and 10k with 0.1 %:
   upstream calls and DynamoDB calls grow with the discharged cars, not the fleet; a second poll (everything
   taken) costs one car/list.
4. Reconciliation (ScootersReconcileClaims, every 5 minutes) for 1,000 live tasks whose claims stay quiet for an
   hour (the worst case: a claim whose events arrive is never asked for): claims/info calls and DynamoDB calls
   per hour at the default staleness (600 s) and without it (every open claim every run), side by side.

moto's and the simulator's speed are not production's: quote the call counts and the ratios, not the times.
"""
from __future__ import annotations

import json
import time

from _env import prepare  # noqa: E402

ROOT = prepare()

import requests  # noqa: E402
from moto import mock_aws  # noqa: E402
from pynamodb.connection.base import Connection  # noqa: E402

from app import app  # noqa: E402,F401  (registers the tables and queues)
from chalicelib.core import aws, config, http, queues  # noqa: E402
from chalicelib.core.settings import reload_settings  # noqa: E402
from deploy.template import _all_tables, table_resource  # noqa: E402
from chalicelib.core import clock  # noqa: E402
from chalicelib.scooters.recharge import finder, follower, planner, reconciler  # noqa: E402
from chalicelib.scooters.recharge.lifecycle import PERFORMER_FOUND  # noqa: E402
from chalicelib.scooters.recharge.models import LIVE, RechargeTask  # noqa: E402
from chalicelib.scooters.recharge.schemas import PlanMessage  # noqa: E402
from local.simulator.server import serve  # noqa: E402

import os  # noqa: E402


class DynamoCounter:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._original = Connection._make_api_call

    def __enter__(self):
        counter = self

        def counting(connection, operation, kwargs):
            counter.calls[operation] = counter.calls.get(operation, 0) + 1
            return counter._original(connection, operation, kwargs)

        Connection._make_api_call = counting
        return self

    def __exit__(self, *exc):
        Connection._make_api_call = self._original

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class Sent:
    """The planning messages the flow sends (it still sends them to moto's SQS)."""

    def __init__(self):
        self.messages: list[tuple[PlanMessage, int]] = []
        self._original = queues.send

    def __enter__(self):
        def spy(queue, message, *, delay_seconds=0):
            self.messages.append((PlanMessage.model_validate_json(message.model_dump_json()), delay_seconds))
            return self._original(queue, message, delay_seconds=delay_seconds)

        queues.send = spy
        return self

    def __exit__(self, *exc):
        queues.send = self._original

    def take(self) -> list[PlanMessage]:
        due = [m for m, delay in self.messages if delay == 0]
        self.messages.clear()
        return due


def fresh(base: str, sim) -> None:
    sim.reset()
    for name in sim.upstreams:
        os.environ[f"UPSTREAM_{name.upper()}_URL"] = f"{base}/{name}"
    reload_settings()
    aws.reset_clients()
    http.reset_sessions()
    queues.queue_url.cache_clear()
    config.forget_all_caches()
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    for model in _all_tables():
        model._connection = None
        properties = dict(table_resource(model, stage="test")["Properties"])
        properties.pop("PointInTimeRecoverySpecification", None)
        properties.pop("TimeToLiveSpecification", None)
        if model.exists():
            model.delete_table()
        dynamodb.create_table(**properties)
    sqs.create_queue(QueueName=planner.QUEUE)


def control(base: str, path: str, body=None, method: str = "POST") -> dict:
    return requests.request(method, f"{base}/_control/{path}", json=body, timeout=30).json()


def upstream_calls(sim) -> dict[str, int]:
    return {name: len(calls) for name, calls in sim.calls.items() if calls}


def clear_calls(sim) -> None:
    for calls in sim.calls.values():
        calls.clear()


def setup_area(base: str, cabinets: int = 4, charged: int = 200) -> None:
    depots = []
    for n in range(cabinets):
        store_id = f"grocery:bench-{n}"
        control(base, "scooter_accumulator/cabinets", {"store_id": store_id, "cabinet_id": f"cab-{n}",
                                                       "charged": charged})
        depots.append({"store_id": store_id, "position": [37.52 + n * 0.02, 55.705]})
    config.write("scooters_depots", depots)


def bench_planning(base: str, sim, tasks: int = 50) -> dict:
    fresh(base, sim)
    setup_area(base)
    control(base, "scooter_backend/fleet", {"count": tasks, "discharged": tasks, "prefix": "plan"})
    with Sent() as sent:
        finder.find_discharged()
        messages = sent.take()
        clear_calls(sim)
        with DynamoCounter() as dynamo:
            started = time.perf_counter()
            outcomes = [planner.plan(m) for m in messages]
            seconds = time.perf_counter() - started
        first = {"tasks": len(messages), "claimed": outcomes.count("claimed"),
                 "upstream_per_task": {k: round(v / len(messages), 2) for k, v in upstream_calls(sim).items()},
                 "dynamodb_per_task": round(dynamo.total / len(messages), 2),
                 "dynamodb_ops": dynamo.calls, "tasks_per_s": round(len(messages) / seconds, 1)}
        clear_calls(sim)
        with DynamoCounter() as dynamo:
            replays = [planner.plan(m) for m in messages]
        replay = {"outcomes": sorted(set(replays)), "upstream_calls": sum(upstream_calls(sim).values()),
                  "dynamodb_per_task": round(dynamo.total / len(messages), 2)}
    return {"first": first, "replay": replay}


def bench_journal(base: str, sim, claims: int = 60) -> dict:
    fresh(base, sim)
    setup_area(base)
    control(base, "scooter_backend/fleet", {"count": claims, "discharged": claims, "prefix": "j"})
    with Sent() as sent:
        finder.find_discharged()
        for message in sent.take():
            planner.plan(message)
    follower.follow_claims()  # new, ready_for_approval -> accept (accepted, performer_lookup follow)
    listed = control(base, "cargo/claims", method="GET")["claims"]
    for claim in listed:
        points = {p["type"]: p["point_id"] for p in claim["body"]["route_points"]}
        steps = [("performer_found", None), ("pickup_arrived", "source"), ("pickuped", "destination"),
                 ("delivery_arrived", "destination"), ("pickuped", "return"), ("delivery_arrived", "return"),
                 ("delivered", "return")]
        for status, point in steps:
            body = {"status": status, "performer": {"park_id": "park", "driver_profile_id": claim["id"][:8]}}
            if point:
                body["current_point_id"] = points[point]
            control(base, f"cargo/claims/{claim['id']}/advance", body)
    events = len(listed) * 7
    clear_calls(sim)
    with DynamoCounter() as dynamo:
        started = time.perf_counter()
        report = follower.follow_claims()
        seconds = time.perf_counter() - started
    fresh_run = {"events": report.events, "handled": report.handled, "events_per_s": round(report.events / seconds, 1),
                 "dynamodb_per_event": round(dynamo.total / max(report.events, 1), 2),
                 "upstream_per_event": round(sum(upstream_calls(sim).values()) / max(report.events, 1), 2)}
    assert report.handled == events, report
    control(base, "cargo/journal/repeat", {"count": events})
    clear_calls(sim)
    with DynamoCounter() as dynamo:
        started = time.perf_counter()
        report = follower.follow_claims()
        seconds = time.perf_counter() - started
    duplicate_run = {"events": report.events, "duplicates": report.duplicates,
                     "events_per_s": round(report.events / seconds, 1),
                     "dynamodb_per_event": round(dynamo.total / max(report.events, 1), 2),
                     "upstream_per_event": round((sum(upstream_calls(sim).values()) - report.pages)
                                                 / max(report.events, 1), 2)}
    return {"reactions": fresh_run, "duplicates": duplicate_run}


def bench_poll(base: str, sim, fleet: int, discharged: int) -> dict:
    fresh(base, sim)
    setup_area(base)
    control(base, "scooter_backend/fleet", {"count": fleet, "discharged": discharged, "prefix": "f"})
    clear_calls(sim)
    with Sent(), DynamoCounter() as dynamo:
        started = time.perf_counter()
        report = finder.find_discharged()
        seconds = time.perf_counter() - started
    first = {"fleet": fleet, "discharged": discharged, "created": report.created,
             "upstream_calls": sum(upstream_calls(sim).values()), "dynamodb_calls": dynamo.total,
             "ms": round(seconds * 1000, 1)}
    clear_calls(sim)
    with Sent(), DynamoCounter() as dynamo:
        finder.find_discharged()
    first.update(second_poll_upstream=sum(upstream_calls(sim).values()), second_poll_dynamodb=dynamo.total)
    return first


def _live_tasks(base: str, count: int, now) -> None:
    """`count` tasks with a live claim each (performer found), last confirmed evenly over the past 10 minutes."""
    import datetime as dt

    body = {"items": [{"title": "battery", "quantity": 1, "pickup_point": 1}],
            "route_points": [{"point_id": n, "type": kind, "address": {"coordinates": [37.6, 55.7]}}
                             for n, kind in ((1, "source"), (2, "destination"), (3, "return"))]}
    with RechargeTask.batch_write() as batch:
        for n in range(count):
            claim = requests.post(f"{base}/cargo/b2b/cargo/integration/v2/claims/create?request_id=bench-{n}",
                                  json=body, timeout=30).json()
            seen = int(now.timestamp()) - (n * 600) // count
            batch.save(RechargeTask(
                f"live-{n}/tag", car_id=f"live-{n}", tag_id="tag", status=PERFORMER_FOUND, attempt=1,
                position=[37.6, 55.7], claim_id=claim["id"], claim_revision=claim["revision"] + 1,
                claim_status=claim["status"], point_ids={"source": "1", "destination": "2", "return": "3"},
                performer_park_id="park", performer_driver_profile_id="driver", live_claim=LIVE,
                claim_seen_at=seen, created_at=now, updated_at=now, expires_at=now + dt.timedelta(days=1)))


def bench_reconcile(base: str, sim, tasks: int = 1000) -> dict:
    import datetime as dt

    rows = {}
    for label, settings in (("staleness 600 s (default)", {}),
                            ("no staleness (every open claim, every run)",
                             {"stale_after_seconds": 0, "max_claims_per_run": 10_000})):
        fresh(base, sim)
        t0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
        _live_tasks(base, tasks, t0)
        config.write("scooters_reconcile_settings", settings)
        clear_calls(sim)
        asked, seconds = [], 0.0
        with DynamoCounter() as dynamo:
            for run in range(1, 13):  # one hour of runs, every 5 minutes
                clock.freeze(t0 + dt.timedelta(minutes=5 * run))
                started = time.perf_counter()
                asked.append(reconciler.reconcile_claims().asked)
                seconds += time.perf_counter() - started
        clock.freeze(None)
        infos = len([c for c in sim.calls["cargo"] if c["path"].endswith("/info")])
        rows[label] = {"claims_info_per_hour": infos, "per_task_per_hour": round(infos / tasks, 2),
                       "asked_per_run": " ".join(map(str, asked)), "dynamodb_per_hour": dynamo.total,
                       "dynamodb_ops": dynamo.calls,
                       "s_per_run_in_process": round(seconds / 12, 2)}
    default, every = rows.values()
    rows["saved_by_staleness"] = round(1 - default["claims_info_per_hour"] / every["claims_info_per_hour"], 2)
    return rows


def _print_reconcile(reconcile: dict) -> None:
    print("4. reconciliation: 1,000 live tasks, quiet claims, one hour of runs (every 5 minutes)")
    print(json.dumps(reconcile, ensure_ascii=False, indent=1))


def main() -> None:
    server, sim = serve(0)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with mock_aws():
            planning = bench_planning(base, sim)
            journal = bench_journal(base, sim)
            polls = [bench_poll(base, sim, 1000, 10), bench_poll(base, sim, 10000, 100),
                     bench_poll(base, sim, 10000, 10)]
            reconcile = bench_reconcile(base, sim)
    finally:
        server.shutdown()
    print("1. planning (one message -> booking -> claim), per task")
    print(json.dumps(planning, ensure_ascii=False, indent=1))
    print("2. claims journal through the follower")
    print(json.dumps(journal, ensure_ascii=False, indent=1))
    print("3. the poll: calls per run vs fleet size (1 % / 0.1 % discharged)")
    print(f"{'fleet':>6} {'disch':>6} {'created':>8} {'upstream':>9} {'dynamodb':>9} {'ms':>8} {'2nd_up':>7} {'2nd_db':>7}"
          f" {'up/disch':>9}")
    for row in polls:
        print(f"{row['fleet']:>6} {row['discharged']:>6} {row['created']:>8} {row['upstream_calls']:>9} "
              f"{row['dynamodb_calls']:>9} {row['ms']:>8} {row['second_poll_upstream']:>7} "
              f"{row['second_poll_dynamodb']:>7} {round(row['upstream_calls'] / row['discharged'], 2):>9}")
    a, b = polls[0], polls[1]
    print(f"10x the fleet and 10x the discharged: upstream calls x{round(b['upstream_calls'] / a['upstream_calls'], 2)}"
          f"; same 10k fleet, 10x fewer discharged: upstream calls x"
          f"{round(polls[2]['upstream_calls'] / b['upstream_calls'], 2)} (the cost follows the discharged cars)")
    _print_reconcile(reconcile)


if __name__ == "__main__":
    main()
