"""The recharge flow's tables (design doc 003, part 2: the doc's `items`/`tasks` table and the journal cursor).

- scooters_recharge_tasks: one item per recharge, keyed "<car_id>/<tag_id>" (the low-battery tag's id: a
  later discharge of the same scooter is a new tag, so a new task). Its states and moves: lifecycle.py.
  Sparse GSIs: `claim_id-index` finds the task of a claim (journal events and courier screens name the claim
  only; the last claim stays on the task until the next attempt's claim replaces it, so a finished claim is
  still known as finished); `due-index` the planning that is overdue (finder's sweep); `live_claim-index` the
  tasks whose claim is open, by when its state was last confirmed (`claim_seen_at`: the reconciler's query).
  Reads filter `expires_at > now` (DynamoDB deletes late).
- scooters_journal_cursor: the claims journal's cursor (one item, name "claims"), moved only after the
  events it covers were handled.

`claim_status` is the claim's status as cargo last reported it (journal or claims/info), `current_point_id` the
point the courier works on. `attempt` numbers the planning attempts; each has its own random `attempt_key`, from
which a cargo request_id and a booking token are made, so replays of one attempt reuse them and nothing else does.
`previous_attempt_key` keeps an ended attempt's key when its claim create went unanswered: the next attempt
replays that create first (claims.py), so a claim made without us knowing is adopted or cancelled, never left.
"""
from __future__ import annotations

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.core.storage import EpochSeconds, Table, TableMeta, get_live, is_live

# Keys of RechargeTask.point_ids: the claim's route point types (A, B, C of the doc).
SOURCE, DESTINATION, RETURN = "source", "destination", "return"
SWEEP = "due"  # the one hash value of DueIndex
LIVE = "live"  # the one hash value of LiveClaimIndex


class ClaimIdIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "claim_id-index"
        projection = AllProjection()

    claim_id = UnicodeAttribute(hash_key=True)


class DueIndex(GlobalSecondaryIndex):
    """Sparse: only tasks before their claim (new, booking, booked, waiting) carry `sweep`/`due_at`. The finder's
    schedule re-enqueues those whose `due_at` passed: a planning message that was lost (or a re-send that
    failed) cannot strand a task. A Query reads the overdue ones only."""

    class Meta:
        index_name = "due-index"
        projection = AllProjection()

    sweep = UnicodeAttribute(hash_key=True)
    due_at = NumberAttribute(range_key=True)


class LiveClaimIndex(GlobalSecondaryIndex):
    """Sparse: only tasks whose claim is open (lifecycle.CLAIM_OPEN) carry `live_claim`. Sorted by
    `claim_seen_at` (epoch seconds: the last applied event, or the reconciler's last look), so the reconciler's
    Query reads the stale ones only, oldest first, and never scans the table."""

    class Meta:
        index_name = "live_claim-index"
        projection = AllProjection()

    live_claim = UnicodeAttribute(hash_key=True)
    claim_seen_at = NumberAttribute(range_key=True)


