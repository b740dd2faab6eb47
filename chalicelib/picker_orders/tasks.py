"""Picker orders queue consumer: events of the picker's order from procaas."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.queues import MessageMeta, sqs_handler

from . import events
from .schemas import PickerOrderMessage

bp = Blueprint(__name__)

PICKER_ORDERS_QUEUE = "eats_orders_tracking_picker_orders"


@sqs_handler(bp, PICKER_ORDERS_QUEUE, PickerOrderMessage)
def picker_order_events(message: PickerOrderMessage, meta: MessageMeta) -> None:
    events.apply_event(message)
