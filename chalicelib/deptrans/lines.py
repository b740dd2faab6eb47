"""A licence's line state towards KRT, as a flow: its states and transitions (the writes are store.py's).

KRT's registry ID belongs to a licence; a driver works through profiles (one per park), and status events come
per profile. The licence is on line when any of its profiles is on line (online or busy) by that profile's
newest event; KRT must end up knowing that, whatever order the events came in. KRT is told flips only, one at a
time per licence, in order, each under a random key of its own (uuid4: KRT's event_id and the idempotency key
of every re-send of that flip; never derived from the driver, licence or ID).

States of a licence (a LicenceLine row):
- IDLE: no profile on line and KRT told off line (or never told anything). Not in the `due` index.
- WAITING(reason): on line, not reportable yet: no ID bound (no_id), no position (no_position), outside every
  region (region), no configured category (category), a lookup down (upstream), or KRT refused that very flip
  (rejected). Due as a re-check ("1#<last check>"), looked at again on every run until it is sent or stops
  being true.
- FLIPPING: a flip decided (flip_seq > acked_seq and not the rejected one): sent, and re-sent with its own key,
  until KRT acknowledges or refuses it. Due as a change ("0#<time>").
- REPORTED: on line, and KRT acknowledged on line under the licence's current ID. Due as a re-check: he may
  leave the regions, change categories or bind another ID.

Transitions, each ONE conditional write (store.py), so a racing writer can never regress what is stored:
- fold: a profile's line only moves to a newer version (per-profile condition); the licence becomes due.
- decide (-> FLIPPING): only if `rev` is still the one judged; otherwise void, judged again next pass.
- acknowledge (FLIPPING -> the verdict's state): acked_seq only grows; a late or repeated ack changes nothing.
- reject: on_line is not decided again for the refused ID until the target changes or the licence goes idle;
  an off_line refused means KRT has nothing on line under that ID: recorded as acknowledged off.
- settle (-> IDLE / WAITING / REPORTED): moves the due mark, only if `rev` is still the one judged.

Readings where doc 002 is silent: a decided flip that failed is re-sent even when the licence has flipped back
meanwhile (KRT may have taken it: a timeout or a 5xx does not say it did not), so KRT hears on then off rather
than being left on; a flip found by a re-check (a position, a binding, a region) is dated when it was found.

plan() is the whole rule. It reads only the row and the verdict (verdicts.py), never trusts that a previous run
finished: an unacknowledged flip is re-sent before any other is decided, and a re-check compares what KRT
acknowledged with what is true now.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from chalicelib.core import clock, http

from .models import LicenceLine
from .schemas import DriverStatus, LineState

ON, OFF = LineState.on_line, LineState.off_line


class Reason(str, enum.Enum):
    no_id = "no_id"
    no_position = "no_position"
    region = "region"
    category = "category"
    upstream = "upstream"
    krt = "krt"
    rejected = "rejected"


class Schedule(str, enum.Enum):
    IDLE = "idle"  # out of the due index
    RECHECK = "recheck"  # due again at the back of the re-checks ("1#now")
    AGAIN = "again"  # keeps its due mark: looked at again in the next pass


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What KRT should know about a licence now."""

    state: LineState | None  # None: cannot tell now (a lookup is down): nothing is decided
    registry_id: str | None = None  # on_line: the ID to report under
    profile: str | None = None  # the profile the verdict rests on (the feed's park_id/driver_id)
    reason: Reason | None = None  # why it is not on_line (or why it cannot be told)
    certain: bool = True  # False: off_line for lack of data only (no position): never turns KRT's on_line off
    in_regions: bool | None = None  # some on-line profile is inside a region (None: unknown)


IDLE_VERDICT = Verdict(OFF)


@dataclasses.dataclass(frozen=True)
class Flip:
    seq: int
    state: LineState
    registry_id: str
    key: str
    changed_at: dt.datetime
    profile: str | None


@dataclasses.dataclass(frozen=True)
class Step:
    action: str  # SEND | SETTLE | HOLD
    flip: Flip | None = None
    new: bool = False  # a flip decided now (else the unacknowledged one, re-sent)
    schedule: Schedule | None = None  # SETTLE: now; SEND: once KRT acknowledged
    reason: Reason | None = None


SEND, SETTLE, HOLD = "send", "settle", "hold"


def new_flip_key() -> str:
    """A flip's own random key (KRT's event_id and the idempotency key of every re-send of that flip)."""
    return http.fresh_key()


def change_due_key(moment: dt.datetime) -> str:
    return "0#" + clock.utc_text(moment)


def recheck_due_key(moment: dt.datetime) -> str:
    return "1#" + clock.utc_text(moment)


