"""Deptrans rules that the handlers call; each topic lives in its own module:

- bindings.py: the driver's registry ID (bind after KRT's check, "is one bound")
- events.py:   status events -> the status queue (conditional, batch-grouped writes)
- sender.py:   the status queue -> licences' line states -> KRT (schedule DeptransStatusSender); the flow
               of a licence's line state is lines.py, its storage store.py, reportability verdicts.py,
               regions regions.py, KRT's answers sessions.py
- membership.py: which profiles belong to a licence (the driver-profiles cache decides)
- feeds.py:    incremental feeds over the bindings and session statuses
- krt.py, upstreams.py, caches.py: the clients and the doc's caches
This module renders the feeds' items.
"""
from __future__ import annotations

from chalicelib.core.clock import utc_text

from . import feeds
from .models import DriverProfile, SessionStatus


def _profile_pairs(profiles) -> list[dict]:
    pairs = []
    for value in sorted(profiles or ()):
        park_id, _, driver_id = value.partition("/")
        pairs.append({"park_id": park_id, "driver_id": driver_id})
    return pairs


def id_updates(cursor: str | None, limit: int) -> dict:
    page = feeds.read_page(DriverProfile, cursor, limit)
    return {"cursor": page.cursor, "items": [
        {"licence_pd_id": item.licence_pd_id, "id": item.deptrans_id, "profiles": _profile_pairs(item.profiles),
         "updated_at": utc_text(item.updated_at)} for item in page.items]}


def status_updates(cursor: str | None, limit: int) -> dict:
    # One row per licence, its feed key moved by every answer: a snapshot reads each licence once.
    page = feeds.read_page(SessionStatus, cursor, limit)
    return {"cursor": page.cursor, "items": [
        {"licence_pd_id": item.licence_pd_id, "session_status": item.session_status,
         "ended_at": utc_text(item.ended_at) if item.ended_at else None, "line_state": item.line_state,
         "changed_at": utc_text(item.changed_at), "park_id": item.park_id, "driver_id": item.driver_id,
         "updated_at": utc_text(item.updated_at)} for item in page.items]}
