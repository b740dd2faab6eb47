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
