"""Codedispatch test helpers: the feature switched on for area `zenit`, driver headers, simulator controls."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from chalicelib.core import aws, clock, config
from chalicelib.core import queues as core_queues
from local.simulator.server import Fault, Request
from tests.conftest import as_driver

T0 = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.timezone.utc)
AREA = "zenit"
PROCESSING_QUEUE = "codedispatch_order_processing"
ZONE = {"enabled": True, "instructions": "Назовите код водителю", "order_expire_seconds": 1800,
        "driver_due_offset_seconds": 300}


def set_configs(**values) -> None:
    for name, value in values.items():
        config.write(name, value)


def enable(zones: dict | None = None, generator: dict | None = None, processing: bool = True) -> None:
    set_configs(**{
        "code_dispatch": {"enabled": True},
        "CODE_DISPATCH_PROCESSING_ENABLED": processing,
        "CODE_DISPATCH_ZONES_SETTINGS": zones if zones is not None else {AREA: ZONE},
        "CODE_DISPATCH_GENERATOR_SETTINGS": generator or {"length": 6, "alphabet": "0123456789"},
    })


@pytest.fixture
def cd(client):
    """The test client with code dispatch on in `zenit` (6 digits) and the clock at T0."""
    clock.freeze(T0)
    enable()
    return client


def driver(name: str = "a", park: str = "park1") -> dict:
    """Headers of driver `driver-<name>` of `park`: a session of its own (tests/conftest.py driver_auth)."""
    return {**as_driver(park, f"driver-{name}"), "Content-Type": "application/json"}


def post(client, path: str, body: dict, headers: dict | None = None):
    return client.http.post(path, headers={"Content-Type": "application/json", **(headers or {})},
                            body=json.dumps(body))


def create(client, order_id: str, area_id: str = AREA):
    return post(client, "/codedispatch/order/create", {"order_id": order_id, "area_id": area_id})


def assign(client, code: str, who: str = "a", area_id: str = AREA):
    return post(client, "/codedispatch/order/assign", {"code": code, "area_id": area_id}, driver(who))


def status(client, order_id: str, who: str = "a"):
    return client.http.get(f"/codedispatch/assignment/status?order_id={order_id}", headers=driver(who))


def lookup(client, order_id: str):
    return post(client, "/codedispatch/drivers-lookup", {"order_id": order_id})


def created_code(client, order_id: str, area_id: str = AREA) -> str:
    answer = create(client, order_id, area_id)
    assert answer.status_code == 200, answer.json_body
    return answer.json_body["code"]


def processing_messages() -> list[dict]:
    sqs = aws.client("sqs")
    url = core_queues.queue_url(PROCESSING_QUEUE)
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def read_together(monkeypatch, store, threads: int) -> None:
    """Make `threads` callers each read the assignment BEFORE any of them writes (a real race).
    `store`: chalicelib.codedispatch.store, where every codedispatch module reads assignments."""

    real, barrier, seen = store.live_assignment, threading.Barrier(threads), threading.local()

    def first_read_waits(order_id):
        result = real(order_id)
        if not getattr(seen, "done", False):
            seen.done = True
            barrier.wait(timeout=10)
        return result

    monkeypatch.setattr(store, "live_assignment", first_read_waits)
    atomic_moto_writes(monkeypatch)


def race(drivers: list, assign_order) -> tuple[list, list[str]]:
    """Every driver calls `assign_order(identity)` in its own thread; returns (winners, losers' error codes)."""
    from chalicelib.core.errors import Conflict

    won, lost = [], []

    def run(identity):
        try:
            assign_order(identity)
            won.append(identity)
        except Conflict as error:
            lost.append(error.code)

    threads = [threading.Thread(target=run, args=(identity,)) for identity in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, lost


def atomic_moto_writes(monkeypatch) -> None:
    """moto checks a write's condition and applies it without a lock, so two threads can both pass the
    check; DynamoDB applies each conditional write atomically. Give moto that guarantee (one write at a
    time) so a thread race tests OUR conditions, not moto's missing lock."""

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()  # transact_write_items calls put_item itself
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        real = getattr(DynamoDBBackend, name)

        def locked(self, *args, _real=real, **kwargs):
            with lock:
                return _real(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)

    # moto's request handlers also read live items outside the backend (update_item deep-copies the item
    # before it calls the backend; get_item serialises it): one request at a time, as DynamoDB makes each
    # request atomic, or a copy races another thread's write ("dictionary changed size during iteration").
    real_call_action = DynamoHandler.call_action

    def one_request_at_a_time(self, *args, **kwargs):
        with lock:
            return real_call_action(self, *args, **kwargs)

    monkeypatch.setattr(DynamoHandler, "call_action", one_request_at_a_time)


def sim_control(sim, action: str, body: dict) -> dict:
    code, answer = sim.control(action, Request(method="POST", path="", query={}, headers={}, body=body))
    assert code == 200, answer
    return answer


def tracker_absent(sim, who: str = "a", park: str = "park1") -> None:
    sim_control(sim, "tracker/driver", {"park_db_id": park, "driver_profile_id": f"driver-{who}", "absent": True})


def tracker_present(sim, who: str = "a", park: str = "park1") -> None:
    sim_control(sim, "tracker/driver", {"park_db_id": park, "driver_profile_id": f"driver-{who}", "absent": False})


def tracker_fault(sim, mode: str = "error", **kwargs) -> None:
    sim.faults["tracker"] = Fault(mode=mode, **kwargs)


def tracker_calls(sim) -> list[dict]:
    return [call for call in sim.calls["tracker"] if call["path"] == "/driver/acquire"]
