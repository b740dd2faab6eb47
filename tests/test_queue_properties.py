"""Property: whatever a queue delivers, only the bad records fail, and the good ones are applied.

Every consumer of the app is fed batches that mix valid messages with arbitrary JSON (or not JSON at all) and
with valid messages one of whose fields holds an arbitrary value (edge timestamps, huge numbers, deep nesting,
odd text). Whatever the batch holds: no exception leaves the handler, every valid message is applied (its effect
is read back from the tables) and not reported, and a record that is not even a JSON object is reported failed
(SQS retries it alone, then moves it to the DLQ). A mutated message may be valid or not: it only must not take its
batch-mates down with it. Runs in-process against moto and the upstream simulator; bounded by max_examples.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core import clock
from chalicelib.deptrans.models import StatusQueueEntry, driver_key
from chalicelib.picker_orders.models import PickerOrder
from chalicelib.route_sharing import keys
from chalicelib.route_sharing.models import SharedOrder
from chalicelib.route_sharing.schemas import SaveKeyMessage
from chalicelib.scooters.recharge.lifecycle import NEW, WAITING
from chalicelib.scooters.recharge.models import RechargeTask, get_task
from tests.conftest import failed_ids, sqs_event

EXAMPLES = 100
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)

# Values that have broken consumers before, or could: timestamps at the edge of datetime's range (with and
# without an offset), numbers past int()'s digit limit or float's range, deep nesting, text that is not an id.
EDGE_VALUES = st.sampled_from([
    "9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+05:00", "1970-01-01T00:00:00Z",
    "2101-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "", " ", "\u0000", "\ud800", "null", "NaN",
    10 ** 400, -(10 ** 30), 1e308, -1, 0, 2 ** 63, True, None, [], {}, [[[[[[[[[[1]]]]]]]]]],
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40) | EDGE_VALUES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
NOT_AN_OBJECT = st.one_of(
    st.text(max_size=60),  # mostly not JSON at all
    JSON_VALUES.filter(lambda value: not isinstance(value, dict)).map(json.dumps),
    st.integers(1000, 5000).map(lambda depth: "[" * depth + "]" * depth),  # nested past the recursion limit
    st.just('{"order_id": "o", "order_id": '), st.just(b"\xff\xfe".decode("latin-1")),
)


@dataclasses.dataclass
class Consumer:
    handler: str
    queue: str
    valid: Callable[[str], dict]  # a valid message about a fresh id
    applied: Callable[[str], bool]  # is that message's effect in the tables?
    prepare: Callable[[str], None] = lambda ident: None  # what must exist before (e.g. the task it plans)


def _order(ident: str) -> SharedOrder | None:
    try:
        return SharedOrder.get(ident)
    except SharedOrder.DoesNotExist:
        return None


def _saved_before_finish(ident: str) -> None:
    outcome, = keys.save_keys([SaveKeyMessage(order_id=ident, tariff_class="express", phone_ids=["phone-f"],
                                                 created_at=NOW)])
    assert outcome is keys.SaveOutcome.SAVED


def _picker_order(ident: str) -> bool:
    try:
        return PickerOrder.get(ident).status == "assigned"
    except PickerOrder.DoesNotExist:
        return False


def _deptrans_entry(ident: str) -> bool:
    try:
        return StatusQueueEntry.get(driver_key("park-p", ident)).status == "online"
    except StatusQueueEntry.DoesNotExist:
        return False


def _task_to_plan(ident: str) -> None:
    # No depots are configured: planning finds no cabinet and parks the task (a visible, upstream-free effect).
    RechargeTask(ident, car_id=ident, tag_id="tag", status=NEW, attempt=1, attempt_key=uuid.uuid4().hex,
                 position=[37.62, 55.75], failures=0, created_at=NOW, updated_at=NOW,
                 expires_at=NOW + dt.timedelta(days=14)).save()


CONSUMERS = {
    "save_sharing_keys": Consumer(
        "save_sharing_keys", "order_route_sharing_save_key",
        lambda ident: {"order_id": ident, "tariff_class": "express", "phone_ids": [f"phone-{ident}"],
                       "created_at": NOW.isoformat()},
        lambda ident: (order := _order(ident)) is not None and bool(order.sharing_key)),
    "finish_shared_order": Consumer(
        "finish_shared_order", "order_route_sharing_finish_order",
        lambda ident: {"order_id": ident, "finished_at": NOW.isoformat(), "tariff_class": "express"},
        lambda ident: (order := _order(ident)) is not None and order.finished_at == NOW,
        prepare=_saved_before_finish),
    "picker_order_events": Consumer(
        "picker_order_events", "eats_orders_tracking_picker_orders",
        lambda ident: {"event_type": "STATUS_CHANGE", "order_nr": ident, "order_status": "assigned",
                       "place_id": "place-1", "customer_id": "c1", "picker_id": "picker-1",
                       "created_at": NOW.isoformat()},
        _picker_order),
    "deptrans_status_events": Consumer(
        "deptrans_status_events", "deptrans_contractor_status_events",
        lambda ident: {"park_id": "park-p", "driver_id": ident, "status": "online", "updated_at": NOW.isoformat()},
        _deptrans_entry),
    "scooters_misc_recharge": Consumer(
        "scooters_misc_recharge", "scooters_misc_recharge",
        lambda ident: {"task_id": ident, "attempt": 1},
        lambda ident: (task := get_task(ident)) is not None and task.status == WAITING,
        prepare=_task_to_plan),
}


@st.composite
def batches(draw, consumer: Consumer) -> list[tuple[str, str, str]]:
    """[(kind, ident, body)]: kind valid | junk | mutated; 1..6 records."""
    records = []
    for _ in range(draw(st.integers(1, 6))):
        ident = f"p{uuid.uuid4().hex[:16]}"
        kind = draw(st.sampled_from(["valid", "valid", "junk", "mutated"]))
        if kind == "junk":
            records.append((kind, ident, draw(NOT_AN_OBJECT)))
            continue
        message = consumer.valid(ident)
        if kind == "mutated":
            field = draw(st.sampled_from(sorted(message) + ["extra_field"]))
            message[field] = draw(JSON_VALUES)
        records.append((kind, ident, json.dumps(message)))
    return records


def _text(body: str) -> str:
    # SQS carries text; lone surrogates from st.text() cannot be sent as UTF-8, so they arrive replaced.
    return body.encode("utf-8", "replace").decode("utf-8")


@pytest.mark.parametrize("name", sorted(CONSUMERS))
def test_only_bad_records_fail_and_good_ones_are_applied(name, client):
    consumer = CONSUMERS[name]
    clock.freeze(NOW)
    seen = {"batches": 0, "records": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(batches(consumer))
    def check(records):
        for kind, ident, _ in records:
            if kind != "junk":
                consumer.prepare(ident)
        ids = [f"m{index}-{ident}" for index, (_, ident, _) in enumerate(records)]
        event = sqs_event(client, consumer.queue, [_text(body) for _, _, body in records], ids)
        answer = client.lambda_.invoke(consumer.handler, event).payload  # raises if the handler does
        failed = set(failed_ids(answer))
        for message_id, (kind, ident, _) in zip(ids, records):
            if kind == "valid":
                assert message_id not in failed, (name, records)
                assert consumer.applied(ident), (name, ident)
            elif kind == "junk":
                assert message_id in failed, (name, records)
        seen["batches"] += 1
        seen["records"] += len(records)

    check()
    assert seen["batches"] == EXAMPLES
    print(f"{name}: {seen['batches']} batches, {seen['records']} records")


def test_a_mutated_timestamp_at_the_edge_of_the_range_is_invalid_input():
    """The regression behind this file: 9999-12-31T23:00-05:00 used to overflow in to_utc (OverflowError) and
    crash the whole batch; an in-range 9999-12-31T23:59:59Z overflowed later, in created_at + 7 days."""
    from pydantic import ValidationError

    for value in ("9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z"):
        with pytest.raises(ValidationError):
            SaveKeyMessage.model_validate({"order_id": "o", "tariff_class": "express", "created_at": value})
    assert SaveKeyMessage.model_validate({"order_id": "o", "tariff_class": "express",
                                          "created_at": "2099-12-31T18:00:00-05:00"}).created_at.year == 2099
