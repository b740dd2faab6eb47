"""Identity at the gateway, in-process: the two authorizers against the session services of the upstream
simulator, and views that read the caller only from the authorizer context.

Chalice's test client runs the built-in authorizers, but not as API Gateway does (../shared/EMULATOR-NOTES.md):
it reads the token from `Authorization` whatever `header=` says, raises the authorizer's exceptions into the
test instead of answering 401 / 503, and answers its own refusals in its own body. So here the refusals are
asserted as the authorizer's decisions; the statuses and the error shape a client sees are asserted on the
deployed stack in tests/e2e/test_identity.py.
"""
from __future__ import annotations

import re

import pytest

from chalicelib.codedispatch.models import Assignment
from chalicelib.core import clock
from chalicelib.core.api import ROUTES, DRIVER, EATS_USER
from chalicelib.core.openapi import build_document
from chalicelib.core import authorizers
from local.simulator.server import Fault
from tests.codedispatch.conftest import AREA, cd, created_code, post, sim_control  # noqa: F401 - cd: fixture
from tests.picker_orders.helpers import TRACKING, at, send, status_event

ASSIGN = "/codedispatch/order/assign"
STATUS = "/codedispatch/assignment/status?order_id="
FORGED_DRIVER = {"X-YaTaxi-Park-Id": "park1", "X-YaTaxi-Driver-Profile-Id": "driver-a"}
FORGED_USER = {"X-Eats-User": "user_id=c1"}


def assign(client, code: str, headers: dict):
    return post(client, ASSIGN, {"code": code, "area_id": AREA}, headers)


def refused_at_the_gateway(answer, status: int = 401) -> bool:
    error_type = {401: "UnauthorizedException", 403: "AccessDeniedException"}[status]
    return answer.status_code == status and answer.headers.get("x-amzn-ErrorType") == error_type


# --- who may call -------------------------------------------------------------------------------------------

def test_every_driver_and_eats_route_is_behind_its_authorizer_and_documented_with_its_session_header(client):
    from app import app

    document = build_document()
    for spec in ROUTES:
        if spec.kind not in (DRIVER, EATS_USER):
            continue
        entry = app.routes[spec.path][spec.method]
        expected = {DRIVER: ("driver_session_authorizer", "X-Driver-Session", "driverSession"),
                    EATS_USER: ("eats_session_authorizer", "X-Eats-Session", "eatsSession")}[spec.kind]
        assert (entry.authorizer.name, entry.authorizer.config.header) == expected[:2]
        operation = document["paths"][spec.path][spec.method.lower()]
        assert operation["security"] == [{expected[2]: []}]
        assert document["components"]["securitySchemes"][expected[2]]["name"] == expected[1]
        names = {p["name"].lower() for p in operation["parameters"]}
        assert not names & {"x-yataxi-park-id", "x-yataxi-driver-profile-id", "x-eats-user"}
        assert {"401", "403", "503"} <= set(operation["responses"])


def test_no_session_is_refused_before_the_view(cd):
    code = created_code(cd, "order-1")
    assert refused_at_the_gateway(assign(cd, code, {}))
    assert refused_at_the_gateway(cd.http.get(STATUS + "order-1"))
    assert refused_at_the_gateway(cd.http.get(f"{TRACKING}?order_nr=o1"))
    assert Assignment.get("order-1").status == "pending"


def test_forged_identity_headers_without_a_session_are_refused(cd):
    code = created_code(cd, "order-1")
    assert refused_at_the_gateway(assign(cd, code, FORGED_DRIVER))
    assert refused_at_the_gateway(cd.http.get(STATUS + "order-1", headers=FORGED_DRIVER))
    assert refused_at_the_gateway(cd.http.get(f"{TRACKING}?order_nr=o1", headers=FORGED_USER))
    assert Assignment.get("order-1").status == "pending"


def test_forged_identity_headers_beside_a_session_are_ignored(cd, driver_auth):
    code = created_code(cd, "order-1")
    answer = assign(cd, code, {**driver_auth("park2", "driver-b"), **FORGED_DRIVER})
    assert answer.status_code == 200, answer.body
    stored = Assignment.get("order-1")
    assert (stored.park_db_id, stored.driver_profile_id) == ("park2", "driver-b")
    # The driver the forged headers name has nothing to see.
    mine = cd.http.get(STATUS + "order-1", headers=driver_auth("park1", "driver-a"))
    assert (mine.status_code, mine.json_body["code"]) == (404, "assignment_not_found")


