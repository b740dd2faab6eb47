"""Idempotency keys sent upstream: one per logical call, shared by that call's retries only (core/http.py).

For every upstream client that sends a key: two different calls (even about the same driver, car, claim or
session) carry different keys, and a call retried after a 503 carries the same key on both tries. An upstream
that replays its first answer for a repeated key (as idempotent APIs do) could otherwise hand one request's
answer to another. The simulator records each request's `X-Idempotency-Token`.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import pytest
import requests

from chalicelib.core.errors import UpstreamRejected
from chalicelib.deptrans import krt
from chalicelib.deptrans import upstreams as deptrans_upstreams
from chalicelib.core import authorizers
from chalicelib.scooters.courier import upstreams as courier_upstreams
from chalicelib.scooters.recharge import attempts
from chalicelib.scooters.recharge import upstreams as scooters_upstreams
from chalicelib.scooters.recharge.models import RechargeTask
from local.simulator.server import Fault

DRIVER = ("park1", "drv1")


def _session(base: str, body: dict) -> str:
    return requests.post(f"{base}/_control/sessions", json=body, timeout=5).json()["token"]


def _car(base: str, car_id: str) -> None:
    answer = requests.post(f"{base}/_control/scooter_backend/cars", timeout=5,
                           json={"car_id": car_id, "position": [37.62, 55.75], "battery_level": 20})
    assert answer.status_code == 200, answer.text


# (upstream, path the call is recorded under, set-up(base) -> call()): each call() is one logical call.
CLIENTS: dict[str, tuple[str, str, Callable[[str], Callable[[], object]]]] = {
    "driver session check": ("driver_authorizer", "/v1/session/check", lambda base: (
        lambda token=_session(base, {"kind": "driver", "park_id": "park1", "driver_profile_id": "drv1"}):
        authorizers.check_session("driver_authorizer", token, ("park_id", "driver_profile_id")))),
    "eats session check": ("eats_passport", "/v1/session/check", lambda base: (
        lambda token=_session(base, {"kind": "eats_user", "user_id": "u1"}):
        authorizers.check_session("eats_passport", token, ("user_id",)))),
    "driver profiles": ("driver_profiles", "/v1/driver/profiles/retrieve",
                        lambda base: lambda: deptrans_upstreams.licence_pd_ids([DRIVER])),
    "personal licence": ("personal", "/v1/driver_licenses/retrieve",
                         lambda base: lambda: deptrans_upstreams.licence_number("pd-1")),
    "trackstory positions": ("driver_trackstory", "/v2/positions",
                             lambda base: lambda: deptrans_upstreams.positions([DRIVER])),
    "driver categories": ("driver_categories_api", "/v2/aggregation/categories",
                          lambda base: lambda: deptrans_upstreams.categories([DRIVER])),
    "krt verify": ("krt", "/api/v1/drivers/verify", lambda base: lambda: krt.verify_id("AB123456", "7700123456")),
    "scooter tag": ("scooter_backend", "/tag/add", lambda base: (
        lambda _=_car(base, "car-1"): scooters_upstreams.add_tag("car-1", "recharge_processing"))),
    "courier scooter tag": ("scooter_backend", "/tag/add", lambda base: (
        lambda _=_car(base, "car-1"): courier_upstreams.add_tag("car-1", "scooter_missing"))),
    "cabinets availability": ("scooter_accumulator", "/accumulator/available_for_booking",
                              lambda base: lambda: scooters_upstreams.available_for_booking(["grocery:1"])),
    "cabinet booking action": ("scooter_accumulator", "/booking/unbook",
                               lambda base: lambda: scooters_upstreams.unbook("book-1")),
    "cargo claim info": ("cargo", "/b2b/cargo/integration/v2/claims/info",
                         lambda base: lambda: scooters_upstreams.claim_info("claim-1")),
    "cargo journal": ("cargo", "/b2b/cargo/integration/v2/claims/journal",
                      lambda base: lambda: scooters_upstreams.journal(None)),
}


def _keys(sim, upstream: str, path: str) -> list[str | None]:
    return [call["idempotency_token"] for call in sim.calls[upstream] if call["path"].endswith(path)]


def _call(make: Callable[[], object]) -> None:
    with contextlib.suppress(UpstreamRejected):  # an unknown claim or booking is a 404: the key was still sent
        make()


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_each_call_has_its_own_key_and_its_retry_the_same(name, aws_mock, upstream, simulator, monkeypatch):
    upstream_name, path, setup = CLIENTS[name]
    if upstream_name == "krt":
        from tests.deptrans.conftest import PARAMETER

        monkeypatch.setenv("KRT_CREDENTIALS_PARAMETER", PARAMETER)
        krt.forget()
        from chalicelib.core import aws

        aws.client("ssm").put_parameter(Name=PARAMETER, Type="SecureString",
                                        Value=krt.dumps_credentials("taxi-local", "local-secret"))
    call = setup(simulator[0])

    _call(call)
    _call(call)  # the same question again (same session, driver, car, claim): a new logical call
    first, second = _keys(upstream, upstream_name, path)
    assert first and second and first != second

    upstream.faults[upstream_name] = Fault(mode="error", status=503, delay=0, count=1)
    _call(call)
    failed_try, retry = _keys(upstream, upstream_name, path)[2:]
    assert failed_try == retry and retry not in (first, second)
    krt.forget()


def _task(attempt: int, key: str | None) -> RechargeTask:
    return RechargeTask("car-1/tag-1", car_id="car-1", tag_id="tag-1", status="new", attempt=attempt,
                        attempt_key=key)


def test_claim_and_booking_keys_belong_to_their_attempt():
    """A claim's request_id and a booking's token are stored with the attempt (they are re-sent across
    invocations, and cargo answers a repeated request_id with its first claim): replays of one attempt share
    them; another attempt, or another task of the same car, never does."""
    one, again = _task(1, "k1"), _task(1, "k1")
    next_attempt, other_task = _task(2, "k2"), _task(1, "k3")
    assert attempts.claim_request_id(one) == attempts.claim_request_id(again)
    assert attempts.booking_token(one, "cab-1") == attempts.booking_token(again, "cab-1")
    ids = {attempts.claim_request_id(t) for t in (one, next_attempt, other_task)}
    tokens = {attempts.booking_token(t, "cab-1") for t in (one, next_attempt, other_task)} | {
        attempts.booking_token(one, "cab-2")}
    assert len(ids) == 3 and len(tokens) == 4
    assert attempts.new_attempt_key() != attempts.new_attempt_key()


def test_krt_line_state_keys_belong_to_their_flip(client, simulator, upstream, driver_auth, monkeypatch):
    """A licence's flip carries a random key of its own (uuid4, stored with the flip when it is decided) as KRT's
    event_id and as the idempotency key: an HTTP retry and a re-send after a crash carry it again; another
    flip of the same licence, even to the same state and ID, never does."""
    import datetime as dt
    import uuid

    from chalicelib.core import aws
    from chalicelib.deptrans.store import LineStore
    from tests.deptrans.conftest import PARAMETER, Deptrans

    monkeypatch.setenv("KRT_CREDENTIALS_PARAMETER", PARAMETER)
    krt.forget()
    assert krt.credentials_parameter() == PARAMETER  # read once per process, before the client's stage env applies
    aws.client("ssm").put_parameter(Name=PARAMETER, Type="SecureString",
                                    Value=krt.dumps_credentials("taxi-local", "local-secret"))
    dep = Deptrans(client, simulator[0], upstream, driver_auth)
    dep.online_driver("park1", "k1", "7709000001", "IDKEY0001")
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    dep.events(("park1", "k1", "online", start))
    upstream.faults["krt"] = Fault(mode="error", status=503, delay=0, count=1)
    dep.send()  # flip 1: refused once with a 503, retried by core.http
    dep.events(("park1", "k1", "offline", start + dt.timedelta(seconds=1)), ids=["off"])

    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda died between KRT's answer and our write")

    with monkeypatch.context() as patch:
        patch.setattr(LineStore, "acknowledge", crash)
        dep.send()  # flip 2 reaches KRT, its ack is lost
    dep.send()  # flip 2 again, from what was stored
    dep.events(("park1", "k1", "online", start + dt.timedelta(seconds=2)), ids=["on-again"])
    dep.send()  # flip 3: the same state and ID as flip 1
    calls = [c for c in upstream.calls["krt"] if c["path"] == "/api/v1/line-states"]
    keys = [c["idempotency_token"] for c in calls]
    assert [c["body"]["state"] for c in calls] == ["on_line", "on_line", "off_line", "off_line", "on_line"]
    assert keys == [c["body"]["event_id"] for c in calls]
    assert keys[0] == keys[1] and keys[2] == keys[3]
    assert len({keys[0], keys[2], keys[4]}) == 3
    assert all(uuid.UUID(key).version == 4 for key in keys)
    krt.forget()
