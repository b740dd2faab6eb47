"""How much time a run has: what a scheduled job needs to size its lease and its deadline.

A job's lease must outlive its longest possible run (Lambda kills a run at the function's timeout), and its
deadline must leave room for one more upstream call at its worst, whatever the timeouts are set to.
"""
from __future__ import annotations

from .settings import get_settings


def remaining_seconds(event) -> float | None:
    """Time left before Lambda kills this run (at the start of a run: the function's timeout), or None
    outside Lambda (tests, benches: no context with a clock)."""
    remaining = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        return max(0.0, remaining() / 1000.0)
    except Exception:  # a context without a usable clock
        return None


def worst_upstream_call(extra_seconds: float = 0.5) -> float:
    """One upstream call at its worst: every attempt times out, plus backoff (and `extra_seconds` for what a
    caller adds, e.g. a capped Retry-After)."""
    settings = get_settings()
    attempt = settings.upstream_connect_timeout + settings.upstream_read_timeout
    return attempt * (settings.upstream_retries + 1) + extra_seconds
