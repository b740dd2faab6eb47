"""Scooters queue consumer: plan one recharge task per message (doc part 2, steps 1-6)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.queues import MessageMeta, sqs_handler

from .recharge import planner
from .recharge.schemas import PlanMessage

bp = Blueprint(__name__)


# One task per invocation: a planning run makes several upstream calls; a batch would share one timeout.
@sqs_handler(bp, planner.QUEUE, PlanMessage, batch_size=1)
def scooters_misc_recharge(message: PlanMessage, meta: MessageMeta) -> None:
    planner.plan(message)
