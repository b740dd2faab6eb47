"""Incremental feeds: changes since a cursor, oldest first, never one skipped, cost ~ the page."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from chalicelib.core import clock
from chalicelib.deptrans import feeds, sessions
from chalicelib.deptrans.feeds import feed_fields
from chalicelib.deptrans.lines import Flip
from chalicelib.deptrans.models import DriverProfile, SessionHistory, SessionStatus
from chalicelib.deptrans.schemas import KrtShift, LineState

IDS = "/deptrans-driver-status-integration/internal/v1/id/updates"
STATUSES = "/deptrans-driver-status-integration/internal/v1/status/updates"
T = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def bind(pd_id: str, registry_id: str, moment: dt.datetime, profiles=("p1/d1",)) -> None:
    """A binding written at `moment` by its writer's clock."""
    DriverProfile(licence_pd_id=pd_id, deptrans_id=registry_id, profiles=set(profiles), updated_at=moment,
                  **feed_fields(pd_id, pd_id, moment)).save()


def status(pd_id: str, seq: int, moment: dt.datetime, line_state: str = "on_line") -> None:
    """KRT's answer to the licence's flip `seq`, recorded at `moment` (the writer's clock)."""
    flip = Flip(seq=seq, state=LineState(line_state), registry_id="ID000001", key=f"key{seq}", changed_at=moment,
                profile="p1/d1")
    sessions.record(pd_id, flip, KrtShift(status="active", ends_at=moment + dt.timedelta(hours=12)), moment)


def get(client, path: str, **query):
    query_text = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return client.http.get(path + (f"?{query_text}" if query_text else ""))


def drain(client, path: str, cursor: str | None = None, limit: int = 3) -> tuple[list[dict], str]:
    items: list[dict] = []
    while True:
        answer = get(client, path, cursor=cursor, limit=limit)
        assert answer.status_code == 200, answer.body
        body = answer.json_body
        items += body["items"]
        cursor = body["cursor"]
        if not body["items"]:
            return items, cursor


def test_no_cursor_is_a_full_snapshot_in_pages_then_only_changes(client, aws_mock):
    clock.freeze(T)
    for n in range(10):
        bind(f"pd{n}", f"ID00000{n}", T - dt.timedelta(minutes=10 - n), profiles=(f"p1/d{n}", f"p2/d{n}"))
    items, cursor = drain(client, IDS)
    assert sorted(i["licence_pd_id"] for i in items) == [f"pd{n}" for n in range(10)] and len(items) == 10
    first = next(i for i in items if i["licence_pd_id"] == "pd0")
    assert first["id"] == "ID000000"
    assert first["profiles"] == [{"park_id": "p1", "driver_id": "d0"}, {"park_id": "p2", "driver_id": "d0"}]
    bind("pd3", "ID999993", T - dt.timedelta(seconds=30))
    bind("pd11", "ID000011", T - dt.timedelta(seconds=20))
    changed, cursor = drain(client, IDS, cursor)
    assert [(i["licence_pd_id"], i["id"]) for i in changed] == [("pd3", "ID999993"), ("pd11", "ID000011")]
    assert drain(client, IDS, cursor)[0] == []


def test_pages_are_oldest_first_and_a_rewritten_item_only_comes_with_its_latest_state(aws_mock):
    clock.freeze(T)
    for n in range(60):
        status(f"pd{n % 7}", n, T - dt.timedelta(seconds=600 - n), "on_line" if n % 2 else "off_line")
    cursor, seen = None, []
    for _ in range(30):
        page = feeds.read_page(SessionStatus, cursor, 3)
        keys = [item.feed_key for item in page.items]
        assert keys == sorted(keys)
        seen += page.items
        cursor = page.cursor
    assert sorted(item.licence_pd_id for item in seen) == [f"pd{n}" for n in range(7)]
    assert {item.licence_pd_id: item.flip_seq for item in seen} == {f"pd{n % 7}": n for n in range(53, 60)}


def test_equal_timestamps_are_never_skipped_across_page_boundaries(aws_mock):
    clock.freeze(T)
    same = T - dt.timedelta(minutes=1)
    for n in range(25):
        bind(f"pd{n:02d}", "ID000001", same)
    seen, cursor = [], None
    for _ in range(40):
        page = feeds.read_page(DriverProfile, cursor, 1)
        seen += [item.licence_pd_id for item in page.items]
        cursor = page.cursor
    assert sorted(seen) == [f"pd{n:02d}" for n in range(25)] and len(seen) == 25


