"""The status sender: line-state flips only, filters and caches, KRT outages, nothing lost, nothing sent twice."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from chalicelib.core import clock, config
from chalicelib.core.lease import acquire
from chalicelib.deptrans import krt, sender
from chalicelib.deptrans.models import DriverCacheEntry, KrtTokenItem, SessionStatus, StatusQueueEntry
from tests.deptrans.conftest import MOSCOW, PITER

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def pending() -> list[str]:
    return sorted(item.driver_key for shard in "0123" for item in StatusQueueEntry.pending.query(shard))


def states(dep) -> list[tuple[str, str]]:
    return [(r["id"], r["state"]) for r in dep.reports()]


def line_calls(dep) -> int:
    return sum(c["path"] == "/api/v1/line-states" for c in dep.calls("krt"))


def test_only_line_state_flips_reach_krt(dep):
    dep.online_driver("p1", "d1", "7703000001", "ID3000001")
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["sent_on_line"] == 1
    dep.events(("p1", "d1", "busy", at(1)), ids=["busy"])
    assert dep.send()["dropped_no_flip"] == 1
    dep.events(("p1", "d1", "online", at(2)), ids=["online-again"])
    dep.send()
    dep.events(("p1", "d1", "offline", at(3)), ids=["off"])
    assert dep.send()["sent_off_line"] == 1
    dep.events(("p1", "d1", "offline", at(4)), ids=["off-again"])
    dep.send()
    assert states(dep) == [("ID3000001", "on_line"), ("ID3000001", "off_line")]
    assert [r["changed_at"] for r in dep.reports()] == [at(0).isoformat().replace("+00:00", "Z"),
                                                         at(3).isoformat().replace("+00:00", "Z")]
    assert pending() == []


def test_off_line_of_a_driver_krt_never_saw_on_line_is_not_sent(dep):
    dep.online_driver("p1", "d1", "7703000002", "ID3000002")
    dep.events(("p1", "d1", "offline", at(0)))
    assert dep.send()["dropped_no_flip"] == 1
    assert dep.reports() == [] and pending() == []


@pytest.mark.parametrize("setup, reason", [
    ({"position": PITER}, "dropped_region"),
    ({"categories": ["cargo", "express"]}, "dropped_category"),
    ({"position": None}, "dropped_no_position"),
])
def test_coming_on_line_outside_the_region_or_the_categories_is_not_sent(dep, setup, reason):
    dep.online_driver("p1", "d1", "7703000003", "ID3000003")
    dep.control("drivers", {"park_id": "p1", "driver_id": "d1", **setup})
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()[reason] == 1
    assert dep.reports() == [] and pending() == []
    # Judged afresh at the next on-line status: he is in Moscow, in econom now.
    dep.control("drivers", {"park_id": "p1", "driver_id": "d1", "position": MOSCOW, "categories": ["econom"]})
    DriverCacheEntry(driver_key="p1/d1", kind="categories").delete()  # the cache would answer for 10 minutes
    dep.events(("p1", "d1", "busy", at(1)), ids=["busy"])
    assert dep.send()["sent_on_line"] == 1


def test_region_and_categories_are_configs(dep, client):
    import json

    dep.online_driver("p1", "d1", "7703000004", "ID3000004", position=PITER, categories=["cargo"])
    for name, value in [("deptrans_region", {"min_lon": 29.4, "min_lat": 59.6, "max_lon": 30.8, "max_lat": 60.1}),
                        ("deptrans_categories", ["cargo"])]:
        answer = client.http.put(f"/internal/v1/configs/{name}", headers={"Content-Type": "application/json"},
                                 body=json.dumps({"value": value}))
        assert answer.status_code == 200, answer.body
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["sent_on_line"] == 1


def test_a_driver_without_a_bound_id_is_not_sent(dep):
    dep.driver("p1", "d1", licence="7703000005", registry_id="ID3000005")  # registered in KRT, not bound here
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["dropped_no_id"] == 1
    assert dep.reports() == []


def test_going_off_line_is_always_sent_to_a_driver_krt_saw_on_line(dep):
    dep.online_driver("p1", "d1", "7703000006", "ID3000006")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    # He drove to Piter, changed tariffs, and every lookup upstream is down.
    dep.control("drivers", {"park_id": "p1", "driver_id": "d1", "position": PITER, "categories": []})
    for upstream in ("driver_trackstory", "driver_profiles", "driver_categories_api", "personal"):
        dep.fault(upstream, "error")
    dep.events(("p1", "d1", "offline", at(5)), ids=["off"])
    assert dep.send()["sent_off_line"] == 1
    assert states(dep) == [("ID3000006", "on_line"), ("ID3000006", "off_line")]


def test_cached_profiles_and_categories_answer_while_their_upstreams_are_down(dep):
    dep.online_driver("p1", "d1", "7703000007", "ID3000007")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    dep.events(("p1", "d1", "offline", at(1)), ids=["off"])
    dep.send()
    dep.fault("driver_profiles", "error")
    dep.fault("driver_categories_api", "timeout", delay=1)
    clock.freeze(clock.now() + dt.timedelta(hours=1))  # the cache is stale: the upstream is asked, and fails
    dep.events(("p1", "d1", "online", at(2)), ids=["on"])
    assert dep.send()["sent_on_line"] == 1
    assert [s for _, s in states(dep)] == ["on_line", "off_line", "on_line"]


def test_without_a_cached_answer_the_entry_waits_for_the_upstream(dep):
    dep.online_driver("p1", "d1", "7703000008", "ID3000008")
    DriverCacheEntry(driver_key="p1/d1", kind="licence").delete()
    dep.fault("driver_profiles", "error")
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["waiting"] == 1
    assert pending() == ["p1/d1"] and dep.reports() == []
    dep.heal("driver_profiles")
    assert dep.send()["sent_on_line"] == 1
    assert pending() == []


def test_trackstory_down_holds_coming_on_line_and_lets_going_off_line_through(dep):
    dep.online_driver("p1", "on", "7703000009", "ID3000009")
    dep.online_driver("p1", "off", "7703000010", "ID3000010")
    dep.events(("p1", "off", "online", at(0)))
    dep.send()
    dep.fault("driver_trackstory", "error")
    dep.events(("p1", "on", "online", at(1)), ("p1", "off", "offline", at(1)), ids=["a", "b"])
    result = dep.send()
    assert result["waiting"] == 1 and result["sent_off_line"] == 1
    assert pending() == ["p1/on"]
    dep.heal("driver_trackstory")
    dep.send()
    assert states(dep) == [("ID3000010", "on_line"), ("ID3000010", "off_line"), ("ID3000009", "on_line")]


def test_krt_down_keeps_the_queue_and_recovery_sends_every_change_once(dep):
    drivers = [f"d{n}" for n in range(8)]
    for n, driver in enumerate(drivers):
        dep.online_driver("p1", driver, f"77040000{n:02d}", f"ID40000{n:02d}")
    dep.events(*[("p1", d, "online", at(n)) for n, d in enumerate(drivers)], ids=drivers)
    dep.fault("krt", "error", status=503)
    result = dep.send()
    assert result["stopped_krt_down"] is True
    assert result.get("sent_on_line", 0) == 0
    assert pending() == sorted(f"p1/{d}" for d in drivers)
    # The run gave up after a few failures instead of hammering a registry that is down.
    assert line_calls(dep) <= 3 * (sender.KRT_FAILURES_TO_STOP + 24)
    dep.heal("krt")
    assert dep.send()["sent_on_line"] == len(drivers)
    assert pending() == []
    assert sorted(i for i, _ in states(dep)) == sorted(f"ID40000{n:02d}" for n in range(len(drivers)))
    assert dep.send() == {"stopped_krt_down": False}  # nothing left, nothing sent again


def test_a_newer_status_that_arrives_during_the_send_stays_queued(dep, monkeypatch):
    dep.online_driver("p1", "d1", "7703000011", "ID3000011")
    dep.events(("p1", "d1", "online", at(0)))
    original = krt.report_line_state

    def report_while_an_event_lands(*args, **kwargs):
        shift = original(*args, **kwargs)
        dep.events(("p1", "d1", "offline", at(1)), ids=["during"])
        return shift

    monkeypatch.setattr(krt, "report_line_state", report_while_an_event_lands)
    # The on-line change went out; the off-line that landed meanwhile stayed queued, and the same run's
    # next pass sent it (it lands again during its own send, as a replay: that changes nothing).
    result = dep.send()
    assert result["replaced"] == 1 and result["sent_on_line"] == 1 and result["sent_off_line"] == 1
    assert states(dep) == [("ID3000011", "on_line"), ("ID3000011", "off_line")]
    assert pending() == []


def test_a_crash_between_krt_and_our_write_resends_the_same_change_which_krt_recognises(dep, monkeypatch):
    dep.online_driver("p1", "d1", "7703000012", "ID3000012")
    dep.events(("p1", "d1", "online", at(0)))

    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda died here")

    monkeypatch.setattr(sender, "_mark_sent", crash)
    assert dep.send()["not_recorded"] == 1
    assert pending() == ["p1/d1"]
    monkeypatch.undo()
    assert dep.send()["sent_on_line"] == 1
    assert line_calls(dep) == 2  # sent again, with the same event_id ...
    assert len(dep.reports()) == 1  # ... which KRT took once
    assert pending() == []


def test_krt_answers_are_kept_as_session_statuses_for_the_configured_days(dep):
    pd_id = dep.online_driver("p1", "d1", "7703000013", "ID3000013")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    dep.events(("p1", "d1", "offline", at(60)), ids=["off"])
    dep.send()
    rows = list(SessionStatus.query(pd_id))
    assert [(r.line_state, r.session_status) for r in rows] == [("on_line", "active"), ("off_line", "paused")]
    assert rows[0].ended_at == at(0) + dt.timedelta(hours=12)
    assert all(r.park_id == "p1" and r.driver_id == "d1" for r in rows)
    lifetime = rows[0].expires_at - rows[0].updated_at
    assert dt.timedelta(days=7) - dt.timedelta(seconds=2) <= lifetime <= dt.timedelta(days=7)


def test_a_rejected_change_leaves_the_queue_and_is_logged(dep, app_logs):
    dep.online_driver("p1", "d1", "7703000014", "ID3000014")
    dep.control("krt/ids", {"licence": "7703000014", "id": "IDOTHER14"})  # KRT re-issued the ID: ours is unknown
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["rejected"] == 1
    assert pending() == []
    assert any("deptrans.krt_rejected" in line for line in app_logs.lines)
    assert not any("ID3000014" in line for line in app_logs.lines)


def test_rate_limited_changes_wait_for_a_later_run(dep):
    dep.online_driver("p1", "d1", "7703000015", "ID3000015")
    dep.events(("p1", "d1", "online", at(0)))
    dep.control("krt/rate_limit", {"count": 100, "retry_after": 1})
    assert dep.send().get("sent_on_line", 0) == 0
    assert pending() == ["p1/d1"]
    dep.control("krt/rate_limit", {"count": 0})
    assert dep.send()["sent_on_line"] == 1


def test_an_expired_token_is_refreshed_once_and_the_call_retried(dep):
    dep.online_driver("p1", "d1", "7703000016", "ID3000016")
    tokens_before = sum(c["path"] == "/oauth/token" for c in dep.calls("krt"))
    dep.control("krt/expire_tokens", {})
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["sent_on_line"] == 1
    assert sum(c["path"] == "/oauth/token" for c in dep.calls("krt")) == tokens_before + 1


def test_the_token_is_shared_by_instances_and_refreshed_by_one(dep):
    first = krt.access_token()
    krt._memory = None  # another instance: nothing in its memory
    assert krt.access_token() == first
    assert sum(c["path"] == "/oauth/token" for c in dep.calls("krt")) == 1
    assert KrtTokenItem.get("krt").access_token == first


def test_while_another_instance_refreshes_the_old_token_serves_and_an_expired_one_waits(dep, monkeypatch):
    now = time.time()
    KrtTokenItem(name="krt", access_token="old-but-valid", token_expires_at=now + 30,
                 refresh_owner="someone-else", refresh_until=now + 10).save()
    krt._memory = None
    assert krt.access_token() == "old-but-valid"  # inside the margin, but the refresher is at work
    KrtTokenItem(name="krt", access_token="dead", token_expires_at=now - 1,
                 refresh_owner="someone-else", refresh_until=now + 10).save()
    monkeypatch.setattr(krt, "WAIT_FOR_REFRESH_SECONDS", 0.3)
    from chalicelib.core.errors import UpstreamUnavailable

    with pytest.raises(UpstreamUnavailable):
        krt.access_token()
    assert not any(c["path"] == "/oauth/token" for c in dep.calls("krt"))
    # The other refresher died: its lease runs out and this instance takes over.
    KrtTokenItem(name="krt", access_token="dead", token_expires_at=now - 1,
                 refresh_owner="someone-else", refresh_until=now - 1).save()
    assert krt.access_token() not in ("dead", "old-but-valid")


def test_calls_to_krt_run_concurrently_and_bounded(dep, monkeypatch):
    import threading

    drivers = [f"c{n}" for n in range(30)]
    for n, driver in enumerate(drivers):
        dep.online_driver("p2", driver, f"77050000{n:02d}", f"ID50000{n:02d}")
    for start in range(0, 30, 10):
        chunk = drivers[start:start + 10]
        dep.events(*[("p2", d, "online", at(0)) for d in chunk], ids=chunk)
    config.write("deptrans_sender_concurrency", 6)
    in_flight, peak, lock = [0], [0], threading.Lock()
    original = krt.report_line_state

    def counted(*args, **kwargs):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            time.sleep(0.1)  # KRT's latency
            return original(*args, **kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(krt, "report_line_state", counted)
    assert dep.send()["sent_on_line"] == 30
    assert 3 <= peak[0] <= 6


def test_one_runner_at_a_time(dep, client):
    dep.online_driver("p1", "d1", "7703000017", "ID3000017")
    dep.events(("p1", "d1", "online", at(0)))
    assert acquire("deptrans_status_sender", 60, owner="another-runner")
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=["arn:aws:events:us-east-1:123456789012:rule/x"])
    assert client.lambda_.invoke("deptrans_status_sender", event).payload is None
    assert dep.reports() == [] and pending() == ["p1/d1"]


def test_another_profile_of_the_licence_is_sent_to_its_id_and_joins_the_bindings_profiles(dep):
    from chalicelib.deptrans.models import DriverProfile

    pd_id = dep.online_driver("p1", "d1", "7703000018", "ID3000018")
    dep.driver("p2", "d7", licence="7703000018")  # the same driver in another park
    dep.events(("p2", "d7", "online", at(0)))
    assert dep.send()["sent_on_line"] == 1
    assert states(dep) == [("ID3000018", "on_line")]
    assert DriverProfile.get(pd_id).profiles == {"p1/d1", "p2/d7"}


def test_credentials_come_from_ssm_once_per_process(dep, monkeypatch):
    from chalicelib.core import aws

    ssm = aws.client("ssm")
    reads = []
    original = ssm.get_parameter

    def counted(**kwargs):
        reads.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(ssm, "get_parameter", counted)
    krt.access_token()
    dep.control("krt/expire_tokens", {})
    krt.access_token(stale=krt.access_token())  # a refresh needs the credentials again: still cached
    assert len(reads) == 1 and reads[0]["WithDecryption"] is True
    assert sum(c["path"] == "/oauth/token" for c in dep.calls("krt")) == 2


def test_a_short_retry_after_is_waited_for_and_the_change_goes_through_in_the_same_run(dep):
    dep.online_driver("p1", "d1", "7703000017", "ID3000017")
    dep.events(("p1", "d1", "online", at(0)))
    dep.control("krt/rate_limit", {"count": 1, "retry_after": 1})
    started = time.monotonic()
    assert dep.send()["sent_on_line"] == 1
    assert time.monotonic() - started >= 1.0  # KRT's Retry-After header was honoured, not hammered through
    line_states = [c for c in dep.calls("krt") if c["path"] == "/api/v1/line-states"]
    assert len(line_states) == 2  # the refused call and its one retry
    assert pending() == []
