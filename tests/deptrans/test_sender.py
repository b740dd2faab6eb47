"""The status sender towards KRT: flips only, what waits and is re-checked, caches, outages, nothing lost or sent twice."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from chalicelib.core import clock, config
from chalicelib.core.lease import acquire
from chalicelib.deptrans import krt, sender
from chalicelib.deptrans.models import (
    DriverCacheEntry, KrtTokenItem, LicenceLine, SessionHistory, SessionStatus, StatusQueueEntry,
)
from tests.deptrans.conftest import BALASHIKHA, MOSCOW, PITER

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def pending() -> list[str]:
    return sorted(item.driver_key for shard in "0123" for item in StatusQueueEntry.pending.query(shard))


def due() -> list[str]:
    return sorted(row.licence_pd_id for shard in "0123" for row in LicenceLine.due.query(shard))


def states(dep) -> list[tuple[str, str]]:
    return [(r["id"], r["state"]) for r in dep.reports()]


def line_calls(dep) -> int:
    return sum(c["path"] == "/api/v1/line-states" for c in dep.calls("krt"))


def test_only_line_state_flips_reach_krt(dep):
    dep.online_driver("p1", "d1", "7703000001", "ID3000001")
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["sent_on_line"] == 1
    dep.events(("p1", "d1", "busy", at(1)), ids=["busy"])
    assert "sent_on_line" not in dep.send()  # busy is on line too: no flip
    dep.events(("p1", "d1", "online", at(2)), ids=["online-again"])
    dep.send()
    dep.events(("p1", "d1", "offline", at(3)), ids=["off"])
    assert dep.send()["sent_off_line"] == 1
    dep.events(("p1", "d1", "offline", at(4)), ids=["off-again"])
    dep.send()
    assert states(dep) == [("ID3000001", "on_line"), ("ID3000001", "off_line")]
    assert [r["changed_at"] for r in dep.reports()] == [at(0).isoformat().replace("+00:00", "Z"),
                                                         at(3).isoformat().replace("+00:00", "Z")]
    assert pending() == [] and due() == []


def test_off_line_of_a_driver_krt_never_saw_on_line_is_not_sent(dep):
    dep.online_driver("p1", "d1", "7703000002", "ID3000002")
    dep.events(("p1", "d1", "offline", at(0)))
    assert dep.send()["idle"] == 1
    assert dep.reports() == [] and pending() == [] and due() == []


@pytest.mark.parametrize("setup, reason", [
    ({"position": PITER}, "region"),
    ({"position": BALASHIKHA}, "region"),
    ({"categories": ["cargo", "express"]}, "category"),
    ({"position": None}, "no_position"),
])
def test_on_line_that_cannot_be_sent_waits_and_goes_once_it_can_without_a_new_event(dep, setup, reason):
    pd_id = dep.online_driver("p1", "d1", "7703000003", "ID3000003")
    dep.control("drivers", {"park_id": "p1", "driver_id": "d1", **setup})
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()[f"waiting_{reason}"] == 1
    assert dep.reports() == [] and due() == [pd_id]
    assert dep.send()[f"waiting_{reason}"] == 1  # re-checked on every run, still not sendable
    # He drives into Moscow, works in econom now: the next run finds it, no status event needed.
    dep.move("p1", "d1", MOSCOW)
    dep.control("drivers", {"park_id": "p1", "driver_id": "d1", "categories": ["econom"]})
    DriverCacheEntry(driver_key="p1/d1", kind="categories").delete()  # the cache would answer for 10 minutes
    before = clock.now()
    assert dep.send()["sent_on_line"] == 1
    assert states(dep) == [("ID3000003", "on_line")]
    # Dated when it became sendable (we learnt it then), not at the status event.
    assert dep.reports()[0]["changed_at"] >= before.isoformat()[:19]


def test_regions_and_categories_are_configs(dep, client):
    import json

    dep.online_driver("p1", "d1", "7703000004", "ID3000004", position=PITER, categories=["cargo"])
    piter = [[29.4, 59.6], [30.8, 59.6], [30.8, 60.1], [30.1, 60.2], [29.4, 60.1]]  # left open: closed at PUT
    for name, value in [("deptrans_regions", [{"name": "piter", "polygon": [piter]}]),
                        ("deptrans_categories", ["cargo"])]:
        answer = client.http.put(f"/internal/v1/configs/{name}", headers={"Content-Type": "application/json"},
                                 body=json.dumps({"value": value}))
        assert answer.status_code == 200, answer.body
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["sent_on_line"] == 1


def test_a_licence_without_a_bound_id_waits_and_binding_while_on_line_sends_it(dep):
    pd_id = dep.driver("p1", "d1", licence="7703000005", registry_id="ID3000005")  # known to KRT, not bound
    dep.events(("p1", "d1", "online", at(0)))
    result = dep.send()
    assert result["waiting_no_id"] == 1 and result["supply_lost_no_id"] == 1
    assert dep.reports() == [] and due() == [pd_id]
    assert dep.bind("p1", "d1", "ID3000005").status_code == 200
    config.write("deptrans_rechecks_per_run", 0)  # a bind makes it a change: no re-check allowance needed
    assert dep.send()["sent_on_line"] == 1
    assert states(dep) == [("ID3000005", "on_line")]


def test_going_off_line_is_always_sent_to_the_id_krt_has(dep):
    dep.online_driver("p1", "d1", "7703000006", "ID3000006")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    # He drove to Piter, changed tariffs, and every lookup upstream is down.
    dep.control("drivers", {"park_id": "p1", "driver_id": "d1", "position": PITER, "categories": []})
    for upstream in ("driver_trackstory", "driver_profiles", "driver_categories_api", "personal"):
        dep.fault(upstream, "error")
    clock.freeze(clock.now() + dt.timedelta(hours=1))  # every cached answer is stale: the upstreams are asked
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


def test_without_a_cached_answer_the_event_waits_for_the_upstream(dep):
    dep.online_driver("p1", "d1", "7703000008", "ID3000008")
    DriverCacheEntry(driver_key="p1/d1", kind="licence").delete()
    dep.fault("driver_profiles", "error")
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["profiles_waiting"] == 1
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
    assert result["waiting_upstream"] == 1 and result["sent_off_line"] == 1
    dep.heal("driver_trackstory")
    dep.send()
    assert states(dep) == [("ID3000010", "on_line"), ("ID3000010", "off_line"), ("ID3000009", "on_line")]
    # The held change kept its event's time: trackstory being down is not when he came on line.
    assert dep.reports()[-1]["changed_at"] == at(1).isoformat().replace("+00:00", "Z")


def test_krt_down_keeps_every_change_and_recovery_sends_each_once(dep):
    drivers = [f"d{n}" for n in range(8)]
    licences = sorted(dep.online_driver("p1", driver, f"77040000{n:02d}", f"ID40000{n:02d}")
                      for n, driver in enumerate(drivers))
    dep.events(*[("p1", d, "online", at(n)) for n, d in enumerate(drivers)], ids=drivers)
    dep.fault("krt", "error", status=503)
    result = dep.send()
    assert result["stopped_krt_down"] is True
    assert result.get("sent_on_line", 0) == 0
    assert due() == licences
    # The run gave up after a few failures instead of hammering a registry that is down.
    assert line_calls(dep) <= 3 * (sender.KRT_FAILURES_TO_STOP + 32)
    dep.heal("krt")
    assert dep.send()["sent_on_line"] == len(drivers)
    assert sorted(i for i, _ in states(dep)) == sorted(f"ID40000{n:02d}" for n in range(len(drivers)))
    calls = line_calls(dep)
    assert "sent_on_line" not in dep.send()  # re-checked, nothing to send again
    assert line_calls(dep) == calls


def test_a_newer_status_that_arrives_during_the_send_goes_next(dep, monkeypatch):
    dep.online_driver("p1", "d1", "7703000011", "ID3000011")
    dep.events(("p1", "d1", "online", at(0)))
    original = krt.report_line_state

    def report_while_an_event_lands(*args, **kwargs):
        shift = original(*args, **kwargs)
        dep.events(("p1", "d1", "offline", at(1)), ids=["during"])
        return shift

    monkeypatch.setattr(krt, "report_line_state", report_while_an_event_lands)
    # The on-line flip went out; the off-line that landed meanwhile was folded by the same run's next pass and
    # sent (it lands again during its own send, as a replay: that changes nothing).
    result = dep.send()
    assert result["sent_on_line"] == 1 and result["sent_off_line"] == 1
    assert states(dep) == [("ID3000011", "on_line"), ("ID3000011", "off_line")]
    assert pending() == [] and due() == []


def test_a_crash_between_krt_and_our_write_resends_the_same_flip_which_krt_recognises(dep, monkeypatch):
    from chalicelib.deptrans.store import LineStore

    dep.online_driver("p1", "d1", "7703000012", "ID3000012")
    dep.events(("p1", "d1", "online", at(0)))

    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda died here")

    monkeypatch.setattr(LineStore, "acknowledge", crash)
    assert dep.send()["not_recorded"] == 1
    monkeypatch.undo()
    assert dep.send()["sent_on_line"] == 1
    calls = [c for c in dep.calls("krt") if c["path"] == "/api/v1/line-states"]
    assert len(calls) == 2  # sent again, under the flip's own key ...
    assert calls[0]["body"]["event_id"] == calls[1]["body"]["event_id"] == calls[1]["idempotency_token"]
    assert len(dep.reports()) == 1  # ... which KRT took once
    assert "sent_on_line" not in dep.send()


def test_krt_answers_are_one_current_row_per_licence_and_a_history_kept_the_configured_days(dep):
    pd_id = dep.online_driver("p1", "d1", "7703000013", "ID3000013")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    dep.events(("p1", "d1", "offline", at(60)), ids=["off"])
    dep.send()
    current = SessionStatus.get(pd_id)
    assert (current.line_state, current.session_status, current.flip_seq) == ("off_line", "paused", 2)
    assert current.ended_at == at(0) + dt.timedelta(hours=12) and current.changed_at == at(60)
    assert (current.park_id, current.driver_id) == ("p1", "d1")
    history = list(SessionHistory.query(pd_id))
    assert [(r.line_state, r.session_status) for r in history] == [("on_line", "active"), ("off_line", "paused")]
    lifetime = history[0].expires_at - history[0].updated_at
    assert dt.timedelta(days=7) - dt.timedelta(seconds=2) <= lifetime <= dt.timedelta(days=7)
    config.write("deptrans_session_history_days", 1)
    dep.events(("p1", "d1", "online", at(120)), ids=["on"])
    dep.send()
    newest = max(SessionHistory.query(pd_id), key=lambda r: r.change_key)
    assert newest.expires_at - newest.updated_at <= dt.timedelta(days=1)
    assert SessionStatus.count(pd_id) == 1


def test_a_refused_flip_is_recorded_logged_and_not_sent_again_every_run(dep, app_logs):
    pd_id = dep.online_driver("p1", "d1", "7703000014", "ID3000014")
    dep.control("krt/ids", {"licence": "7703000014", "id": "IDOTHER14"})  # KRT re-issued the ID: ours is unknown
    dep.events(("p1", "d1", "online", at(0)))
    assert dep.send()["rejected"] == 1
    assert dep.send()["waiting_rejected"] == 1
    assert line_calls(dep) == 1
    assert any("deptrans.krt_rejected" in line for line in app_logs.lines)
    assert not any("ID3000014" in line or "7703000014" in line for line in app_logs.lines)
    # The driver binds the new ID: the on-line flip goes to it.
    assert dep.bind("p1", "d1", "IDOTHER14").status_code == 200
    assert dep.send()["sent_on_line"] == 1
    assert states(dep) == [("IDOTHER14", "on_line")] and due() == [pd_id]


def test_rate_limited_changes_wait_for_a_later_run(dep):
    dep.online_driver("p1", "d1", "7703000015", "ID3000015")
    dep.events(("p1", "d1", "online", at(0)))
    dep.control("krt/rate_limit", {"count": 100, "retry_after": 5})
    assert dep.send().get("sent_on_line", 0) == 0
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
