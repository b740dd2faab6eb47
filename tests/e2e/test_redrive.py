"""`make redrive` on the deployed local stack: a message that failed into its DLQ is moved back and processed
once the cause of its failure is gone; none is lost on the way.

The failure is a real one: a save whose sharing_key still belongs to another order's key item (an expired
order whose item DynamoDB's TTL has not swept yet: it deletes late) fails its conditional write on every
delivery and reaches the DLQ after maxReceiveCount. The test then plays the sweep (deletes that item) and
redrives with the same command an operator runs.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

from local.emulator import ROOT
from tests.e2e.test_route_sharing import keys_of

SAVE = "order_route_sharing_save_key"


def waiting_in(stack, queue: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url(queue), AttributeNames=["ApproximateNumberOfMessages",
                                                         "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def redrive(queue: str) -> dict:
    """What `make redrive QUEUE=<queue>` runs, against the emulator."""
    answer = subprocess.run([sys.executable, "-m", "local.redrive", queue], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr[-2000:]
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_a_save_that_died_in_the_dlq_is_redriven_and_saved_once_its_cause_is_gone(stack):
    stack.dlq_bodies(SAVE)  # start from an empty DLQ: the count below is exactly ours
    now = dt.datetime.now(dt.timezone.utc)
    key = stack.unique("redrive-key")
    first, second = stack.unique("order"), stack.unique("order")
    first_phone, second_phone = stack.unique("phone"), stack.unique("phone")

    stack.send(SAVE, {"order_id": first, "tariff_class": "express", "phone_ids": [first_phone],
                      "sharing_key": key, "created_at": now.isoformat()})
    assert stack.wait_until(lambda: keys_of(stack, first_phone), what="the first order's key") == [key]

    # Same key for another order: refused on every delivery, then moved to the DLQ by SQS itself.
    stack.send(SAVE, {"order_id": second, "tariff_class": "express", "phone_ids": [second_phone],
                      "sharing_key": key, "created_at": now.isoformat()})
    stack.wait_until(lambda: waiting_in(stack, SAVE + "_dlq") == 1, timeout=120, interval=2,
                     what="the refused save in the DLQ")
    assert keys_of(stack, second_phone) == []

    # The cause goes: the key's old item is swept.
    stack.client("dynamodb").delete_item(TableName="route_sharing_keys", Key={"sharing_key": {"S": key}})

    report = redrive(SAVE + "_dlq")
    assert report["moved"] == 1 and report["in_dlq_before"] == 1, report
    assert report["queue"] == SAVE and report.get("send_failed_left_in_dlq", 0) == 0, report
    assert stack.wait_until(lambda: keys_of(stack, second_phone), what="the redriven save") == [key]
    assert waiting_in(stack, SAVE + "_dlq") == 0


def test_redrive_of_an_empty_dlq_moves_nothing_and_a_queue_without_that_dlq_is_refused(stack):
    stack.dlq_bodies(SAVE)
    assert redrive(SAVE)["moved"] == 0
    answer = subprocess.run([sys.executable, "-m", "local.redrive", "no_such_queue"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode != 0
