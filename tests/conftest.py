"""Shared fixtures: moto for AWS, the upstream simulator on a free loopback port, the Chalice test client.

Environment is fixed before the app is imported: fake credentials, no emulator endpoint (moto intercepts
botocore in-process), stage "test".
"""
from __future__ import annotations

import json
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "APP_STAGE": "test", "CONFIG_CACHE_SECONDS": "0", "UPSTREAM_RETRIES": "2",
    "UPSTREAM_CONNECT_TIMEOUT": "0.2", "UPSTREAM_READ_TIMEOUT": "0.5",
})

import pytest  # noqa: E402
from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402

from app import app  # noqa: E402
from chalicelib.core import aws, clock, config, dynamo, http, queues, secrets  # noqa: E402
from chalicelib.core.settings import reload_settings  # noqa: E402
from deploy.template import _all_tables, table_resource  # noqa: E402
from local.simulator.server import serve  # noqa: E402


def _reset_process_caches() -> None:
    reload_settings()
    aws.reset_clients()
    dynamo._connection.cache_clear()
    http.reset_sessions()
    queues.queue_url.cache_clear()
    config.forget_all_caches()
    secrets.forget_all()
    for model in _all_tables():
        model._connection = None


@pytest.fixture(scope="session")
def simulator():
    server, sim = serve(0)
    yield f"http://127.0.0.1:{server.server_port}", sim
    server.shutdown()


@pytest.fixture
def upstream(simulator, monkeypatch):
    """The upstream simulator, reset, with every UPSTREAM_<NAME>_URL pointing at it."""
    base, sim = simulator
    sim.reset()
    for name in sim.upstreams:
        monkeypatch.setenv(f"UPSTREAM_{name.upper()}_URL", f"{base}/{name}")
    _reset_process_caches()
    return sim


@pytest.fixture
def aws_mock(monkeypatch):
    """moto with every table and queue of the app, as the template declares them."""
    with mock_aws():
        _reset_process_caches()
        dynamodb = aws.client("dynamodb")
        for model in _all_tables():
            # The very definition the deploy template uses (TTL is set apart, as in the template).
            properties = dict(table_resource(model, stage="test")["Properties"])
            properties.pop("PointInTimeRecoverySpecification", None)
            ttl = properties.pop("TimeToLiveSpecification", None)
            dynamodb.create_table(**properties)
            if ttl:
                dynamodb.update_time_to_live(TableName=properties["TableName"], TimeToLiveSpecification=ttl)
        sqs = aws.client("sqs")
        consumed = {source.queue for source in app.event_sources if getattr(source, "queue", None)}
        for queue in sorted(consumed | queues.PRODUCED_QUEUES):
            dlq = sqs.create_queue(QueueName=queue + "_dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sqs.create_queue(QueueName=queue, Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})})
        yield
    _reset_process_caches()


@pytest.fixture(autouse=True)
def _time_runs_again():
    yield
    clock.freeze(None)


@pytest.fixture
def client(aws_mock, upstream):
    with Client(app, stage_name="local", project_dir=str(ROOT)) as test_client:
        yield test_client


def sqs_event(client, queue: str, bodies: list, ids: list[str] | None = None) -> dict:
    """An SQS event with DISTINCT message ids (Chalice's generator gives all records the same one)."""
    event = client.events.generate_sqs_event(
        message_bodies=[b if isinstance(b, str) else json.dumps(b) for b in bodies], queue_name=queue)
    for index, record in enumerate(event["Records"]):
        record["messageId"] = ids[index] if ids else f"msg-{index}"
    return event


def failed_ids(answer: dict) -> list[str]:
    return [item["itemIdentifier"] for item in answer["batchItemFailures"]]


def pytest_configure(config):
    # Chalice's local gateway cannot check IAM; deployed stages do. Not news in every test.
    config.addinivalue_line("filterwarnings", "ignore:IAMAuthorizer is not a supported in local mode")
    config.addinivalue_line("markers", "e2e: drives the deployed local stack (emulator on 127.0.0.1:4566)")


# --- who is calling: the ONE place tests make a caller's identity -------------------------------------
# Driver and eats-user routes take identity from the gateway's authorizer (a session token checked with
# the session services); tests get their headers here, never by writing identity headers themselves.
# A fixture makes a real session in the upstream simulator (the in-process one, or the deployed stack's for
# tests under tests/e2e) and answers headers that carry its token twice:
# - X-Driver-Session / X-Eats-Session: what the deployed gateway reads (the authorizers' `header=`);
# - Authorization: what Chalice's test client reads, whatever `header=` says (its local gateway knows no other).
# The :8000 forwarder drops Authorization (it signs requests itself), and the authorizers' routes ignore it.

def _session_maker(request):
    """make(body) -> token, in the simulator this test talks to."""
    if request.node.get_closest_marker("e2e"):
        stack = request.getfixturevalue("stack")
        return lambda body: stack.simulator_control("sessions", body)["token"]
    sim = request.getfixturevalue("upstream")

    def make(body: dict) -> str:
        from local.simulator.server import Request

        status, answer = sim.control("sessions", Request(method="POST", path="/_control/sessions", query={},
                                                         headers={}, body=body))
        assert status == 200, answer
        return answer["token"]

    return make


def _session_headers(header: str, token: str) -> dict:
    return {header: token, "Authorization": token}


@pytest.fixture
def driver_auth(request):
    """`driver_auth(park_id, driver_profile_id) -> headers` that authenticate that driver (one session per driver
    and test; `expires_in=` makes a fresh one that expires so many seconds from now, 0 = already expired)."""
    make, sessions = _session_maker(request), {}

    def headers(park_id: str, driver_profile_id: str, *, expires_in: float | None = None) -> dict:
        body = {"kind": "driver", "park_id": park_id, "driver_profile_id": driver_profile_id}
        if expires_in is not None:
            return _session_headers("X-Driver-Session", make({**body, "expires_in": expires_in}))
        if (park_id, driver_profile_id) not in sessions:
            sessions[park_id, driver_profile_id] = make(body)
        return _session_headers("X-Driver-Session", sessions[park_id, driver_profile_id])
    return headers


@pytest.fixture
def eats_auth(request):
    """`eats_auth(user_id) -> headers` that authenticate that eats user (as driver_auth)."""
    make, sessions = _session_maker(request), {}

    def headers(user_id: str, *, expires_in: float | None = None) -> dict:
        body = {"kind": "eats_user", "user_id": user_id}
        if expires_in is not None:
            return _session_headers("X-Eats-Session", make({**body, "expires_in": expires_in}))
        if user_id not in sessions:
            sessions[user_id] = make(body)
        return _session_headers("X-Eats-Session", sessions[user_id])
    return headers


# Plain helper functions shared by many tests (codedispatch's driver(), picker_orders' track(), the e2e
# Driver and Order) take no fixtures: they reach the running test's driver_auth / eats_auth through these.
_RUNNING: list = []


@pytest.fixture(autouse=True)
def _running_test(request):
    _RUNNING.append(request)
    yield
    _RUNNING.pop()


def as_driver(park_id: str, driver_profile_id: str) -> dict:
    """The running test's `driver_auth(park_id, driver_profile_id)`."""
    return _RUNNING[-1].getfixturevalue("driver_auth")(park_id, driver_profile_id)


def as_eats_user(user_id: str) -> dict:
    """The running test's `eats_auth(user_id)`."""
    return _RUNNING[-1].getfixturevalue("eats_auth")(user_id)