def test_another_drivers_session_can_neither_see_nor_take_the_assignment(cd, driver_auth):
    code = created_code(cd, "order-1")
    first, other = driver_auth("park1", "driver-a"), driver_auth("park1", "driver-b")
    assert assign(cd, code, first).status_code == 200
    seen = cd.http.get(STATUS + "order-1", headers=other)
    assert (seen.status_code, seen.json_body["code"]) == (404, "assignment_not_found")
    taken = assign(cd, code, other)
    assert (taken.status_code, taken.json_body["code"]) == (409, "order_already_taken")
    assert cd.http.get(STATUS + "order-1", headers=first).status_code == 200
    assert Assignment.get("order-1").driver_profile_id == "driver-a"


def test_sessions_with_colliding_joined_ids_are_different_drivers(cd, driver_auth):
    code = created_code(cd, "order-1")
    assert assign(cd, code, driver_auth("a_b", "c")).status_code == 200
    assert assign(cd, code, driver_auth("a", "b_c")).status_code == 409
    assert cd.http.get(STATUS + "order-1", headers=driver_auth("a", "b_c")).status_code == 404


def test_the_wrong_code_limit_cannot_be_dodged_by_changing_identity_headers(cd, driver_auth):
    code = created_code(cd, "order-1")
    session = driver_auth("park1", "guesser")
    wrong = "000000" if code != "000000" else "111111"
    for n in range(10):  # the default limit: 10 wrong codes per driver, area and window
        answer = assign(cd, wrong, {**session, "X-YaTaxi-Park-Id": "park1", "X-YaTaxi-Driver-Profile-Id": f"p{n}"})
        assert answer.status_code == 404, answer.body
    refused = assign(cd, code, {**session, "X-YaTaxi-Driver-Profile-Id": "fresh-profile"})
    assert (refused.status_code, refused.json_body["code"]) == (429, "too_many_attempts")


def test_an_eats_user_cannot_read_another_customers_tracking(client, eats_auth):
    clock.freeze(at(1))
    assert send(client, status_event("o1", "new", at(0), customer_id="c1")) == []
    other = client.http.get(f"{TRACKING}?order_nr=o1", headers={**eats_auth("c2"), **FORGED_USER})
    assert (other.status_code, other.json_body["code"]) == (404, "order_not_found")
    assert "picker" not in other.body.decode()
    assert client.http.get(f"{TRACKING}?order_nr=o1", headers=eats_auth("c1")).status_code == 200


# --- the authorizers' decisions --------------------------------------------------------------------------------

def test_unknown_expired_malformed_and_other_kind_sessions_are_unauthorized(cd, driver_auth, eats_auth, upstream):
    code = created_code(cd, "order-1")
    used = driver_auth("park1", "driver-a")
    assert assign(cd, code, used).status_code == 200
    sim_control(upstream, "sessions/expire", {"token": used["X-Driver-Session"]})
    for headers in (used,  # expired after use (no gateway cache in-process)
                    driver_auth("park1", "driver-a", expires_in=0),  # expired before its first use
                    {"Authorization": "no-such-session-token"},
                    {"Authorization": "short"}, {"Authorization": "x" * 600}, {"Authorization": "a b c d e f g h"},
                    {"Authorization": eats_auth("c1")["X-Eats-Session"]}):  # an eats session is no driver session
        with pytest.raises(authorizers.Unauthorized) as refused:
            cd.http.get(STATUS + "order-1", headers=headers)
        assert str(refused.value) == "Unauthorized"  # the exact message API Gateway answers 401 for
    with pytest.raises(authorizers.Unauthorized):
        cd.http.get(f"{TRACKING}?order_nr=o1", headers=eats_auth("c1", expires_in=0))


@pytest.mark.parametrize("fault", [Fault(mode="error", status=500), Fault(mode="error", status=400),
                                   Fault(mode="timeout", delay=1.0)], ids=["5xx", "4xx", "timeout"])
def test_session_service_down_fails_closed(cd, driver_auth, upstream, fault):
    code = created_code(cd, "order-1")
    headers = driver_auth("park1", "driver-a")
    upstream.faults["driver_authorizer"] = fault
    with pytest.raises(authorizers.SessionServiceUnavailable):
        assign(cd, code, headers)
    assert Assignment.get("order-1").status == "pending"
    upstream.faults.clear()
    assert assign(cd, code, headers).status_code == 200


def test_eats_passport_down_fails_closed(client, eats_auth, upstream):
    headers = eats_auth("c1")
    upstream.faults["eats_passport"] = Fault(mode="error", status=503)
    with pytest.raises(authorizers.SessionServiceUnavailable):
        client.http.get(f"{TRACKING}?order_nr=o1", headers=headers)


def test_a_passing_failure_of_the_session_service_is_retried_with_a_key_that_is_not_the_token(cd, driver_auth,
                                                                                               upstream):
    code = created_code(cd, "order-1")
    headers = driver_auth("park1", "driver-a")
    upstream.faults["driver_authorizer"] = Fault(mode="error", status=502, count=1)
    assert assign(cd, code, headers).status_code == 200
    calls = upstream.calls["driver_authorizer"]
    assert len(calls) == 2 and calls[0]["idempotency_token"] == calls[1]["idempotency_token"]
    assert headers["X-Driver-Session"] not in calls[0]["idempotency_token"]


