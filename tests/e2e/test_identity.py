"""Identity at the gateway, on the deployed local stack: the emulator's API Gateway runs the two TOKEN authorizers
of the template (each its own Lambda), which check sessions with the session services of the upstream simulator.

Every refusal a client sees is asserted here with its real status and the app's error shape (gateway responses);
the in-process twin, tests/core/test_identity.py, asserts the authorizers' decisions.
"""
from __future__ import annotations

import json
import time

import requests

from tests.e2e.test_codedispatch import AREA, MAX_WRONG_CODES, Driver, create, feature_on, stored  # noqa: F401
from tests.e2e.test_picker_orders import TRACKING, Order

STATUS = "/codedispatch/assignment/status"
ASSIGN = "/codedispatch/order/assign"


def error(answer: requests.Response, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), body
    assert code is None or body["code"] == code, body
    return body


def status_of(stack, order_id: str, headers: dict) -> requests.Response:
    return stack.get(STATUS, params={"order_id": order_id}, headers=headers)


def assign(stack, code: str, headers: dict) -> requests.Response:
    return stack.post(ASSIGN, {"code": code, "area_id": AREA}, headers=headers)


def checks(stack, upstream: str) -> int:
    answer = requests.get(f"{stack.simulator}/_control/calls", params={"upstream": upstream}, timeout=5)
    return len(answer.json()["calls"])


def authorizer_refusals(stack, logical_id: str, since_ms: int) -> list[str]:
    """The reasons of the `authorizer.refused` lines the authorizer Lambda logged since `since_ms`."""
    logs = stack.client("logs")
    group = f"/aws/lambda/{stack.function_name(logical_id)}"
    try:
        events = logs.filter_log_events(logGroupName=group, startTime=since_ms)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    lines = [json.loads(e["message"]) for e in events if e["message"].lstrip().startswith("{")]
    return [line.get("reason") for line in lines if line.get("event") == "authorizer.refused"]


def test_a_malformed_session_header_is_a_401_from_the_gateway_and_runs_no_authorizer(stack):
    """The authorizers' identityValidationExpression: the gateway answers a header that cannot be a session
    itself. A well-formed unknown token, sent after, does run each authorizer: the logs below can show a run."""
    since = int(time.time() * 1000) - 1000
    before = checks(stack, "driver_authorizer"), checks(stack, "eats_passport")
    for bad in ("x", "short", "a b c d e f g h", "t" * 513, "Bearer ", "%00%00%00%00%00%00%00%00"):
        error(status_of(stack, "order-1", {"X-Driver-Session": bad}), 401, "UNAUTHORIZED")
        error(stack.get(TRACKING, params={"order_nr": "o1"}, headers={"X-Eats-Session": bad}), 401, "UNAUTHORIZED")
    assert (checks(stack, "driver_authorizer"), checks(stack, "eats_passport")) == before
    unknown = stack.unique("no-such-session")
    error(status_of(stack, "order-1", {"X-Driver-Session": unknown}), 401, "UNAUTHORIZED")
    error(stack.get(TRACKING, params={"order_nr": "o1"}, headers={"X-Eats-Session": unknown}), 401, "UNAUTHORIZED")
    for logical_id in ("DriverSessionAuthorizer", "EatsSessionAuthorizer"):
        reasons = stack.wait_until(
            lambda: (found := authorizer_refusals(stack, logical_id, since)) and "unknown_or_expired" in found
            and found, timeout=30, what=f"{logical_id} logs the unknown session")
        assert "malformed_token" not in reasons, (logical_id, reasons)


def test_a_session_after_bearer_passes_the_gateway(feature_on, driver_auth):
    token = driver_auth(feature_on.unique("park"), "driver-a")["X-Driver-Session"]
    error(status_of(feature_on, "order-1", {"X-Driver-Session": "Bearer " + token}), 404, "assignment_not_found")


def test_no_session_and_forged_identity_headers_are_401_in_the_error_shape(stack):
    forged_driver = {"X-YaTaxi-Park-Id": "park1", "X-YaTaxi-Driver-Profile-Id": "driver-a"}
    for headers in ({}, forged_driver, {**forged_driver, "X-Driver-Session": "no-such-session-token"},
                    {"X-Driver-Session": "x"}, {"X-Eats-Session": "a-session-of-the-wrong-header"}):
        error(status_of(stack, "order-1", headers), 401, "UNAUTHORIZED")
        error(assign(stack, "123456", headers), 401, "UNAUTHORIZED")
    for headers in ({}, {"X-Eats-User": "user_id=c1"}, {"X-Eats-Session": "no-such-session-token"}):
        error(stack.get(TRACKING, params={"order_nr": "o1"}, headers=headers), 401, "UNAUTHORIZED")


