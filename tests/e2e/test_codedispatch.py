"""Codedispatch on the deployed local stack: create -> assign -> drivers-lookup -> assigned | error, a new
attempt after an error, the wrong-code limit and the daily lockout, and a longer code length in one area.

Drives the real API (through the :8000 forwarder), the real tables and the processing queue in the
emulator, and the tracker in the upstream simulator.
"""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import requests

from tests.conftest import as_driver

AREA = "zenit"
PROCESSING_QUEUE = "codedispatch_order_processing"
MAX_WRONG_CODES = 3
GENERATOR = {"length": 6, "alphabet": "0123456789", "max_attempts": 10, "max_wrong_codes": MAX_WRONG_CODES,
             "wrong_codes_window_seconds": 600, "lockout_after_limits": 2}
ZONES = {AREA: {"enabled": True, "instructions": "Назовите водителю код заказа у выхода со стадиона",
                "order_expire_seconds": 1800, "driver_due_offset_seconds": 300}}
CONFIG_CACHE_WAIT = 1.5  # CONFIG_CACHE_SECONDS is 1 in the local stage: warm Lambdas re-read after it


@pytest.fixture(scope="module")
def feature_on(stack):
    stack.put_config("code_dispatch", {"enabled": True})
    stack.put_config("CODE_DISPATCH_PROCESSING_ENABLED", True)
    stack.put_config("CODE_DISPATCH_GENERATOR_SETTINGS", GENERATOR)
    stack.put_config("CODE_DISPATCH_ZONES_SETTINGS", ZONES)
    time.sleep(CONFIG_CACHE_WAIT)
    return stack


def driver_headers(park: str, profile: str) -> dict:
    return as_driver(park, profile)  # a session of that driver in the stack's simulator (tests/conftest.py)


class Driver:
    def __init__(self, stack):
        self.stack = stack
        self.park, self.profile = stack.unique("park"), stack.unique("profile")
        self.driver_id = f"{self.park}_{self.profile}"

    def assign(self, code: str) -> requests.Response:
        return self.stack.post("/codedispatch/order/assign", {"code": code, "area_id": AREA},
                               headers=driver_headers(self.park, self.profile))

    def status(self, order_id: str) -> requests.Response:
        return self.stack.get("/codedispatch/assignment/status", params={"order_id": order_id},
                              headers=driver_headers(self.park, self.profile))


def create(stack, order_id: str, length: int = 6) -> str:
    answer = stack.post("/codedispatch/order/create", {"order_id": order_id, "area_id": AREA})
    assert answer.status_code == 200, answer.text
    code = answer.json()["code"]
    assert len(code) == length and code.isdigit()
    return code


def lookup(stack, order_id: str) -> requests.Response:
    return stack.post("/codedispatch/drivers-lookup", {"order_id": order_id})


def processing_message(stack, order_id: str, attempt: int = 1) -> dict | None:
    """Find (and delete) this order's processing push of `attempt`; others' messages come back after 1 s."""
    sqs, url = stack.client("sqs"), stack.queue_url(PROCESSING_QUEUE)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1,
                              WaitTimeSeconds=1).get("Messages", [])
    for message in got:
        body = json.loads(message["Body"])
        if body.get("order_id") == order_id and body.get("attempt") == attempt:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return body
    return None


def tracker_calls(stack, order_id: str) -> list[dict]:
    answer = requests.get(f"{stack.simulator}/_control/calls", params={"upstream": "tracker"}, timeout=5)
    assert answer.status_code == 200, answer.text
    return [c for c in answer.json()["calls"] if (c.get("body") or {}).get("order_id") == order_id]


def stored(stack, order_id: str) -> dict:
    item = stack.client("dynamodb").get_item(TableName="codedispatch_assignments",
                                             Key={"order_id": {"S": order_id}}, ConsistentRead=True)["Item"]
    return {"status": item["status"]["S"], "driver_id": item.get("driver_id", {}).get("S"),
            "error_code": item.get("error_code", {}).get("S"), "changes": len(item["changes"]["L"])}


