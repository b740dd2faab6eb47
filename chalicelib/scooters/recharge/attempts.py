"""Planning attempts: their keys, their messages, and how one pauses or ends (a reschedule).

Each attempt has a random `attempt_key`: the booking token and the claim's request_id are made from it, so
replays of one attempt reuse them and nothing else does. An attempt PAUSES (`wait`: no cabinet, an upstream down
before the booking) and goes on later with the same key, or ENDS (`end_attempt`: the claim create failed, or
the claim was dropped): its booking is released (doc: "разбукиваем аккум"), attempt + 1 with a new key, and the
task waits for its delay. Delays beyond SQS's 15 minutes: the message carries `not_before` and hops.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import uuid

from chalicelib.core import clock, metrics, queues
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import epoch

from . import lifecycle, upstreams
from .models import SWEEP, RechargeTask
from .schemas import RETRY_DELAYS, PlanMessage

log = get_logger(__name__)

QUEUE = "scooters_misc_recharge"
SQS_MAX_DELAY = 900
TASK_TTL = dt.timedelta(days=14)
# Planning takes seconds; SQS redeliveries of a failing message span minutes. After this, the sweep re-sends.
WATCHDOG_SECONDS = 15 * 60
# A waiting task's own message is due at not_before; the sweep steps in this much later.
WAITING_GRACE_SECONDS = 5 * 60


def crit(event: str, **fields) -> None:
    """The doc's CRIT: a critical log line, `crit: true` for the alarm's filter."""
    log.event(event, logging.CRITICAL, crit=True, **fields)


def new_attempt_key() -> str:
    return uuid.uuid4().hex


def attempt_key(task: RechargeTask) -> str:
    """The attempt's random key. Tasks written before keys were stored: the digest they always used."""
    if task.attempt_key:
        return task.attempt_key
    return hashlib.sha256(f"{task.task_id}\n{task.attempt}".encode()).hexdigest()[:40]


def request_id_of(key: str) -> str:
    return f"scooters-claim-{key}"


def claim_request_id(task: RechargeTask) -> str:
    """Stable for every retry and replay of one attempt (cargo answers a repeated request_id with the first
    claim); a new attempt gets a new one (a reused request_id would answer the old, failed claim)."""
    return request_id_of(attempt_key(task))


def booking_token(task: RechargeTask, cabinet_id: str) -> str:
    """One booking call per attempt and cabinet: its retries and replays share this token, nothing else does."""
    return f"scooters-book-{attempt_key(task)}:{cabinet_id}"


def watchdog(now: dt.datetime) -> int:
    return epoch(now) + WATCHDOG_SECONDS


def enqueue(task_id: str, attempt: int, not_before: dt.datetime | None = None) -> None:
    delay = 0
    if not_before is not None:
        delay = max(0, min(SQS_MAX_DELAY, math.ceil((not_before - clock.now()).total_seconds())))
    message = PlanMessage(task_id=task_id, attempt=attempt,
                          not_before=epoch(not_before) if not_before is not None else None)
    queues.send(QUEUE, message, delay_seconds=delay)


def release_bookings(task: RechargeTask) -> list[str]:
    """Unbook the task's booking (and older ones that failed to unbook); what still fails stays pending."""
    pending = list(task.pending_unbook_ids or [])
    if task.book_id and task.book_id not in pending:
        pending.append(task.book_id)
    left = []
    for book_id in pending:
        try:
            upstreams.unbook(book_id)
        except (UpstreamUnavailable, UpstreamRejected) as error:
            log.error_event("scooters.unbook_failed", task_id=task.task_id, book_id=book_id, error=describe(error))
            left.append(book_id)
    return left


BOOKING_FIELDS = (RechargeTask.book_id, RechargeTask.cell_ids, RechargeTask.cabinet_id, RechargeTask.store_id,
                  RechargeTask.cabinet_position)


def reschedule(task: RechargeTask, reason: str, *, release: bool, event: str | None = None, condition=None,
               extra: list = (), unanswered_key: str | None = None) -> bool:
    """Park the task until a delay passes (by `reason`, backing off on repeats) and send its next message.

    release=True ends the attempt: the booking is released (unbook), attempt + 1 with a new key; the last claim
    stays on the task (its side closed) until the next one replaces it. `event`: the lifecycle event (wait /
    end_attempt by default, `dropped` for a claim the caller reacts to, with `condition` on that claim).
    `unanswered_key`: the key of a claim create whose answer was lost (the next attempt replays it first).
    False when the lifecycle refuses the move or another writer moved the task first.
    """
    event = event or (lifecycle.END_ATTEMPT if release else lifecycle.WAIT)
    if lifecycle.decide(task.status, event) is None:
        return False
    delays = RETRY_DELAYS.get()
    failures = (task.failures or 0) + 1
    delay = min(getattr(delays, reason, delays.upstream_unavailable) * 2 ** min(failures - 1, 16), delays.max_delay)
    now = clock.now()
    not_before = now + dt.timedelta(seconds=delay)
    attempt = task.attempt + 1 if release else task.attempt
    actions = [
        *extra, RechargeTask.not_before.set(not_before), RechargeTask.reason.set(reason),
        RechargeTask.failures.set(failures), RechargeTask.expires_at.set(now + TASK_TTL),
        RechargeTask.sweep.set(SWEEP), RechargeTask.due_at.set(epoch(not_before) + WAITING_GRACE_SECONDS),
    ]
    if release:
        pending = release_bookings(task)
        actions += [RechargeTask.attempt.set(attempt), RechargeTask.attempt_key.set(new_attempt_key()),
                    RechargeTask.pending_unbook_ids.set(pending or None)]
        actions += [attribute.remove() for attribute in BOOKING_FIELDS]
        if unanswered_key:
            actions.append(RechargeTask.previous_attempt_key.set(unanswered_key))
    expected = RechargeTask.attempt == task.attempt
    if condition is not None:
        expected &= condition
    if not lifecycle.move(task, event, actions, expected):
        return False
    log.event("scooters.task_rescheduled", task_id=task.task_id, reason=reason, delay_seconds=delay,
              attempt=attempt, released=release,
              metrics=metrics.count("scooters", "TasksRescheduled", reason=reason))
    try:
        enqueue(task.task_id, attempt, not_before)
    except Exception as error:  # the task is parked with due_at: the sweep sends it when this send is lost
        log.error_event("scooters.reschedule_send_failed", task_id=task.task_id, error=describe(error))
    return True