def test_another_drivers_session_can_neither_see_nor_take_the_assignment(feature_on, driver_auth):
    stack = feature_on
    order_id = stack.unique("order")
    code = create(stack, order_id)
    first, other = Driver(stack), Driver(stack)
    assert first.assign(code).status_code == 200
    # The other driver's session, with headers naming the first driver: the session decides.
    forged = {**driver_auth(other.park, other.profile), "X-YaTaxi-Park-Id": first.park,
              "X-YaTaxi-Driver-Profile-Id": first.profile}
    error(status_of(stack, order_id, forged), 404, "assignment_not_found")
    error(assign(stack, code, forged), 409, "order_already_taken")
    assert first.status(order_id).status_code == 200
    assert stored(stack, order_id)["driver_id"] == first.driver_id


def test_an_expired_session_is_401(feature_on, driver_auth, eats_auth):
    stack = feature_on
    error(status_of(stack, "order-1", driver_auth(stack.unique("park"), "driver-a", expires_in=0)), 401,
          "UNAUTHORIZED")
    error(stack.get(TRACKING, params={"order_nr": "o1"}, headers=eats_auth(stack.unique("cust"), expires_in=0)),
          401, "UNAUTHORIZED")


def test_the_gateway_caches_a_session_check_per_token(feature_on, driver_auth):
    stack = feature_on
    headers = driver_auth(stack.unique("park"), "driver-a")
    error(status_of(stack, "order-1", headers), 404, "assignment_not_found")
    before = checks(stack, "driver_authorizer")
    for _ in range(2):  # fewer than the wrong-code limit
        error(status_of(stack, "order-1", headers), 404, "assignment_not_found")
        error(assign(stack, "000000", headers), 404)  # another route, the same cached answer
    assert checks(stack, "driver_authorizer") == before


def test_session_service_down_fails_closed_with_503_in_the_error_shape(feature_on, driver_auth, eats_auth):
    stack = feature_on
    order_id = stack.unique("order")
    code = create(stack, order_id)
    driver = driver_auth(stack.unique("park"), "driver-a")  # never used: nothing cached for it
    customer = eats_auth(stack.unique("cust"))
    try:
        stack.fault("driver_authorizer", "error", status=500)
        stack.fault("eats_passport", "error", status=503)
        refused = assign(stack, code, driver)
        error(refused, 503, "session_service_unavailable")
        assert refused.headers.get("Retry-After") == "1"
        error(stack.get(TRACKING, params={"order_nr": "o1"}, headers=customer), 503, "session_service_unavailable")
        assert stored(stack, order_id)["status"] == "pending"
    finally:
        stack.clear_faults("driver_authorizer")
        stack.clear_faults("eats_passport")
    assert assign(stack, code, driver).status_code == 200  # the same session, once the service is back


def test_the_wrong_code_limit_cannot_be_dodged_by_changing_identity_headers(feature_on, driver_auth):
    stack = feature_on
    code = create(stack, stack.unique("order"))
    wrong = "000000" if code != "000000" else "111111"
    session = driver_auth(stack.unique("park"), stack.unique("guesser"))
    for n in range(MAX_WRONG_CODES):
        forged = {**session, "X-YaTaxi-Park-Id": stack.unique("park"), "X-YaTaxi-Driver-Profile-Id": f"p{n}"}
        error(assign(stack, wrong, forged), 404, "code_not_found")
    forged = {**session, "X-YaTaxi-Driver-Profile-Id": stack.unique("fresh")}
    error(assign(stack, code, forged), 429, "too_many_attempts")


def test_an_eats_user_cannot_read_another_customers_tracking(stack, eats_auth):
    order = Order(stack, "po-identity")
    order.send(order.event("new", 0))
    order.wait_for("the owner's screen", lambda body: body["status"] == "new")
    other = {**eats_auth(stack.unique("other")), "X-Eats-User": f"user_id={order.customer}"}
    body = error(stack.get(TRACKING, params={"order_nr": order.order_nr}, headers=other), 404, "order_not_found")
    assert "picker" not in str(body)


def test_identity_values_are_checked_at_the_gateway(feature_on, driver_auth, eats_auth):
    stack = feature_on
    longest = "p" * 64
    error(status_of(stack, "order-1", driver_auth(longest, longest)), 404, "assignment_not_found")
    for park in ("p" * 65, "p" * 5000, "a b", "a/b", "ü"):
        error(status_of(stack, "order-1", driver_auth(park, "driver-a")), 403, "ACCESS_DENIED")
    error(stack.get(TRACKING, params={"order_nr": "o1"}, headers=eats_auth("u" * 65)), 403, "ACCESS_DENIED")

