"""Business metrics ride on the JSON log lines as valid CloudWatch Embedded Metric Format, with no personal data."""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from chalicelib.core import lease, metrics
from chalicelib.core.errors import UpstreamUnavailable
from chalicelib.core.queues import handle_batch, handle_batch_together
from chalicelib.core.schema import Schema
from chalicelib.picker_orders.tasks import PICKER_ORDERS_QUEUE
from tests.conftest import failed_ids
from chalicelib.route_sharing import keys as route_sharing, upstreams as route_sharing_upstreams
from chalicelib.route_sharing.schemas import SaveKeyMessage
from local.simulator.server import Fault

PHONE = "+79991234567"
TOKEN = "secret-session-token-0042"


class Message(Schema):
    n: int


def emf_records(capsys) -> list[dict]:
    """Every log line printed since the last call that carries metrics, checked against the EMF spec."""
    out = capsys.readouterr().out
    assert PHONE not in out and TOKEN not in out
    records = []
    for line in out.splitlines():
        record = json.loads(line)
        if "_aws" in record:
            assert_valid_emf(record)
            records.append(record)
    return records


def assert_valid_emf(record: dict) -> None:
    block = record["_aws"]
    assert isinstance(block["Timestamp"], int) and abs(block["Timestamp"] - time.time() * 1000) < 60_000
    assert block["CloudWatchMetrics"]
    for directive in block["CloudWatchMetrics"]:
        assert directive["Namespace"] == "TaxiDelivery"
        assert directive["Dimensions"] and all(isinstance(names, list) for names in directive["Dimensions"])
        for names in directive["Dimensions"]:
            assert "service" in names and len(names) <= 30
            for name in names:  # a dimension's value is a top-level string of the same line
                assert isinstance(record[name], str) and record[name]
        assert directive["Metrics"]
        for metric in directive["Metrics"]:
            assert set(metric) == {"Name", "Unit"} and metric["Unit"] == "Count"
            value = record[metric["Name"]]  # a metric's value is a top-level number of the same line
            assert isinstance(value, (int, float)) and not isinstance(value, bool)


def totals(records: list[dict], **dimensions: str) -> dict[str, float]:
    """Sum of each metric over the records whose dimensions match, as CloudWatch would aggregate them."""
    summed: dict[str, float] = {}
    for record in records:
        if any(record.get(k) != v for k, v in dimensions.items()):
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                summed[metric["Name"]] = summed.get(metric["Name"], 0) + record[metric["Name"]]
    return summed


def test_queue_outcomes_are_counted_per_queue_under_the_consuming_service(capsys):
    def handle(message: Message, meta) -> None:
        if message.n == 2:
            raise RuntimeError("boom")

    records = [{"messageId": f"m{n}", "body": json.dumps({"n": n})} for n in (1, 2, 3)]
    records.append({"messageId": "bad", "body": json.dumps({"n": "x", "phone": PHONE, "token": TOKEN})})
    capsys.readouterr()
    answer = handle_batch(records, Message, handle, PICKER_ORDERS_QUEUE)
    assert failed_ids(answer) == ["m2", "bad"]
    found = emf_records(capsys)
    assert totals(found, service="picker_orders", queue=PICKER_ORDERS_QUEUE) == \
        {"MessagesDone": 2, "MessagesFailed": 1, "MessagesInvalid": 1}
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "queue"]] for r in found)


def test_a_whole_batch_consumer_counts_its_done_and_failed_messages(capsys):
    records = [{"messageId": f"m{n}", "body": json.dumps({"n": n})} for n in range(5)]
    capsys.readouterr()
    handle_batch_together(records, Message, lambda batch: {"m1", "m3"}, "some_queue")
    assert totals(emf_records(capsys), queue="some_queue") == {"MessagesDone": 3, "MessagesFailed": 2}


def test_upstream_failures_are_counted_by_upstream_under_the_calling_service(upstream, capsys):
    upstream.faults["protocol"] = Fault(mode="error", status=503)
    capsys.readouterr()
    with pytest.raises(UpstreamUnavailable):
        route_sharing_upstreams.shared_route("key-metrics-0001")
    found = emf_records(capsys)
    assert totals(found, service="route_sharing", upstream="protocol") == {"UpstreamFailures": 1}
    assert found[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "upstream"]]


def test_job_runs_items_and_skips_are_counted(aws_mock, capsys):
    @lease.single_runner("metrics_test_job", 30)
    def job() -> int:
        return 7

    capsys.readouterr()
    assert job() == 7
    with lease.held("metrics_test_job", 30):
        assert job() is None  # another runner holds the lease
    found = emf_records(capsys)
    assert totals(found, job="metrics_test_job") == {"JobRuns": 1, "ItemsHandled": 7, "JobsSkipped": 1}
    assert {r["service"] for r in found} == {metrics.service_of(job.__module__)}


def test_route_sharing_counts_keys_saved_and_dropped(aws_mock, capsys):
    now = dt.datetime.now(dt.timezone.utc)
    capsys.readouterr()
    route_sharing.save_keys([
        SaveKeyMessage(order_id="m-1", tariff_class="express", phone_ids=["phone-id-1"], created_at=now),
        SaveKeyMessage(order_id="m-2", tariff_class="econom", phone_ids=["phone-id-2"], created_at=now),
    ])
    assert totals(emf_records(capsys), service="route_sharing") == {"KeysSaved": 1, "KeysDropped": 1}


def test_the_writer_refuses_a_unit_cloudwatch_would_not_know():
    with pytest.raises(ValueError):
        metrics.counts("svc", {"Things": 1}, unit="Bananas")
    record = {"event": "x", **metrics.count("svc", "Things", 3, upstream="krt")}
    assert_valid_emf(record)
    assert record["Things"] == 3 and record["upstream"] == "krt"
