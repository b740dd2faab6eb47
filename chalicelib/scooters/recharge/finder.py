"""Find discharged scooters (doc part 2): poll the scooter backend, open one recharge task per low-battery tag.

The backend filters (`battery_low*-recharge_processing`, and `-<tag>` for each excluded tag: a scooter reported
missing or destroyed gets no claim), so one run costs one car/list plus, per discharged car not yet taken, one
car/info, one conditional put, one message and one tag call: it grows with the discharged cars, never with the
fleet. Order per car: task (conditional put) -> planning message -> tag `recharge_processing`. A crash between
them is repaired by the next poll: the car is still listed (no tag yet), its task exists in `new`, so the message
is sent again (planning is idempotent) and the tag added.

The task remembers the exact low-battery tag it was made for (`low_tag`: `battery_low`, or a threshold tag like
`battery_low_40`, which the filter's `battery_low*` accepts): that tag is the one removed when the scooter goes
back in rent. A task given up (lifecycle) is replaced by a new one if its scooter is listed again.
"""
from __future__ import annotations

import dataclasses
import time

from chalicelib.core import clock, metrics
from chalicelib.core.dynamo import save_if
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import epoch, is_live

from . import attempts, lifecycle, upstreams
from .lifecycle import GIVEN_UP, NEW
from .models import SWEEP, RechargeTask, get_task, task_id_of
from .schemas import EXCLUDED_TAGS

log = get_logger(__name__)


@dataclasses.dataclass
class FindReport:
    listed: int = 0
    created: int = 0
    resent: int = 0
    skipped: int = 0
    failed: int = 0
    swept: int = 0
    out_of_time: bool = False


def _battery_tag(info):
    """The car's low-battery tag (exact battery_low first, then a threshold tag like battery_low_40), or None."""
    tags = [t for t in info.tags if t.tag.startswith(upstreams.BATTERY_LOW)]
    tags.sort(key=lambda t: t.tag != upstreams.BATTERY_LOW)
    return tags[0] if tags else None


def _create(car_id: str, tag, info) -> bool:
    """Conditional put of the task; False when it exists (a race, or a run that stopped half way)."""
    now = clock.now()
    task = RechargeTask(
        task_id_of(car_id, tag.tag_id), car_id=car_id, tag_id=tag.tag_id, low_tag=tag.tag, status=NEW, attempt=1,
        attempt_key=attempts.new_attempt_key(),
        position=list(info.position), battery_id=info.battery.id if info.battery else None,
        failures=0, sweep=SWEEP, due_at=attempts.watchdog(now),
        created_at=now, updated_at=now, expires_at=now + attempts.TASK_TTL,
    )
    # An expired item DynamoDB has not deleted yet counts as gone; so does a task given up (a new recharge).
    return save_if(task, RechargeTask.task_id.does_not_exist() | (RechargeTask.expires_at <= now)
                   | (RechargeTask.status == GIVEN_UP))


def _take(car_id: str, excluded: set[str], report: FindReport) -> None:
    info = upstreams.car_info(car_id)
    if info is None:
        report.skipped += 1
        return
    tag_names = {t.tag for t in info.tags}
    tag = _battery_tag(info)
    if tag is None or upstreams.RECHARGE_PROCESSING in tag_names or tag_names & excluded:
        report.skipped += 1  # charged meanwhile, taken by another run, or reported missing / destroyed
        return
    task_id = task_id_of(car_id, tag.tag_id)
    if _create(car_id, tag, info):
        attempts.enqueue(task_id, 1)
        report.created += 1
        log.event("scooters.task_created", task_id=task_id, car_id=car_id, low_tag=tag.tag)
    else:
        existing = get_task(task_id)
        # The doc: an existing task is a race, skip it. Skipped too when it is already being planned; only a
        # task still `new` (its run stopped before the message or the tag) gets its message again.
        if existing is not None and existing.status == NEW:
            attempts.enqueue(task_id, existing.attempt)
            report.resent += 1
        else:
            report.skipped += 1
        if existing is None or lifecycle.is_terminal(existing.status):
            return  # nobody works on it: never tag it recharge_processing (it would stay out of rent)
    upstreams.add_tag(car_id, upstreams.RECHARGE_PROCESSING)


def find_discharged(deadline: float | None = None) -> FindReport:
    report = FindReport()
    excluded = set(EXCLUDED_TAGS.get())
    try:
        cars = upstreams.list_discharged(sorted(excluded))
    except (UpstreamUnavailable, UpstreamRejected) as error:
        log.error_event("scooters.car_list_failed", error=describe(error))
        report.failed += 1
        cars = []
    report.listed = len(cars)
    for car in cars:
        if deadline is not None and time.monotonic() > deadline:
            report.out_of_time = True  # the rest are still listed next minute
            break
        if upstreams.RECHARGE_PROCESSING in car.tags or excluded & set(car.tags):
            report.skipped += 1
            continue
        try:
            _take(car.car_id, excluded, report)
        except (UpstreamUnavailable, UpstreamRejected) as error:
            report.failed += 1
            log.warning_event("scooters.car_take_failed", car_id=car.car_id, error=describe(error))
    if deadline is None or time.monotonic() <= deadline:
        report.swept = sweep_overdue()
    log.event("scooters.find_discharged", **dataclasses.asdict(report), metrics=metrics.counts(
        "scooters", {"CarsDischargedListed": report.listed, "TasksCreated": report.created,
                     "CarsTakeFailed": report.failed, "TasksSwept": report.swept}))
    return report


def sweep_overdue(limit: int = 100) -> int:
    """Re-send planning for tasks whose planning is overdue (a lost or failed message); each gets a new
    watchdog so it is not sent again every minute while its message is on the way."""
    now = clock.now()
    sent = 0
    for task in RechargeTask.by_due.query(SWEEP, RechargeTask.due_at <= epoch(now), limit=limit):
        if not lifecycle.is_planning(task.status) or not is_live(task.expires_at):
            continue
        try:
            moved = not lifecycle.touch(task, [RechargeTask.due_at.set(attempts.watchdog(now))],
                                        (RechargeTask.attempt == task.attempt) & (RechargeTask.due_at <= epoch(now)))
        except Exception as error:  # the table hiccuped: next minute
            log.event("scooters.sweep_skip", task_id=task.task_id, error=describe(error))
            continue
        if moved:
            continue  # another writer moved it meanwhile: its own message is on the way
        attempts.enqueue(task.task_id, task.attempt)
        sent += 1
        log.event("scooters.task_swept", task_id=task.task_id, status=task.status, attempt=task.attempt)
    return sent