def test_from_create_to_assigned(feature_on):
    stack = feature_on
    order_id = stack.unique("order")
    code = create(stack, order_id)
    assert create(stack, order_id) == code  # idempotent per order
    first, second = Driver(stack), Driver(stack)

    answer = first.assign(code)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"order_id": order_id, "status": "processing"}
    pushed = stack.wait_until(lambda: processing_message(stack, order_id), timeout=20,
                              what="the processing push in codedispatch_order_processing")
    assert pushed == {"order_id": order_id, "area_id": AREA, "driver_id": first.driver_id,
                      "park_db_id": first.park, "driver_profile_id": first.profile, "attempt": 1}
    assert first.assign(code).status_code == 200  # the same driver again: fine
    taken = second.assign(code)
    assert (taken.status_code, taken.json()["code"]) == (409, "order_already_taken")
    assert first.status(order_id).json() == {"order_id": order_id, "status": "processing"}
    assert second.status(order_id).status_code == 404

    found = lookup(stack, order_id)
    assert found.status_code == 200, found.text
    assert found.json() == {"order_id": order_id, "driver": {
        "driver_id": first.driver_id, "park_db_id": first.park, "driver_profile_id": first.profile}}
    calls = tracker_calls(stack, order_id)
    assert len(calls) == 1 and calls[0]["path"] == "/driver/acquire"
    assert calls[0]["idempotency_token"]
    assert first.status(order_id).json() == {"order_id": order_id, "status": "assigned"}
    assert stored(stack, order_id) == {"status": "assigned", "driver_id": first.driver_id, "error_code": None,
                                       "changes": 3}


def test_driver_missing_from_the_tracker_ends_in_error(feature_on):
    stack = feature_on
    order_id = stack.unique("order")
    code = create(stack, order_id)
    ghost = Driver(stack)
    assert ghost.assign(code).status_code == 200
    stack.simulator_control("tracker/driver", {"park_db_id": ghost.park, "driver_profile_id": ghost.profile,
                                               "absent": True})
    answer = lookup(stack, order_id)
    assert (answer.status_code, answer.json()["code"]) == (404, "driver_not_found_in_tracker")
    polled = ghost.status(order_id).json()
    assert polled["status"] == "error" and polled["error_code"] == "driver_not_found_in_tracker"
    assert polled["error_message"]
    assert stored(stack, order_id)["status"] == "error"
    assert lookup(stack, order_id).json()["code"] == "driver_not_found_in_tracker"  # final for this attempt

    # Typing the code again starts a new attempt: here another driver, whom the tracker knows.
    other = Driver(stack)
    retyped = other.assign(code)
    assert retyped.status_code == 200, retyped.text
    assert retyped.json() == {"order_id": order_id, "status": "processing"}
    pushed = stack.wait_until(lambda: processing_message(stack, order_id, attempt=2), timeout=20,
                              what="the new attempt's processing push")
    assert pushed["driver_id"] == other.driver_id
    assert ghost.status(order_id).status_code == 404  # no longer the ghost's
    found = lookup(stack, order_id)
    assert found.status_code == 200, found.text
    assert found.json()["driver"]["driver_id"] == other.driver_id
    assert other.status(order_id).json() == {"order_id": order_id, "status": "assigned"}
    # create, lookup x2 (one per attempt): pending, processing, error; pending, processing, assigned
    assert stored(stack, order_id) == {"status": "assigned", "driver_id": other.driver_id, "error_code": None,
                                       "changes": 6}


def test_tracker_down_is_503_without_a_state_change(feature_on):
    stack = feature_on
    order_id = stack.unique("order")
    driver = Driver(stack)
    assert driver.assign(create(stack, order_id)).status_code == 200
    stack.fault("tracker", "error", status=500)
    try:
        answer = lookup(stack, order_id)
        assert (answer.status_code, answer.json()["code"]) == (503, "upstream_unavailable")
        assert stored(stack, order_id) == {"status": "processing", "driver_id": driver.driver_id,
                                           "error_code": None, "changes": 2}
    finally:
        stack.clear_faults("tracker")
    assert lookup(stack, order_id).status_code == 200
    assert driver.status(order_id).json()["status"] == "assigned"
    # The failed call, its retries and the repeated lookup are one logical acquire: one token for them all.
    tokens = [call["idempotency_token"] for call in tracker_calls(stack, order_id)]
    assert len(tokens) >= 2 and len(set(tokens)) == 1 and tokens[0], tokens


def test_bad_input_and_unknown_codes(feature_on):
    stack = feature_on
    driver = Driver(stack)
    bad = driver.assign("12ab56")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_code_format")
    no_identity = stack.post("/codedispatch/order/assign", {"code": "123456", "area_id": AREA})
    assert no_identity.status_code == 401
    assert stack.post("/codedispatch/order/create", {"order_id": "x"}).status_code == 400
    off = stack.post("/codedispatch/order/create", {"order_id": stack.unique("order"), "area_id": "nowhere"})
    assert (off.status_code, off.json()["code"]) == (409, "area_disabled")
    unknown = lookup(stack, stack.unique("order"))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "assignment_not_found")


