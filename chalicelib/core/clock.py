"""The one place that tells the time, so tests can move it."""
from __future__ import annotations

import datetime as dt

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    """Current time, timezone-aware UTC."""
    return _frozen if _frozen is not None else dt.datetime.now(dt.timezone.utc)


def freeze(moment: dt.datetime | None) -> None:
    """Pin `now()` to a moment (None to let time run again). For tests and benches only."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("freeze() needs a timezone-aware datetime")
    _frozen = moment


def advance(**delta: float) -> dt.datetime:
    """Move a frozen clock forward, e.g. advance(hours=25)."""
    if _frozen is None:
        raise RuntimeError("advance() needs a frozen clock")
    freeze(_frozen + dt.timedelta(**delta))
    return now()


def utc_text(moment: dt.datetime) -> str:
    """Fixed-width UTC text (microseconds, Z): string order == time order, so it sorts in keys."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_utc(moment: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


# The moments this system can mean. Anything outside is bad input, whoever sent it: at the edge of datetime's
# range arithmetic overflows (9999-12-31T23:00-05:00 cannot even be converted to UTC, and created_at + 7 days
# cannot be added), and no order, shift or claim of ours is from before 2000 or after 2100.
SANE_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
SANE_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)


def sane_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC (naive taken as UTC); ValueError when it lies outside [SANE_FROM, SANE_UNTIL).
    The year is checked before converting: the conversion itself overflows at the edge of the range."""
    if not SANE_FROM.year - 1 <= moment.year <= SANE_UNTIL.year:
        raise ValueError(f"a moment between {SANE_FROM.year} and {SANE_UNTIL.year} is expected")
    utc = to_utc(moment)
    if not SANE_FROM <= utc < SANE_UNTIL:
        raise ValueError(f"a moment between {SANE_FROM.year} and {SANE_UNTIL.year} is expected")
    return utc


def sane_epoch(seconds: float) -> float:
    """Epoch seconds within the same range; ValueError otherwise (never OverflowError/OSError later)."""
    if not SANE_FROM.timestamp() <= seconds < SANE_UNTIL.timestamp():
        raise ValueError(f"epoch seconds between {SANE_FROM.year} and {SANE_UNTIL.year} are expected")
    return seconds
