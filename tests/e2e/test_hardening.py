"""Hostile input on the deployed stack: a poisoned message fails alone on every queue, a body nested deep is a
400, a config value that cannot serve is refused and the old one kept."""
from __future__ import annotations

import datetime as dt
import json

import pytest

# One poison per kind: each once crashed a whole batch (an OverflowError in to_utc, or later in created_at + 7 days),
# or is not even an object.
EDGE_OFFSET = "9999-12-31T23:00:00-05:00"
EDGE_UTC = "9999-12-31T23:59:59Z"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _item(stack, table: str, key: dict) -> dict | None:
    return stack.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _queues(stack) -> dict[str, dict]:
    """Per consumed queue: good messages, poisons, and how to tell a good one was applied (its table item)."""
    ids = {name: [stack.unique(name) for _ in range(3)] for name in ("save", "finish", "picker", "deptrans", "plan")}
    return {
        "order_route_sharing_save_key": {
            "good": [{"order_id": i, "tariff_class": "express", "phone_ids": [stack.unique("ph")], "created_at": _now()}
                     for i in ids["save"][:2]],
            "poison": [{"order_id": ids["save"][2], "tariff_class": "express", "phone_ids": ["p"],
                        "created_at": EDGE_UTC}],
            "applied": lambda body: _item(stack, "route_sharing_orders", {"order_id": {"S": body["order_id"]}}),
        },
        "order_route_sharing_finish_order": {
            # A finish for an order never saved leaves a stub: its effect, readable in the orders table.
            "good": [{"order_id": i, "finished_at": _now(), "tariff_class": "express"} for i in ids["finish"][:2]],
            "poison": [{"order_id": ids["finish"][2], "finished_at": EDGE_OFFSET}],
            "applied": lambda body: _item(stack, "route_sharing_orders", {"order_id": {"S": body["order_id"]}}),
        },
        "eats_orders_tracking_picker_orders": {
            "good": [{"event_type": "STATUS_CHANGE", "order_nr": i, "order_status": "new", "place_id": "place-1",
                      "customer_id": "c1", "created_at": _now()} for i in ids["picker"][:2]],
            "poison": ["[" * 5000 + "]" * 5000],
            "applied": lambda body: _item(stack, "picker_orders", {"order_nr": {"S": body["order_nr"]}}),
        },
        "deptrans_contractor_status_events": {
            "good": [{"park_id": "park-h", "driver_id": i, "status": "online", "updated_at": _now()}
                     for i in ids["deptrans"][:2]],
            "poison": [{"park_id": "park-h", "driver_id": ids["deptrans"][2], "status": "online",
                        "updated_at": EDGE_OFFSET}],
            "applied": lambda body: _item(stack, "deptrans_status_queue",
                                          {"driver_key": {"S": f"{body['park_id']}/{body['driver_id']}"}}),
        },
        "scooters_misc_recharge": {
            "good": [{"task_id": f"{i}/tag", "attempt": 1} for i in ids["plan"][:2]],  # unknown tasks: acknowledged
            "poison": [{"task_id": f"{ids['plan'][2]}/tag", "attempt": 1, "not_before": 10 ** 30}],
            "applied": None,
        },
    }


def test_a_poisoned_message_fails_alone_on_every_queue(stack):
    cases = _queues(stack)
    for queue in cases:
        stack.dlq_bodies(queue)  # start from empty DLQs
    for queue, case in cases.items():
        bodies = [case["good"][0], *case["poison"], case["good"][1]]
        stack.send_batch(queue, [b if isinstance(b, str) else json.dumps(b) for b in bodies])
    for queue, case in cases.items():
        if case["applied"]:
            for body in case["good"]:
                stack.wait_until(lambda: case["applied"](body), what=f"a good message on {queue} applied")
    dead: dict[str, list[str]] = {queue: [] for queue in cases}

    def every_poison_dead() -> bool:
        for queue in cases:
            dead[queue].extend(stack.dlq_bodies(queue))
        return all(len(dead[queue]) >= len(case["poison"]) for queue, case in cases.items())

    # maxReceiveCount 3 with the queues' 10 s visibility timeout locally: about 36 s.
    stack.wait_until(every_poison_dead, timeout=150, interval=3, what="every poison in its DLQ")
    for queue, case in cases.items():
        expected = [b if isinstance(b, str) else json.dumps(b) for b in case["poison"]]
        assert dead[queue] == expected, (queue, dead[queue])  # the good ones never reached the DLQ


@pytest.mark.parametrize("body", ["[" * 3000 + "]" * 3000, '{"order_id": ' + "[" * 3000 + "]" * 3000 + "}",
                                  '{"order_id": "o", "order_id": "p", "area_id": "zenit"}', '{"order_id": 1e999}'])
def test_a_hostile_body_is_a_400_in_the_error_shape(stack, body):
    answer = stack.http.post(stack.api + "/codedispatch/order/create", data=body.encode(), timeout=15,
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) >= {"code", "message"}


def test_a_pattern_that_does_not_compile_is_refused_and_the_old_one_kept(stack):
    name = "/internal/v1/configs/deptrans_id_pattern"
    before = stack.get(name).json()["value"]
    answer = stack.put(name, {"value": "^[0-9A-Z{6,32}$"})
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_config_value", answer.text
    assert stack.get(name).json()["value"] == before