def test_the_cursor_never_passes_now_minus_the_safety_window(aws_mock):
    clock.freeze(T)
    bind("old", "ID000001", T - dt.timedelta(seconds=30))
    bind("fresh", "ID000002", T - dt.timedelta(seconds=3))  # maybe not in the index everywhere yet
    page = feeds.read_page(DriverProfile, None, 100)
    assert [i.licence_pd_id for i in page.items] == ["old"]
    # A writer whose clock runs 5 s behind writes after our read, with a key "in the past": still seen.
    bind("skewed", "ID000003", T - dt.timedelta(seconds=5))
    clock.freeze(T + dt.timedelta(seconds=10))
    later = feeds.read_page(DriverProfile, page.cursor, 100)
    assert sorted(i.licence_pd_id for i in later.items) == ["fresh", "skewed"]


def test_a_rewritten_item_comes_again_with_its_latest_state(aws_mock):
    clock.freeze(T)
    bind("pd1", "ID000001", T - dt.timedelta(minutes=5))
    page = feeds.read_page(DriverProfile, None, 10)
    bind("pd1", "ID000009", T - dt.timedelta(minutes=1))
    again = feeds.read_page(DriverProfile, page.cursor, 10)
    assert [(i.licence_pd_id, i.deptrans_id) for i in again.items] == [("pd1", "ID000009")]


def test_a_page_reads_what_it_returns_whatever_the_table_holds(aws_mock):
    clock.freeze(T)
    for n in range(300):
        bind(f"pd{n:03d}", "ID000001", T - dt.timedelta(seconds=3000 - n))
    cursor, pages = None, 0
    while True:
        page = feeds.read_page(DriverProfile, cursor, 50)
        if not page.items:
            break
        pages += 1
        assert len(page.items) == 50 and page.items_read == 50
        cursor = page.cursor
    assert pages == 6


def test_the_status_snapshot_is_one_row_per_licence_whatever_its_history(client, aws_mock):
    clock.freeze(T)
    for n in range(40):
        status(f"pd{n % 8}", n, T - dt.timedelta(seconds=600 - n), "on_line" if n % 2 else "off_line")
    assert sum(SessionHistory.count(f"pd{n}") for n in range(8)) == 40
    items, cursor = drain(client, STATUSES, limit=3)
    assert sorted(i["licence_pd_id"] for i in items) == [f"pd{n}" for n in range(8)]
    assert next(i for i in items if i["licence_pd_id"] == "pd7") == {"licence_pd_id": "pd7", "session_status": "active",
                         "ended_at": "2026-11-23T23:50:39.000000Z", "line_state": "on_line",
                         "changed_at": "2026-11-23T11:50:39.000000Z", "park_id": "p1", "driver_id": "d1",
                         "updated_at": "2026-11-23T11:50:39.000000Z"}
    # An increment holds only the licences answered since.
    status("pd3", 41, T - dt.timedelta(seconds=30))
    clock.freeze(T + dt.timedelta(seconds=30))
    assert [i["licence_pd_id"] for i in drain(client, STATUSES, cursor)[0]] == ["pd3"]


def test_an_older_answer_never_overwrites_a_newer_one(aws_mock):
    clock.freeze(T)
    status("pd1", 2, T - dt.timedelta(seconds=60), "off_line")
    status("pd1", 1, T - dt.timedelta(seconds=30), "on_line")  # a re-send of an older flip, answered late
    assert SessionStatus.get("pd1").line_state == "off_line"
    assert SessionHistory.count("pd1") == 2


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "garbage!!", "bm90IGpzb24", _cursor([1, 2]), _cursor({"v": 2, "p": ["", "", "", ""]}),
    _cursor({"v": 1, "p": ["", ""]}), _cursor({"v": 1, "p": ["x", "", "", ""]}),
    _cursor({"v": 1, "p": [5, "", "", ""]}), "%00",
])
def test_a_malformed_cursor_is_a_400(client, cursor):
    for path in (IDS, STATUSES):
        answer = get(client, path, cursor=cursor)
        assert answer.status_code == 400, (cursor, answer.body)
        assert answer.json_body["code"] in ("invalid_cursor", "invalid_request")


@pytest.mark.parametrize("limit, status_code", [("0", 400), ("1001", 400), ("abc", 400), ("1", 200), ("1000", 200)])
def test_limit_is_1_to_1000(client, limit, status_code):
    assert get(client, IDS, limit=limit).status_code == status_code
