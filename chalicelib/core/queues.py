"""SQS: send typed messages, and handle a batch record by record, reporting only the failed ones.

    @sqs_handler(bp, "order_route_sharing_save_key", SaveKeyMessage)
    def save_key(message: SaveKeyMessage, meta: MessageMeta) -> None:
        service.save_key(message)

A record whose body does not parse, or whose handling raises, is reported in `batchItemFailures`:
SQS retries it alone and, after the queue's maxReceiveCount, moves it to the DLQ. Its batch-mates are
deleted normally. Handlers must be idempotent: SQS delivers at least once.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, TypeVar

from chalice import Blueprint
from pydantic import BaseModel, ValidationError

from . import coldstart, metrics
from .aws import client
from .errors import describe, validation_details
from .logs import get_logger

log = get_logger(__name__)
M = TypeVar("M", bound=BaseModel)

# What the template generator needs to know about each consumed queue.
QUEUES: dict[str, dict] = {}
# Queues the app only sends to (their consumer lives elsewhere); the template creates them too.
PRODUCED_QUEUES: set[str] = set()
DEFAULT_BATCH_SIZE = 10


@dataclasses.dataclass(frozen=True)
class MessageMeta:
    message_id: str
    receive_count: int
    queue: str


def _meta(record: dict, queue: str) -> MessageMeta:
    attributes = record.get("attributes") or {}
    try:
        receive_count = int(attributes.get("ApproximateReceiveCount") or 1)
    except (TypeError, ValueError):
        receive_count = 1
    return MessageMeta(message_id=str(record.get("messageId", "")), receive_count=receive_count, queue=queue)


def _count(queue: str, values: dict[str, int]) -> dict:
    """EMF counts per queue, under the service whose module consumes it."""
    return metrics.counts(metrics.service_of(QUEUES.get(queue, {}).get("module", "unknown")), values, queue=queue)


def _parse(record: dict, schema: type[M], meta: MessageMeta) -> M | None:
    """The record's message, or None (logged with the reasons, never the body) when it cannot be read.

    Any failure counts, not only a ValidationError: a body nested past the recursion limit, a number past
    int()'s digit limit or a validator that trips on an edge value must fail this record alone."""
    try:
        return schema.model_validate_json(record.get("body") or "")
    except Exception as error:  # noqa: BLE001 - whatever the body does, it is this record's failure
        details = validation_details(error) if isinstance(error, ValidationError) else {"error": describe(error)}
        log.error_event(
            "queue.message_invalid", queue=meta.queue, message_id=meta.message_id, receive_count=meta.receive_count,
            metrics=_count(meta.queue, {"MessagesInvalid": 1}), **details,
        )
        return None


def _failed(meta: MessageMeta, error: BaseException) -> None:
    log.error_event("queue.message_failed", queue=meta.queue, message_id=meta.message_id,
                    receive_count=meta.receive_count, error=describe(error),
                    metrics=_count(meta.queue, {"MessagesFailed": 1}))


def handle_batch(records: list[dict], schema: type[M], handle: Callable[[M, MessageMeta], None], queue: str) -> dict:
    """Run `handle` on every record; return the partial-batch answer SQS expects. Nothing a record holds can
    raise out of here: a record that does not parse, or whose handling raises, is reported failed alone."""
    failures = []
    for record in records:
        started = time.perf_counter()
        meta = _meta(record, queue)
        message = _parse(record, schema, meta)
        if message is None:
            failures.append({"itemIdentifier": meta.message_id})
            continue
        try:
            handle(message, meta)
        except Exception as error:  # one bad record must not fail its batch-mates
            failures.append({"itemIdentifier": meta.message_id})
            _failed(meta, error)
            continue
        log.event("queue.message_done", queue=queue, message_id=meta.message_id,
                  ms=round((time.perf_counter() - started) * 1000, 2), metrics=_count(queue, {"MessagesDone": 1}))
    return {"batchItemFailures": failures}


