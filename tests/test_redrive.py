"""local/redrive.py's receive/send/delete loop (the emulator's path) against moto: all moved, none lost."""
from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from local import redrive


@pytest.fixture
def sqs(monkeypatch):
    monkeypatch.setattr(redrive, "move_task", lambda *args, **kwargs: None)  # a server without the move task
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        dlq = client.create_queue(QueueName="work_dlq")["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        client.create_queue(QueueName="work", Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})})
        client.create_queue(QueueName="other")
        yield client


def bodies(sqs, queue: str) -> list[str]:
    url, found = sqs.get_queue_url(QueueName=queue)["QueueUrl"], []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [m["Body"] for m in got]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(got)])
    return sorted(found)


def put(sqs, queue: str, count: int) -> list[str]:
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    sent = [json.dumps({"n": n}) for n in range(count)]
    for body in sent:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            "origin": {"DataType": "String", "StringValue": "test"}})
    return sorted(sent)


def test_every_message_of_the_dlq_moves_back_to_its_queue(sqs):
    sent = put(sqs, "work_dlq", 23)
    report = redrive.redrive(sqs, "work")
    assert report["moved"] == 23 and report["in_dlq_before"] == 23 and report["send_failed_left_in_dlq"] == 0
    assert bodies(sqs, "work") == sent
    assert bodies(sqs, "work_dlq") == []


def test_a_message_whose_send_failed_stays_in_the_dlq(sqs, monkeypatch):
    sent = put(sqs, "work_dlq", 12)

    class FlakySends:
        """Refuses the first entry of every batch it sends; everything else is the real client."""

        def __getattr__(self, name):
            return getattr(sqs, name)

        def send_message_batch(self, QueueUrl, Entries):
            answer = sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries[1:])
            return {**answer, "Failed": [{"Id": Entries[0]["Id"], "Code": "InternalError", "SenderFault": False}]}

    monkeypatch.setattr(redrive, "RECEIVE_VISIBILITY_SECONDS", 1)
    report = redrive.redrive(FlakySends(), "work")
    moved = bodies(sqs, "work")
    assert report["moved"] == len(moved) and report["send_failed_left_in_dlq"] == 12 - len(moved) > 0
    time.sleep(1.5)  # the refused ones were received: visible again once their visibility timeout passed
    left = bodies(sqs, "work_dlq")
    assert left == sorted(set(sent) - set(moved))  # none lost: what did not move is still in the DLQ


def test_a_queue_whose_redrive_policy_names_another_dlq_is_refused(sqs):
    sqs.create_queue(QueueName="other_dlq")
    put(sqs, "other_dlq", 1)
    with pytest.raises(SystemExit):
        redrive.redrive(sqs, "other")
    assert len(bodies(sqs, "other_dlq")) == 1