def test_an_unusable_answer_of_the_session_service_fails_closed(cd, driver_auth, monkeypatch):
    headers = driver_auth("park1", "driver-a")
    monkeypatch.setattr(authorizers.http, "call_json", lambda *args, **kwargs: {"park_id": "park1"})
    with pytest.raises(authorizers.SessionServiceUnavailable):
        cd.http.get(STATUS + "order-1", headers=headers)


def test_an_allow_covers_every_route_the_gateway_may_reuse_it_for(upstream, driver_auth):
    token = driver_auth("park1", "driver-a")["X-Driver-Session"]
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/POST/codedispatch/order/assign"
    answer = authorizers.driver_session_authorizer(
        {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}, None)
    assert answer["principalId"] == "driver/park1/driver-a"
    assert answer["context"] == {"park_id": "park1", "driver_profile_id": "driver-a"}
    assert answer["policyDocument"]["Statement"] == [{
        "Action": "execute-api:Invoke", "Effect": "Allow",
        "Resource": ["arn:aws:execute-api:us-east-1:123456789012:abc123/api/*"]}]


@pytest.mark.parametrize("header", ["", "x", "short", "a b c d e f g h", "ü" * 10, "t" * 513, "Bearer ",
                                    "Bearer  x", "token\nX-Forged: 1"])
def test_a_malformed_session_header_never_reaches_the_session_service(upstream, header):
    """What the gateway's identityValidationExpression (the same pattern) refuses, the Lambda refuses too."""
    assert not re.fullmatch(authorizers.SESSION_HEADER_PATTERN, header.strip())
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/GET/codedispatch/assignment/status"
    with pytest.raises(authorizers.Unauthorized):
        authorizers.driver_session_authorizer({"type": "TOKEN", "authorizationToken": header, "methodArn": arn}, None)
    assert not upstream.calls["driver_authorizer"]


def test_a_session_after_bearer_is_the_same_session(cd, driver_auth, upstream):
    token = driver_auth("park1", "driver-a")["X-Driver-Session"]
    assert re.fullmatch(authorizers.SESSION_HEADER_PATTERN, token)
    for header in (token, "Bearer " + token, "bearer  " + token):
        assert cd.http.get(STATUS + "order-1", headers={"Authorization": header}).status_code == 404
    assert [call["body"]["token"] for call in upstream.calls["driver_authorizer"]] == [token] * 3


# --- identity values ----------------------------------------------------------------------------------------

def test_identity_values_of_every_length_reach_the_view_or_are_denied_never_a_5xx(cd, driver_auth, eats_auth):
    for length in range(0, 100):
        value = "p" * length
        for headers, path in ((driver_auth(value, "driver-a"), STATUS + "order-1"),
                              (driver_auth("park1", value), STATUS + "order-1"),
                              (eats_auth(value), f"{TRACKING}?order_nr=o1")):
            answer = cd.http.get(path, headers=headers)
            if 1 <= length <= 64:
                assert (answer.status_code, answer.json_body["code"]) in {(404, "assignment_not_found"),
                                                                          (404, "order_not_found")}, length
            else:
                assert refused_at_the_gateway(answer, 403), (length, answer.status_code)


@pytest.mark.parametrize("value", ["a b", "a/b", "park:1", "ü", "a\nb", "<b>", "a,user_id=c1", "%41", "a\x00b"])
def test_odd_identity_values_are_denied_at_the_gateway(cd, driver_auth, eats_auth, value):
    assert refused_at_the_gateway(cd.http.get(STATUS + "order-1", headers=driver_auth(value, "driver-a")), 403)
    assert refused_at_the_gateway(cd.http.get(f"{TRACKING}?order_nr=o1", headers=eats_auth(value)), 403)


def test_a_view_refuses_an_odd_identity_even_if_an_authorizer_let_it_through(cd, driver_auth, monkeypatch):
    """Defence in depth: the context is only as good as the authorizer that wrote it."""
    headers = driver_auth("park1", "driver-a")
    monkeypatch.setattr(authorizers, "check_session",
                        lambda upstream, token, fields: {"park_id": "p" * 500, "driver_profile_id": "driver-a"})
    answer = cd.http.get(STATUS + "order-1", headers=headers)
    assert (answer.status_code, answer.json_body["code"]) == (403, "identity_invalid")
    assert set(answer.json_body) == {"code", "message"} and "ppp" not in answer.json_body["message"]
    monkeypatch.setattr(authorizers, "check_session", lambda upstream, token, fields: {"park_id": "park1"})
    answer = cd.http.get(STATUS + "order-1", headers=headers)
    assert (answer.status_code, answer.json_body["code"]) == (401, "driver_unauthorized")
