"""Move a dead-letter queue's messages back to their queue, once the cause of their failure is gone.

    make redrive QUEUE=order_route_sharing_save_key          # the local stack (emulator on 127.0.0.1:4566)
    make redrive QUEUE=order_route_sharing_save_key AWS=1    # the account of the usual AWS credentials/region

QUEUE is the main queue (`<name>`) or its DLQ (`<name>_dlq`); the DLQ must be the one the queue's RedrivePolicy
names. On AWS this starts SQS's message move task (DLQ -> queue) and waits for it: SQS moves every message
itself, none lost. An emulator without the move task (ministack) gets the same from a loop: receive a batch from
the DLQ, send it to the queue, and delete from the DLQ only the messages whose send succeeded, so a failure
midway leaves a message in the DLQ (or, if a delete fails, in both: consumers are idempotent), never nowhere.
Prints how many moved.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from botocore.exceptions import ClientError

from deploy.template import DLQ_SUFFIX
# What SQS answers for an action a server does not implement (an emulator without the move task).
_UNSUPPORTED = {"InvalidAction", "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation",
                "UnknownOperationException", "NotImplemented", "InvalidParameterValue"}
_SAFETY_CAP = 1_000_000  # messages per loop run: a queue that refills as fast as we drain it cannot spin forever
# A received message stays hidden this long: enough for its batch's send and delete. One whose send failed
# shows up again after it (this run may retry it; otherwise it simply waits in the DLQ).
RECEIVE_VISIBILITY_SECONDS = 60


def _names(queue: str) -> tuple[str, str]:
    main = queue[:-len(DLQ_SUFFIX)] if queue.endswith(DLQ_SUFFIX) else queue
    return main, main + DLQ_SUFFIX


def _arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _visible(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _check_redrive_policy(sqs, main_url: str, dlq_arn: str) -> None:
    attributes = sqs.get_queue_attributes(QueueUrl=main_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    if policy.get("deadLetterTargetArn") != dlq_arn:
        raise SystemExit(f"{main_url}'s RedrivePolicy does not name {dlq_arn} as its DLQ: refusing to move")


def move_task(sqs, dlq_arn: str, main_arn: str, timeout: float = 900, poll: float = 2) -> int | None:
    """SQS's own move; the number moved, or None when this server has no move task."""
    try:
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=main_arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _UNSUPPORTED:
            return None
        raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)["Results"]
        task = tasks[0] if tasks else {}
        if task.get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
            if task["Status"] != "COMPLETED":
                raise SystemExit(f"the move task ended {task['Status']}: {task.get('FailureReason', '')} "
                                 f"after {task.get('ApproximateNumberOfMessagesMoved', 0)} moved")
            return int(task.get("ApproximateNumberOfMessagesMoved", 0))
        time.sleep(poll)
    raise SystemExit(f"the move task still runs after {timeout:.0f}s; see `aws sqs list-message-move-tasks`")


def move_loop(sqs, dlq_url: str, main_url: str) -> tuple[int, int]:
    """Receive -> send -> delete what was sent. Returns (moved, left in the DLQ after a failed send)."""
    moved, failed, received = 0, set(), 0
    while received < _SAFETY_CAP:
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS, AttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            return moved, len(failed)
        received += len(got)
        entries = []
        for index, message in enumerate(got):
            entry = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            group = message.get("Attributes", {}).get("MessageGroupId")
            if group:  # FIFO: keep the group; a new deduplication id, so a redrive is not taken for a repeat
                entry["MessageGroupId"] = group
                entry["MessageDeduplicationId"] = message["MessageId"] + "-redrive"
            entries.append(entry)
        answer = sqs.send_message_batch(QueueUrl=main_url, Entries=entries)
        sent = {item["Id"] for item in answer.get("Successful", [])}
        for index, message in enumerate(got):
            (failed.discard if str(index) in sent else failed.add)(message["MessageId"])
        for item in answer.get("Failed", []):
            print(json.dumps({"event": "redrive.send_failed", "code": item.get("Code")}), file=sys.stderr)
        if sent:
            deletes = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got) if str(i) in sent]
            undeleted = sqs.delete_message_batch(QueueUrl=dlq_url, Entries=deletes).get("Failed", [])
            for item in undeleted:  # sent but still in the DLQ: a duplicate later, never a loss
                print(json.dumps({"event": "redrive.delete_failed", "code": item.get("Code")}), file=sys.stderr)
            moved += len(sent)
        if not sent:
            return moved, len(failed)  # the queue refuses everything: stop rather than spin
    return moved, len(failed)


def redrive(sqs, queue: str) -> dict:
    main, dlq = _names(queue)
    main_url = sqs.get_queue_url(QueueName=main)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=dlq)["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    _check_redrive_policy(sqs, main_url, dlq_arn)
    before = _visible(sqs, dlq_url)
    moved = move_task(sqs, dlq_arn, _arn(sqs, main_url))
    if moved is not None:
        return {"queue": main, "dlq": dlq, "how": "sqs message move task", "in_dlq_before": before, "moved": moved}
    moved, failed = move_loop(sqs, dlq_url, main_url)
    return {"queue": main, "dlq": dlq, "how": "receive/send/delete", "in_dlq_before": before, "moved": moved,
            "send_failed_left_in_dlq": failed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.redrive", description=__doc__.split("\n")[0])
    parser.add_argument("queue", help="the queue (or its DLQ) whose DLQ is moved back")
    parser.add_argument("--aws", action="store_true", help="the real account (default: the local emulator)")
    args = parser.parse_args(argv)
    if args.aws:
        import boto3

        sqs = boto3.client("sqs")
    else:
        from local import emulator

        if not emulator.emulator_healthy():
            sys.exit("no emulator is running: start it with `make run` (or pass AWS=1 for the real account)")
        sqs = emulator.aws_client("sqs")
    report = redrive(sqs, args.queue)
    print(json.dumps({"event": "redrive.done", **report}))
    if report.get("send_failed_left_in_dlq"):
        sys.exit(1)


if __name__ == "__main__":
    main()
