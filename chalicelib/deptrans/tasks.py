"""Deptrans queue consumer: contractor status events -> the status queue table."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.queues import MessageMeta, sqs_batch_handler

from . import events
from .schemas import StatusEvent

bp = Blueprint(__name__)

STATUS_EVENTS_QUEUE = "deptrans_contractor_status_events"


@sqs_batch_handler(bp, STATUS_EVENTS_QUEUE, StatusEvent)
def deptrans_status_events(batch: list[tuple[StatusEvent, MessageMeta]]) -> set[str]:
    outcomes = events.apply_events([message for message, _ in batch])
    return {meta.message_id for (_, meta), outcome in zip(batch, outcomes)
            if outcome is events.Outcome.FAILED}
