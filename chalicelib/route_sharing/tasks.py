"""Route sharing queue consumers."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.queues import MessageMeta, sqs_batch_handler, sqs_handler

from . import keys
from .schemas import FinishOrderMessage, SaveKeyMessage

bp = Blueprint(__name__)

SAVE_KEY_QUEUE = "order_route_sharing_save_key"
FINISH_ORDER_QUEUE = "order_route_sharing_finish_order"


@sqs_batch_handler(bp, SAVE_KEY_QUEUE, SaveKeyMessage)
def save_sharing_keys(batch: list[tuple[SaveKeyMessage, MessageMeta]]) -> set[str]:
    outcomes = keys.save_keys([message for message, _ in batch])
    return {meta.message_id for (_, meta), outcome in zip(batch, outcomes) if outcome is keys.SaveOutcome.FAILED}


@sqs_handler(bp, FINISH_ORDER_QUEUE, FinishOrderMessage)
def finish_shared_order(message: FinishOrderMessage, meta: MessageMeta) -> None:
    keys.finish_order(message)