def test_too_many_wrong_codes_is_429_for_every_code(feature_on):
    stack = feature_on
    order_id = stack.unique("order")
    code = create(stack, order_id)
    wrong = "000000" if code != "000000" else "111111"
    guesser = Driver(stack)
    for _ in range(MAX_WRONG_CODES):
        answer = guesser.assign(wrong)
        assert (answer.status_code, answer.json()["code"]) == (404, "code_not_found")
    refused = guesser.assign(code)  # even the right code: the answer must not tell right from wrong
    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_attempts")
    assert stored(stack, order_id)["status"] == "pending"
    assert Driver(stack).assign(code).status_code == 200  # another driver is not limited


def test_the_experiment_switches_code_dispatch_per_park(feature_on):
    stack = feature_on
    allowed, refused = Driver(stack), Driver(stack)
    previous = stack.get("/internal/v1/configs/code_dispatch").json()
    assert previous["kind"] == "experiment" and previous["kwargs"] == ["area_id", "park_id", "driver_profile_id"]
    stack.put_config("code_dispatch", {"clauses": [
        {"title": "e2e: one park off", "predicate": {"eq": {"park_id": refused.park}}, "value": {"enabled": False}},
        {"title": "e2e: the area on", "predicate": {"in": {"area_id": [AREA]}}, "value": {"enabled": True}},
    ], "default": {"enabled": False}})
    time.sleep(CONFIG_CACHE_WAIT)
    try:
        code = create(stack, stack.unique("cd-exp"))
        answer = refused.assign(code)
        assert (answer.status_code, answer.json()["code"]) == (409, "code_dispatch_disabled")
        assert allowed.assign(code).status_code == 200
    finally:
        stack.put_config("code_dispatch", previous["value"])
        time.sleep(CONFIG_CACHE_WAIT)


def test_hitting_the_limit_twice_locks_the_driver_out_for_the_rest_of_the_day(feature_on):
    stack = feature_on
    window = 10
    to_midnight = (dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
                   + dt.timedelta(days=1) - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if to_midnight < 120:
        pytest.skip("too close to the end of the UTC day for the lockout's retry_after to be told from a window's")
    stack.put_config("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "wrong_codes_window_seconds": window})
    time.sleep(CONFIG_CACHE_WAIT)
    try:
        code = create(stack, stack.unique("order"))
        wrong = "000000" if code != "000000" else "111111"
        guesser, wrong_answers, refusals = Driver(stack), 0, []
        for _ in range(30):  # a window's limit, its wait, the next window's limit...: until locked out
            answer = guesser.assign(wrong)
            if answer.status_code == 404:
                wrong_answers += 1
                continue
            assert (answer.status_code, answer.json()["code"]) == (429, "too_many_attempts"), answer.text
            retry_after = answer.json()["details"]["retry_after_seconds"]
            refusals.append(retry_after)
            if retry_after > window:
                break
            time.sleep(retry_after)
        # 2 x 3 wrong codes in the day, however the windows cut them; then refused until the UTC day ends.
        assert wrong_answers == 2 * MAX_WRONG_CODES, (wrong_answers, refusals)
        assert refusals and refusals[-1] > window and abs(refusals[-1] - to_midnight) < 120, refusals
        time.sleep(window)  # a whole window later: still locked out, for the right code too
        locked = guesser.assign(code)
        assert (locked.status_code, locked.json()["code"]) == (429, "too_many_attempts")
        other = Driver(stack)  # nobody else is locked out
        assert other.assign(wrong).status_code == 404
        assert other.assign(code).status_code == 200
    finally:
        stack.put_config("CODE_DISPATCH_GENERATOR_SETTINGS", GENERATOR)
        time.sleep(CONFIG_CACHE_WAIT)


def test_an_area_gets_longer_codes_while_its_old_codes_still_assign(feature_on):
    stack = feature_on
    old_order, new_order = stack.unique("order"), stack.unique("order")
    old_code = create(stack, old_order)
    stack.put_config("CODE_DISPATCH_ZONES_SETTINGS", {AREA: {**ZONES[AREA], "code_length": 9}})
    time.sleep(CONFIG_CACHE_WAIT)
    try:
        new_code = create(stack, new_order, length=9)
        for code, order_id in ((old_code, old_order), (new_code, new_order)):
            driver = Driver(stack)
            answer = driver.assign(code)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"order_id": order_id, "status": "processing"}
            found = lookup(stack, order_id)
            assert found.status_code == 200, found.text
            assert driver.status(order_id).json() == {"order_id": order_id, "status": "assigned"}
        assert create(stack, old_order) == old_code  # an order keeps the code it was given
    finally:
        stack.put_config("CODE_DISPATCH_ZONES_SETTINGS", ZONES)
        time.sleep(CONFIG_CACHE_WAIT)
