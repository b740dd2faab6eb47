"""End-to-end fixtures: drive the REAL deployed stack on the emulator (local/stack.py).

If `make run` is already up (emulator on :4566, API on :8000), the tests use it; otherwise the session
starts the stack itself (emulator, deploy, forwarder, simulator) and stops it at the end.
Every test here is marked `e2e`; `make unit` leaves them out, `make test` runs them.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

import pytest
import requests

from local import emulator, stack as local_stack


def pytest_collection_modifyitems(items):
    """Mark the e2e tests, and run them after every other test of the session (`make test` runs both): the stack
    they start stays up until the session ends, its schedules keep firing, and its Lambdas call the simulator this
    process serves on :8100, whose upstream state the in-process tests' simulator shares. Run first, the stack's
    scooters finder booked a cabinet cell in the middle of a planner test."""
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: "/e2e/" in str(item.fspath))  # stable: each side keeps its order


class Stack:
    """What an e2e test needs from the running stack."""

    def __init__(self, handle: local_stack.RunningStack):
        self.handle = handle
        self.api = handle.api_url  # http://127.0.0.1:8000 (forwarder to the deployed API)
        self.simulator = handle.simulator_url  # http://127.0.0.1:8100
        self.http = requests.Session()

    def client(self, service: str):
        return emulator.aws_client(service)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.api + path, timeout=15, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> requests.Response:
        return self.http.post(self.api + path, json=body, timeout=15, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs) -> requests.Response:
        return self.http.put(self.api + path, json=body, timeout=15, **kwargs)

    def queue_url(self, queue: str) -> str:
        return self.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]

    def send(self, queue: str, body: Any, delay_seconds: int = 0) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return self.client("sqs").send_message(
            QueueUrl=self.queue_url(queue), MessageBody=text, DelaySeconds=delay_seconds)["MessageId"]

    def send_batch(self, queue: str, bodies: list) -> None:
        entries = [{"Id": str(i), "MessageBody": b if isinstance(b, str) else json.dumps(b)}
                   for i, b in enumerate(bodies)]
        answer = self.client("sqs").send_message_batch(QueueUrl=self.queue_url(queue), Entries=entries)
        assert not answer.get("Failed"), answer

    def dlq_bodies(self, queue: str) -> list[str]:
        """Drain what reached `queue`'s DLQ."""
        sqs, url, bodies = self.client("sqs"), self.queue_url(queue + "_dlq"), []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if not got:
                return bodies
            for message in got:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def function_name(self, logical_id: str) -> str:
        return self.handle.function_name(logical_id)

    def fire_schedule(self, logical_id: str) -> dict:
        """Run a @schedule handler now, with the payload EventBridge would send."""
        return self.handle.fire_schedule(logical_id)

    def put_config(self, name: str, value: Any) -> None:
        answer = self.put(f"/internal/v1/configs/{name}", {"value": value})
        assert answer.status_code == 200, answer.text

    def simulator_control(self, action: str, body: dict | None = None) -> dict:
        answer = requests.post(f"{self.simulator}/_control/{action}", json=body or {}, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def fault(self, upstream: str, mode: str = "error", **kwargs) -> None:
        self.simulator_control("faults", {"upstream": upstream, "mode": mode, **kwargs})

    def clear_faults(self, upstream: str) -> None:
        self.simulator_control("faults", {"upstream": upstream, "mode": "ok"})

    @staticmethod
    def wait_until(check: Callable[[], Any], timeout: float = 30, interval: float = 0.5, what: str = "") -> Any:
        """Poll `check` until it returns something truthy; fail the test after `timeout` seconds."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"not true after {timeout}s: {what or check} (last: {last!r})")

    @staticmethod
    def unique(prefix: str) -> str:
        """Ids unique per run, so tests never see each other's data on a long-lived stack."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def stack():
    with local_stack.running() as handle:
        yield Stack(handle)