def _handle_together(parsed: list[tuple[M, MessageMeta]], handle: Callable, queue: str) -> set[str]:
    """The message ids of `parsed` that failed. When the whole call raises (one message may have tripped
    something computed from it), every message is handled again alone, so only the bad ones fail."""
    try:
        return set(handle(parsed))
    except Exception as error:
        if len(parsed) == 1:
            _failed(parsed[0][1], error)
            return {parsed[0][1].message_id}
        log.warning_event("queue.batch_split", queue=queue, size=len(parsed), error=describe(error))
    failed: set[str] = set()
    for one in parsed:
        failed |= _handle_together([one], handle, queue)
    return failed


def handle_batch_together(
    records: list[dict], schema: type[M], handle: Callable[[list[tuple[M, MessageMeta]]], set[str]], queue: str
) -> dict:
    """Parse every record, hand the valid ones to `handle` at once; it returns the message ids that failed.

    For consumers that write a whole batch in one call; invalid records still fail alone, and a batch whose
    handling raises is handled again message by message (handlers are idempotent: what was written stays)."""
    failures: list[str] = []
    parsed: list[tuple[M, MessageMeta]] = []
    for record in records:
        meta = _meta(record, queue)
        message = _parse(record, schema, meta)
        if message is None:
            failures.append(meta.message_id)
        else:
            parsed.append((message, meta))
    if parsed:
        started = time.perf_counter()
        failed = _handle_together(parsed, handle, queue)
        failed_here = [meta.message_id for _, meta in parsed if meta.message_id in failed]
        failures.extend(failed_here)
        log.event("queue.batch_done", queue=queue, size=len(parsed), failed=len(failed_here),
                  ms=round((time.perf_counter() - started) * 1000, 2),
                  metrics=_count(queue, {"MessagesDone": len(parsed) - len(failed_here),
                                         "MessagesFailed": len(failed_here)}))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def _consumer(bp: Blueprint, queue: str, batch_size: int, fn: Callable, run_batch: Callable) -> Callable:
    QUEUES[queue] = {"handler": fn.__name__, "module": fn.__module__, "batch_size": batch_size}

    @functools.wraps(fn)  # Chalice names the Lambda entry point after fn: it must keep fn's name
    def on_batch(event):
        coldstart.imports_done()
        return run_batch([record.to_dict() for record in event], fn)

    return bp.on_sqs_message(queue=queue, batch_size=batch_size)(on_batch)


def sqs_handler(bp: Blueprint, queue: str, schema: type[M], *, batch_size: int = DEFAULT_BATCH_SIZE) -> Callable:
    """Register `fn(message, meta)` as the consumer of `queue`, with partial batch failures."""
    return lambda fn: _consumer(bp, queue, batch_size, fn,
                                lambda records, handle: handle_batch(records, schema, handle, queue))


def sqs_batch_handler(bp: Blueprint, queue: str, schema: type[M], *, batch_size: int = DEFAULT_BATCH_SIZE) -> Callable:
    """Register `fn([(message, meta), ...]) -> failed message ids` as the consumer of `queue`."""
    return lambda fn: _consumer(bp, queue, batch_size, fn,
                                lambda records, handle: handle_batch_together(records, schema, handle, queue))


def declare(queue: str) -> str:
    """Declare a queue this app sends to but does not consume, so the deploy template creates it."""
    PRODUCED_QUEUES.add(queue)
    return queue


@functools.cache
def queue_url(queue: str) -> str:
    return client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]


def send(queue: str, message: BaseModel, *, delay_seconds: int = 0) -> str:
    """Send one typed message; returns its SQS message id."""
    answer = client("sqs").send_message(
        QueueUrl=queue_url(queue),
        MessageBody=message.model_dump_json(),
        DelaySeconds=max(0, min(int(delay_seconds), 900)),
    )
    log.event("queue.message_sent", queue=queue, message_id=answer["MessageId"], delay_seconds=delay_seconds)
    return answer["MessageId"]