def profile_lines(row: LicenceLine) -> dict[str, str]:
    lines = row.lines
    if lines is None:
        return {}
    return dict(lines.as_dict() if hasattr(lines, "as_dict") else lines)


def is_on(version: str) -> bool:
    return DriverStatus(version.rpartition("#")[2]) is not DriverStatus.offline


def on_profiles(row: LicenceLine) -> list[str]:
    return sorted(profile for profile, version in profile_lines(row).items() if is_on(version))


def raw_on(row: LicenceLine) -> bool:
    return bool(on_profiles(row))


def _newest(row: LicenceLine) -> tuple[str | None, dt.datetime | None]:
    """The profile with the newest event, and that event's time."""
    lines = profile_lines(row)
    if not lines:
        return None, None
    profile = max(lines, key=lambda p: lines[p])
    moment = dt.datetime.strptime(lines[profile].partition("#")[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return profile, moment.replace(tzinfo=dt.timezone.utc)


def in_flight(row: LicenceLine) -> Flip | None:
    """The decided flip KRT has not acknowledged (nor refused): it goes out again, under the same key."""
    seq = int(row.flip_seq or 0)
    if seq <= int(row.acked_seq or 0) or seq == int(row.rejected_seq or 0):
        return None
    return Flip(seq=seq, state=LineState(row.flip_state), registry_id=row.flip_id, key=row.flip_key,
                changed_at=row.flip_changed_at, profile=row.flip_profile)


def told(row: LicenceLine) -> tuple[LineState, str | None]:
    """What KRT acknowledged last (never told = off line)."""
    return (LineState(row.acked_state), row.acked_id) if row.acked_state else (OFF, None)


def _refused(row: LicenceLine) -> tuple[LineState, str] | None:
    """The flip KRT refused, while the licence still waits on that refusal (any other verdict since, or going
    idle, clears `wait_reason`: the same flip may then be tried once more)."""
    if row.rejected_seq is None or int(row.rejected_seq) != int(row.flip_seq or 0) \
            or row.wait_reason != Reason.rejected.value:
        return None
    return LineState(row.flip_state), row.flip_id


def _after(state: LineState, registry_id: str | None, row: LicenceLine, verdict: Verdict) -> Schedule:
    """Where the licence stands once KRT knows (state, registry_id)."""
    if verdict.state is None:
        return Schedule.AGAIN
    if state is ON:
        reported = verdict.state is ON and verdict.registry_id == registry_id
        kept = verdict.state is OFF and not verdict.certain
        return Schedule.RECHECK if reported or kept else Schedule.AGAIN
    if verdict.state is OFF:
        return Schedule.RECHECK if raw_on(row) else Schedule.IDLE
    return Schedule.AGAIN  # on line under an ID KRT was just told off for: the on_line flip comes next


def _new_flip(row: LicenceLine, state: LineState, registry_id: str, profile: str | None,
              now: dt.datetime) -> Flip:
    # The change happened at its event when an event caused it; otherwise (a position, a binding, a region
    # found by a re-check) when we learnt it. Never before the flip KRT got last: KRT's history stays in order.
    newest_profile, newest_at = _newest(row)
    changed_at = newest_at if row.line_news and newest_at else now
    if row.flip_changed_at and changed_at < row.flip_changed_at:
        changed_at = row.flip_changed_at
    return Flip(seq=int(row.flip_seq or 0) + 1, state=state, registry_id=registry_id, key=new_flip_key(),
                changed_at=changed_at, profile=profile or newest_profile or row.flip_profile)


def plan(row: LicenceLine, verdict: Verdict, now: dt.datetime) -> Step:
    """The licence's next step, from its row and what is true now."""
    pending = in_flight(row)
    if pending:
        return Step(SEND, pending, schedule=_after(pending.state, pending.registry_id, row, verdict))
    if verdict.state is None:
        return Step(HOLD, reason=verdict.reason)
    told_state, told_id = told(row)
    if told_state is ON:
        if _after(ON, told_id, row, verdict) is Schedule.RECHECK:
            return Step(SETTLE, schedule=Schedule.RECHECK, reason=verdict.reason)
        # Off line, or on line under another ID: KRT hears off_line for the ID it has first.
        flip = _new_flip(row, OFF, told_id, verdict.profile, now)
        return Step(SEND, flip, new=True, schedule=_after(OFF, told_id, row, verdict))
    if verdict.state is OFF:
        return Step(SETTLE, schedule=Schedule.RECHECK if raw_on(row) else Schedule.IDLE, reason=verdict.reason)
    if _refused(row) == (ON, verdict.registry_id):
        return Step(SETTLE, schedule=Schedule.RECHECK, reason=Reason.rejected)
    flip = _new_flip(row, ON, verdict.registry_id, verdict.profile, now)
    return Step(SEND, flip, new=True, schedule=_after(ON, verdict.registry_id, row, verdict))
