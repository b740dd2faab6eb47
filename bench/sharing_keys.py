"""Benchmark of the hot path GET /order-route-sharing/v1/sharing_keys (run from the repo root):

    .venv/bin/python bench/sharing_keys.py

In-process, against moto's server on 127.0.0.1 (a real HTTP hop to "DynamoDB"; the emulator's Lambda hop is
not what we measure). Side by side, interleaved, in one run:
  route     the real route (middleware, header validation, PynamoDB Query with the live-key filter, render)
  baseline  a bare Chalice route doing one raw boto3 Query against the same table
Prints p50/p99 of each and their ratio (target: p50 ratio <= 1.15), DynamoDB calls per request (target: 1),
and DynamoDB write calls per SQS batch of 10 saves (target: <= 1).
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import statistics
import time

import _env  # noqa: E402
from _env import prepare  # noqa: E402


import logging  # noqa: E402
import warnings  # noqa: E402

from moto.server import ThreadedMotoServer  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")

SERVER = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
SERVER.start()
ENDPOINT = f"http://127.0.0.1:{SERVER._server.server_port}"
ROOT = prepare(endpoint_url=ENDPOINT)  # before the app: PynamoDB reads it at import

import botocore.client  # noqa: E402
from chalice import Chalice  # noqa: E402
from chalice.test import Client  # noqa: E402

from app import app  # noqa: E402
from chalicelib.core import aws  # noqa: E402

REQUESTS = 600
PHONE = "phone-bench"
CALLS: collections.Counter = collections.Counter()
_original_call = botocore.client.BaseClient._make_api_call


def _counting_call(self, operation, params):
    CALLS[operation] += 1
    return _original_call(self, operation, params)


botocore.client.BaseClient._make_api_call = _counting_call


def create_tables() -> None:
    _env.create_tables()
    sqs = aws.client("sqs")
    for source in app.event_sources:
        if getattr(source, "queue", None):
            sqs.create_queue(QueueName=source.queue)


def sqs_event(client, bodies: list[dict]) -> dict:
    event = client.events.generate_sqs_event(message_bodies=[json.dumps(b) for b in bodies],
                                             queue_name="order_route_sharing_save_key")
    for index, record in enumerate(event["Records"]):
        record["messageId"] = f"bench-{index}"
    return event


def seed(client) -> dict:
    """A phone with 8 orders (3 finished long ago, so the filter has work), saved as SQS batches of 10."""
    now = dt.datetime.now(dt.timezone.utc)
    bodies = [{"order_id": f"seed-{i}", "tariff_class": "express", "phone_ids": [PHONE, f"other-{i}"],
               "created_at": (now - dt.timedelta(minutes=i)).isoformat()} for i in range(8)]
    bodies += [{"order_id": f"fill-{i}", "tariff_class": "courier", "phone_ids": [f"fill-{i}"],
                "created_at": now.isoformat()} for i in range(2)]
    CALLS.clear()
    answer = client.lambda_.invoke("save_sharing_keys", sqs_event(client, bodies)).payload
    assert answer == {"batchItemFailures": []}, answer
    writes = {op: n for op, n in CALLS.items() if op in ("PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems")}
    finished = (now - dt.timedelta(days=2)).isoformat()
    for i in range(3):
        event = client.events.generate_sqs_event(
            message_bodies=[json.dumps({"order_id": f"seed-{i}", "finished_at": finished})],
            queue_name="order_route_sharing_finish_order")
        client.lambda_.invoke("finish_shared_order", event)
    return writes


def baseline_app() -> Chalice:
    """The same Query the service sends (key, live filter, projection), with nothing around it."""
    import boto3

    bare = Chalice(app_name="baseline")
    dynamodb = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1")

    @bare.route("/keys")
    def keys():
        phone_id = bare.current_request.headers["x-yataxi-phoneid"]
        answer = dynamodb.query(
            TableName="route_sharing_phone_keys", KeyConditionExpression="phone_id = :p",
            FilterExpression="expires_at > :now", ProjectionExpression="sharing_key", ScanIndexForward=False,
            ExpressionAttributeValues={":p": {"S": phone_id}, ":now": {"N": str(int(time.time()))}})
        return {"sharing_keys": [item["sharing_key"]["S"] for item in answer["Items"]]}

    return bare


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    create_tables()
    client, bare = Client(app, stage_name="local", project_dir=str(ROOT)), Client(baseline_app())
    writes = seed(client)
    headers = {"X-YaTaxi-PhoneId": PHONE}
    route_answer = client.http.get("/order-route-sharing/v1/sharing_keys", headers=headers)
    assert len(json.loads(route_answer.body)["sharing_keys"]) == 5, route_answer.body  # 8 saved, 3 expired
    for _ in range(30):  # warm both
        client.http.get("/order-route-sharing/v1/sharing_keys", headers=headers)
        bare.http.get("/keys", headers=headers)

    timings: dict[str, list[float]] = {"route": [], "baseline": []}
    CALLS.clear()
    for index in range(REQUESTS * 2):
        name = "route" if index % 2 == 0 else "baseline"  # interleaved: both see the same machine noise
        started = time.perf_counter()
        if name == "route":
            answer = client.http.get("/order-route-sharing/v1/sharing_keys", headers=headers)
        else:
            answer = bare.http.get("/keys", headers=headers)
        timings[name].append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200
    calls_per_request = sum(CALLS.values()) / (2 * REQUESTS)  # both sides make exactly one call each, or more

    route_calls = collections.Counter()
    CALLS.clear()
    for _ in range(50):
        client.http.get("/order-route-sharing/v1/sharing_keys", headers=headers)
    route_calls.update(CALLS)

    print(f"sharing_keys hot path, {REQUESTS} requests each, interleaved, moto server on loopback")
    for name, samples in timings.items():
        print(f"  {name:9s} p50 {statistics.median(samples):6.2f} ms   p99 {percentile(samples, 0.99):6.2f} ms")
    p50_ratio = statistics.median(timings["route"]) / statistics.median(timings["baseline"])
    p99_ratio = percentile(timings["route"], 0.99) / percentile(timings["baseline"], 0.99)
    print(f"  ratio     p50 {p50_ratio:.3f} (target <= 1.15)   p99 {p99_ratio:.3f}")
    print(f"  DynamoDB calls per route request: {sum(route_calls.values()) / 50:.2f} {dict(route_calls)} (target 1)")
    print(f"  DynamoDB calls per request, both sides: {calls_per_request:.2f}")
    print(f"  DynamoDB write calls for one SQS batch of 10 saves: {sum(writes.values())} {writes} (target <= 1)")
    SERVER.stop()


if __name__ == "__main__":
    main()
