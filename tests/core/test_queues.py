"""core.queues: a batch is handled record by record and only the failed records are reported; sending works.

Logs are JSON lines on stdout: they name the message, never its body (bodies carry phone numbers).
"""
from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.core import queues
from chalicelib.core.aws import client as aws_client

QUEUE = "order_route_sharing_save_key"
PHONE = "+79991234567"


class Ping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1)
    phone: str = Field(pattern=r"^\+7\d{10}$")
    fail: bool = False


def record(message_id: str, body, receive_count: int = 1) -> dict:
    return {"messageId": message_id, "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receive_count)}}


def good(order_id: str, **extra) -> dict:
    return {"order_id": order_id, "phone": PHONE, **extra}


class Recorder:
    def __init__(self):
        self.seen: list[tuple[str, str, int]] = []

    def __call__(self, message: Ping, meta: queues.MessageMeta) -> None:
        self.seen.append((message.order_id, meta.message_id, meta.receive_count))
        if message.fail:
            raise RuntimeError("the handler broke")


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def failed(answer: dict) -> list[str]:
    return [item["itemIdentifier"] for item in answer["batchItemFailures"]]


def test_all_good_records_report_no_failure(capsys):
    handler = Recorder()
    answer = queues.handle_batch([record("m1", good("o1")), record("m2", good("o2"), receive_count=3)],
                                 Ping, handler, QUEUE)
    assert answer == {"batchItemFailures": []}
    assert handler.seen == [("o1", "m1", 1), ("o2", "m2", 3)]
    done = [line for line in log_lines(capsys) if line["event"] == "queue.message_done"]
    assert [line["message_id"] for line in done] == ["m1", "m2"]


def test_a_handler_exception_fails_only_its_record():
    handler = Recorder()
    records = [record("m1", good("o1")), record("m2", good("o2", fail=True)), record("m3", good("o3"))]
    answer = queues.handle_batch(records, Ping, handler, QUEUE)
    assert failed(answer) == ["m2"]
    assert [seen[0] for seen in handler.seen] == ["o1", "o2", "o3"]  # its batch-mates after it still ran


@pytest.mark.parametrize("bad_body", [
    f"not json {PHONE}",
    json.dumps({"order_id": "o9", "phone": PHONE + "0"}),      # pattern
    json.dumps({"order_id": "", "phone": PHONE}),              # min_length
    json.dumps({"order_id": "o9", "phone": PHONE, "x": PHONE}),  # extra="forbid"
    json.dumps([{"order_id": "o9", "phone": PHONE}]),          # not an object
    "",
])
def test_an_unparseable_record_fails_alone(bad_body):
    handler = Recorder()
    records = [record("m1", good("o1")), record("bad", bad_body), record("m3", good("o3"))]
    answer = queues.handle_batch(records, Ping, handler, QUEUE)
    assert failed(answer) == ["bad"]
    assert [seen[0] for seen in handler.seen] == ["o1", "o3"]


def test_a_record_without_body_fails_alone():
    answer = queues.handle_batch([{"messageId": "nobody"}, record("m2", good("o2"))], Ping, Recorder(), QUEUE)
    assert failed(answer) == ["nobody"]


def test_every_failure_kind_in_one_batch_is_reported_with_distinct_ids():
    records = [record(f"m{i}", good(f"o{i}")) for i in range(6)]
    records[1] = record("m1", "{broken")
    records[3] = record("m3", good("o3", fail=True))
    records[5] = record("m5", {"order_id": "o5"})
    assert failed(queues.handle_batch(records, Ping, Recorder(), QUEUE)) == ["m1", "m3", "m5"]


def test_failure_logs_name_the_message_but_never_its_body(capsys):
    records = [
        record("bad-json", f'{{"order_id": "secret-order", "phone": "{PHONE}"'),  # truncated JSON
        record("bad-field", {"order_id": "secret-order", "phone": PHONE + "99"}),
        record("handler-fails", good("secret-order", fail=True), receive_count=2),
    ]
    capsys.readouterr()
    queues.handle_batch(records, Ping, Recorder(), QUEUE)
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    by_id = {line["message_id"]: line for line in lines}
    assert by_id["bad-json"]["event"] == "queue.message_invalid"
    assert by_id["bad-field"]["event"] == "queue.message_invalid"
    assert by_id["bad-field"]["errors"][0]["loc"] == "phone"  # where, not what
    assert by_id["handler-fails"]["event"] == "queue.message_failed"
    assert by_id["handler-fails"]["receive_count"] == 2
    assert all(line["queue"] == QUEUE and line["level"] == "ERROR" for line in lines)
    assert PHONE not in out and PHONE[1:] not in out
    assert "secret-order" not in out


def test_send_puts_a_message_that_can_be_received(aws_mock):
    message = Ping(order_id="o1", phone=PHONE)
    message_id = queues.send(QUEUE, message)
    sqs = aws_client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert [m["MessageId"] for m in received] == [message_id]
    assert Ping.model_validate_json(received[0]["Body"]) == message
    # What was sent is exactly what the consumer side parses.
    handler = Recorder()
    answer = queues.handle_batch([{"messageId": received[0]["MessageId"], "body": received[0]["Body"]}],
                                 Ping, handler, QUEUE)
    assert answer == {"batchItemFailures": []} and handler.seen == [("o1", message_id, 1)]


def test_send_logs_the_message_id_but_not_the_body(aws_mock, capsys):
    capsys.readouterr()
    message_id = queues.send(QUEUE, Ping(order_id="secret-order", phone=PHONE), delay_seconds=0)
    out = capsys.readouterr().out
    assert message_id in out and PHONE not in out and "secret-order" not in out


def test_send_to_an_unknown_queue_raises(aws_mock):
    with pytest.raises(Exception):
        queues.send("no_such_queue", Ping(order_id="o1", phone=PHONE))


@pytest.mark.parametrize("asked, sent", [(-5, 0), (30, 30), (5000, 900)])
def test_send_clamps_the_delay_to_what_sqs_accepts(aws_mock, monkeypatch, asked, sent):
    sqs = aws_client("sqs")
    seen = {}
    real = sqs.send_message

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(sqs, "send_message", spy)
    queues.send(QUEUE, Ping(order_id="o1", phone=PHONE), delay_seconds=asked)
    assert seen["DelaySeconds"] == sent


def test_a_handler_validation_error_does_not_leak_the_body_into_the_logs(capsys):
    class Strict(BaseModel):
        phone: dict

    def handler(message: Ping, meta: queues.MessageMeta) -> None:
        Strict.model_validate({"phone": message.phone})  # e.g. a service re-parsing part of the message

    capsys.readouterr()
    answer = queues.handle_batch([record("m1", good("o1"))], Ping, handler, QUEUE)
    out = capsys.readouterr().out
    assert failed(answer) == ["m1"] and '"m1"' in out
    assert PHONE not in out
