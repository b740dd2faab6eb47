"""Status events -> the status queue: the newest event wins, replays change nothing, one write per driver."""
from __future__ import annotations

import datetime as dt

from pynamodb.connection.base import Connection

from chalicelib.core import clock

from chalicelib.deptrans.models import StatusQueueEntry
from tests.conftest import failed_ids, sqs_event
from tests.deptrans.conftest import T0


def entry(park_id: str, driver_id: str) -> StatusQueueEntry:
    return StatusQueueEntry.get(f"{park_id}/{driver_id}", consistent_read=True)


def pending() -> list[str]:
    return sorted(item.driver_key for shard in "0123" for item in StatusQueueEntry.pending.query(shard))


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_an_event_queues_the_drivers_latest_status(dep):
    answer = dep.events(("p1", "d1", "online", at(0)))
    assert failed_ids(answer) == []
    item = entry("p1", "d1")
    assert (item.status, item.event_at) == ("online", at(0))
    assert pending() == ["p1/d1"]


def test_an_older_event_never_overwrites_a_newer_one_in_any_arrival_order(dep):
    dep.events(("p1", "d1", "busy", at(10)))
    dep.events(("p1", "d1", "offline", at(5)), ids=["late"])
    assert entry("p1", "d1").status == "busy"
    dep.events(("p1", "d1", "offline", at(20)), ("p1", "d1", "online", at(15)), ids=["a", "b"])
    item = entry("p1", "d1")
    assert (item.status, item.event_at) == ("offline", at(20))


def test_a_replay_changes_nothing(dep):
    dep.events(("p1", "d1", "online", at(0)))
    before = entry("p1", "d1").attribute_values
    answer = dep.events(("p1", "d1", "online", at(0)), ("p1", "d1", "online", at(0)), ids=["r1", "r2"])
    assert failed_ids(answer) == []
    assert entry("p1", "d1").attribute_values == before


def test_a_replay_after_the_entry_was_sent_does_not_queue_it_again(dep):
    dep.online_driver("p1", "d1", "7702000001", "ID2000001")
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["sent_on_line"] == 1
    assert pending() == []
    dep.events(("p1", "d1", "online", at(0)), ids=["replay"])
    dep.events(("p1", "d1", "offline", at(-60)), ids=["older"])
    assert pending() == []


def test_timestamps_with_offsets_are_compared_in_utc(dep):
    dep.events(("p1", "d1", "busy", "2026-11-23T13:00:00+03:00"))  # 10:00Z
    dep.events(("p1", "d1", "offline", "2026-11-23T10:00:01Z"), ids=["later"])
    assert entry("p1", "d1").status == "offline"


def test_one_conditional_write_per_driver_per_batch_without_reads(dep):
    calls: list[str] = []
    original = Connection._make_api_call

    def counting(connection, operation, kwargs):
        calls.append(operation)
        return original(connection, operation, kwargs)

    Connection._make_api_call = counting
    try:
        answer = dep.events(*[("p1", f"d{n}", "online", at(n)) for n in range(7)],
                            ("p1", "d0", "busy", at(30)), ("p1", "d0", "offline", at(20)), ("p1", "d1", "busy", at(1)),
                            ids=[f"m{n}" for n in range(10)])
    finally:
        Connection._make_api_call = original
    assert failed_ids(answer) == []
    assert calls == ["UpdateItem"] * 7  # 10 events, 7 drivers, no GetItem
    assert entry("p1", "d0").status == "busy"
    assert entry("p1", "d1").status == "online"  # same time: a fixed rule picks one, replicas agree


def test_a_bad_message_fails_alone_and_its_batch_mates_are_applied(dep):
    answer = dep.client.lambda_.invoke("deptrans_status_events", sqs_event(
        dep.client, "deptrans_contractor_status_events",
        [{"park_id": "p1", "driver_id": "d1", "status": "online", "updated_at": at(0).isoformat()},
         {"park_id": "p1", "driver_id": "d2", "status": "dancing", "updated_at": at(0).isoformat()},
         {"park_id": "p1", "driver_id": "d3"},
         "not json",
         {"park_id": "p/1", "driver_id": "d4", "status": "online", "updated_at": at(0).isoformat()},
         {"park_id": "p1", "driver_id": "d5", "status": "busy", "updated_at": at(0).isoformat()}],
        ids=["ok1", "bad-status", "missing", "garbage", "bad-id", "ok2"])).payload
    assert sorted(failed_ids(answer)) == ["bad-id", "bad-status", "garbage", "missing"]
    assert pending() == ["p1/d1", "p1/d5"]


def test_a_failed_write_fails_only_its_drivers_messages(dep, monkeypatch):
    from chalicelib.deptrans import events

    original = events._apply

    def flaky(key, event):
        if key == "p1/d2":
            return events.Outcome.FAILED
        return original(key, event)

    monkeypatch.setattr(events, "_apply", flaky)
    answer = dep.events(("p1", "d1", "online", at(0)), ("p1", "d2", "online", at(0)), ("p1", "d2", "busy", at(1)),
                        ids=["a", "b", "c"])
    assert sorted(failed_ids(answer)) == ["b", "c"]
    assert pending() == ["p1/d1"]


def test_an_event_dated_far_ahead_fails_instead_of_freezing_the_drivers_status(dep):
    clock.freeze(T0)
    answer = dep.events(("p1", "d1", "online", at(3600)), ("p1", "d2", "online", at(60)), ids=["future", "ok"])
    assert failed_ids(answer) == ["future"]
    assert pending() == ["p1/d2"]