class RechargeTask(Table):
    class Meta(TableMeta):
        table_name = "scooters_recharge_tasks"

    task_id = UnicodeAttribute(hash_key=True)  # "<car_id>/<tag_id>"
    car_id = UnicodeAttribute()
    tag_id = UnicodeAttribute()
    # The exact low-battery tag the task was created for (battery_low, or a threshold tag like battery_low_40):
    # the one removed when the scooter goes back in rent. Absent on older tasks (battery_low then).
    low_tag = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    attempt = NumberAttribute(default=1)
    # A random key per planning attempt, set when the attempt starts: the booking token and the claim's
    # request_id are made from it, so replays of one attempt reuse them and no other request ever does.
    # Absent on tasks written before it existed (planner.attempt_key falls back for those).
    attempt_key = UnicodeAttribute(null=True)
    # An ended attempt's key whose claim create went unanswered (claims.py replays it before a new create).
    previous_attempt_key = UnicodeAttribute(null=True)
    # The scooter's position when found, [lon, lat].
    position = ListAttribute(of=NumberAttribute)
    # The discharged battery's id (car/info); the swap is checked against it.
    battery_id = UnicodeAttribute(null=True)
    # The chosen depot and its cabinet, and the booking there.
    store_id = UnicodeAttribute(null=True)
    cabinet_id = UnicodeAttribute(null=True)
    cabinet_position = ListAttribute(of=NumberAttribute, null=True)
    book_id = UnicodeAttribute(null=True)
    cell_ids = ListAttribute(of=UnicodeAttribute, null=True)  # the booked cells, when the cabinet tells them
    # The cargo claim: the current attempt's, or the last one's until a new one replaces it.
    claim_id = UnicodeAttribute(null=True)
    claim_version = NumberAttribute(null=True)
    claim_revision = NumberAttribute(null=True)  # the newest journal revision handled (dedupe)
    claim_status = UnicodeAttribute(null=True)
    # How the claim's side closed: "delivered", or the cargo status that dropped it (failed, cancelled, ...).
    claim_outcome = UnicodeAttribute(null=True)
    # LiveClaimIndex: present while the claim's side is open (lifecycle.move keeps it).
    live_claim = UnicodeAttribute(null=True)
    claim_seen_at = NumberAttribute(null=True)  # epoch seconds
    # "source" / "destination" / "return" -> the route point id AS THE CLAIM REPORTS IT (str of it).
    point_ids = MapAttribute(null=True)
    current_point_id = UnicodeAttribute(null=True)
    performer_park_id = UnicodeAttribute(null=True)
    performer_driver_profile_id = UnicodeAttribute(null=True)
    # A rescheduled task is not planned before this moment (SQS delays stop at 15 minutes).
    not_before = EpochSeconds(null=True)
    reason = UnicodeAttribute(null=True)  # why it waits or was given up (no_cabinet, claim_failed, ...)
    failures = NumberAttribute(default=0)  # reschedules in a row (the delay backs off)
    # Bookings released on paper whose unbook call failed: the planner retries them before planning again.
    pending_unbook_ids = ListAttribute(of=UnicodeAttribute, null=True)
    # The watchdog (DueIndex): present only before the claim exists.
    sweep = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)  # epoch seconds
    created_at = EpochSeconds()
    updated_at = EpochSeconds()
    expires_at = TTLAttribute()

    by_claim = ClaimIdIndex()
    by_due = DueIndex()
    by_live_claim = LiveClaimIndex()


def task_id_of(car_id: str, tag_id: str) -> str:
    return f"{car_id}/{tag_id}"


def points_of(task: RechargeTask) -> dict[str, str]:
    """The task's route point ids by type ("source"/"destination"/"return"), as a plain dict."""
    return task.point_ids.as_dict() if task.point_ids is not None else {}


def get_task(task_id: str) -> RechargeTask | None:
    """The live task (consistent read), or None."""
    return get_live(RechargeTask, task_id, consistent_read=True)


def task_by_claim(claim_id: str) -> RechargeTask | None:
    """The live task whose claim (current, or the last one until replaced) is `claim_id` (a GSI Query:
    eventually consistent), or None."""
    if not claim_id:
        return None
    for task in RechargeTask.by_claim.query(claim_id, limit=2):
        if is_live(task.expires_at) and task.claim_id == claim_id:
            return task
    return None


class JournalCursor(Table):
    class Meta(TableMeta):
        table_name = "scooters_journal_cursor"

    name = UnicodeAttribute(hash_key=True)
    cursor = UnicodeAttribute(null=True)
    # The event the last runs failed on, and how many runs in a row (a poison event is skipped after a few).
    blocked_claim_id = UnicodeAttribute(null=True)
    blocked_revision = NumberAttribute(null=True)
    blocked_runs = NumberAttribute(null=True)
    updated_at = EpochSeconds()
