"""Deptrans fixtures: KRT credentials in (moto's) SSM, the simulator's drivers and KRT, the sender run in-process."""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

import pytest
import requests

from chalicelib.core import aws
from chalicelib.deptrans import krt, sender
from tests.conftest import sqs_event

# The tests' stage is "test" (tests/conftest.py): the name every stage's config.json entry follows.
PARAMETER = "/taxi-delivery/test/krt-credentials"
QUEUE = "deptrans_contractor_status_events"
ID_PATH = "/driver/v1/deptrans-status/v1/id"
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
MOSCOW = [37.6173, 55.7558]
PITER = [30.3158, 59.9391]
BALASHIKHA = [37.96, 55.80]  # next to Moscow, inside the old rectangle, outside the city's boundary


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def app_logs():
    from chalicelib.core.logs import JsonFormatter

    handler = Records()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("chalicelib")
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


MOTO_OPERATIONS = ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items",
                   "batch_get_item", "batch_write_item")


@pytest.fixture(autouse=True)
def serial_moto(monkeypatch) -> None:
    """moto's DynamoDB is not thread-safe (a Query iterating a table while another thread writes it raises);
    DynamoDB is. The sender reads the next page while its threads write: serialise moto, as the real service
    would be consistent, so the tests test OUR concurrency, not moto's."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in MOTO_OPERATIONS:
        real = getattr(DynamoDBBackend, name)

        def locked(self, *args, _real=real, **kwargs):
            with lock:
                return _real(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture
def krt_credentials(aws_mock, monkeypatch):
    monkeypatch.setenv("KRT_CREDENTIALS_PARAMETER", PARAMETER)
    krt.forget()
    # Read once per process, as in Lambda; read now, before the test client lays the local stage's env over it.
    assert krt.credentials_parameter() == PARAMETER
    aws.client("ssm").put_parameter(Name=PARAMETER, Type="SecureString",
                                    Value=krt.dumps_credentials("taxi-local", "local-secret"))
    yield
    krt.forget()


class Deptrans:
    """Drives the service the way its callers do: simulator controls, queue events, the sender, the routes."""

    def __init__(self, client, base: str, sim, driver_auth) -> None:
        self.client, self.base, self.sim, self.driver_auth = client, base, sim, driver_auth

    # --- the simulator
    def control(self, action: str, body: dict | None = None, method: str = "POST") -> dict:
        answer = requests.request(method, f"{self.base}/_control/{action}", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def driver(self, park_id: str, driver_id: str, licence: str | None = None, categories=("econom",),
               position=MOSCOW, registry_id: str | None = None) -> str | None:
        answer = self.control("drivers", {"park_id": park_id, "driver_id": driver_id, "licence": licence,
                                          "categories": list(categories), "position": position})
        if registry_id and licence:
            self.control("krt/ids", {"licence": licence, "id": registry_id})
        return answer["licence_pd_id"]

    def fault(self, upstream: str, mode: str = "error", **kwargs) -> None:
        self.control("faults", {"upstream": upstream, "mode": mode, **kwargs})

    def heal(self, upstream: str) -> None:
        self.control("faults", {"upstream": upstream, "mode": "ok"})

    def reports(self) -> list[dict]:
        return self.control("krt/reports", method="GET")["reports"]

    def last_states(self) -> dict[str, str]:
        """Registry ID -> the line state KRT acknowledged last."""
        return self.control("krt/reports", method="GET")["last"]

    def move(self, park_id: str, driver_id: str, position) -> None:
        self.control(f"drivers/{park_id}/{driver_id}/position", {"position": position})

    def calls(self, upstream: str) -> list[dict]:
        return self.control(f"calls?upstream={upstream}", method="GET")["calls"]

    # --- the service
    def events(self, *events: tuple, ids: list[str] | None = None) -> dict:
        """events: (park_id, driver_id, status, updated_at)."""
        bodies = [{"park_id": p, "driver_id": d, "status": s,
                   "updated_at": (t if isinstance(t, str) else t.isoformat())} for p, d, s, t in events]
        return self.client.lambda_.invoke("deptrans_status_events", sqs_event(self.client, QUEUE, bodies, ids)).payload

    def send(self, seconds: float = 20) -> dict:
        return sender.run(deadline=time.monotonic() + seconds)

    def bind(self, park_id: str, driver_id: str, registry_id: str):
        return self.client.http.post(ID_PATH, headers={**self.driver_auth(park_id, driver_id),
                                                       "Content-Type": "application/json"},
                                     body=json.dumps({"id": registry_id}))

    def bound(self, park_id: str, driver_id: str):
        return self.client.http.get(ID_PATH, headers=self.driver_auth(park_id, driver_id))

    def online_driver(self, park_id: str, driver_id: str, licence: str, registry_id: str, **kwargs) -> str:
        """A driver set up everywhere, with his registry ID bound."""
        pd_id = self.driver(park_id, driver_id, licence, registry_id=registry_id, **kwargs)
        answer = self.bind(park_id, driver_id, registry_id)
        assert answer.status_code == 200, answer.body
        return pd_id


@pytest.fixture
def dep(client, simulator, upstream, krt_credentials, driver_auth) -> Deptrans:
    return Deptrans(client, simulator[0], upstream, driver_auth)
