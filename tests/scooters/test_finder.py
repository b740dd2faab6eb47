"""Find discharged scooters: one task per battery_low tag, tagged recharge_processing, planning enqueued."""
from __future__ import annotations

import datetime as dt

from chalicelib.core import clock
from chalicelib.scooters.recharge import attempts, finder
from chalicelib.scooters.recharge.lifecycle import NEW
from chalicelib.scooters.recharge.models import RechargeTask, task_id_of


def _tag_id(recharge, car_id):
    return next(t["tag_id"] for t in recharge.car_state(car_id)["tag_details"] if t["tag"] == "battery_low")


def test_a_discharged_scooter_gets_a_task_a_tag_and_a_planning_message(recharge):
    recharge.car("s1", level=20)
    recharge.car("s2", level=90)
    report = recharge.find()
    task_id = task_id_of("s1", _tag_id(recharge, "s1"))
    task = recharge.task(task_id)
    assert task.status == NEW and task.car_id == "s1" and task.position == [37.62, 55.753]
    info_battery = recharge.car_state("s1")["battery"]["id"]
    assert task.battery_id == info_battery
    assert "recharge_processing" in recharge.car_state("s1")["tags"]
    assert "recharge_processing" not in recharge.car_state("s2")["tags"]
    assert [(s.queue, s.message.task_id, s.message.attempt) for s in recharge.sent] == [
        ("scooters_misc_recharge", task_id, 1)]
    assert report.created == 1 and report.listed == 1


def test_the_poll_asks_only_about_discharged_cars(recharge):
    for n in range(30):
        recharge.car(f"fleet-{n}", level=90)
    recharge.car("low", level=10)
    recharge.find()
    infos = [c for c in recharge.calls("scooter_backend") if c["path"] == "/car/info"]
    listed = [c for c in recharge.calls("scooter_backend") if c["path"] == "/car/list"]
    assert [c["query"]["car_id"] for c in infos] == ["low"]
    assert listed[0]["query"]["tags_filter"] == "battery_low*-recharge_processing-scooter_destroyed-scooter_missing"


def test_a_second_poll_skips_the_taken_scooter(recharge):
    recharge.car("s1", level=20)
    recharge.find()
    recharge.sent.clear()
    report = recharge.find()
    assert report.listed == 0 and recharge.sent == []


def test_an_existing_task_is_a_race_and_is_skipped(recharge):
    recharge.car("s1", level=20)
    tag_id = _tag_id(recharge, "s1")
    now = clock.now()
    RechargeTask(task_id_of("s1", tag_id), car_id="s1", tag_id=tag_id, status="booked", attempt=1,
                 position=[37.62, 55.753], created_at=now, updated_at=now,
                 expires_at=now + dt.timedelta(days=1)).save()
    report = recharge.find()
    assert report.created == 0 and report.skipped == 1 and recharge.sent == []
    assert recharge.task(task_id_of("s1", tag_id)).status == "booked"


def test_a_run_that_stopped_before_the_tag_is_repaired_by_the_next(recharge, monkeypatch):
    recharge.car("s1", level=20)
    calls, original = [], finder.upstreams.add_tag

    def tag_down(car_id, tag):
        calls.append(tag)
        raise finder.UpstreamUnavailable("down")

    monkeypatch.setattr(finder.upstreams, "add_tag", tag_down)
    report = recharge.find()
    assert report.created == 1 and report.failed == 1 and calls == ["recharge_processing"]
    monkeypatch.setattr(finder.upstreams, "add_tag", original)
    recharge.sent.clear()
    report = recharge.find()
    # The task is still new: its message goes again (planning is idempotent), the tag goes on this time.
    assert report.resent == 1 and len(recharge.sent) == 1
    assert "recharge_processing" in recharge.car_state("s1")["tags"]


def test_car_list_down_is_logged_and_the_next_minute_tries_again(recharge):
    recharge.car("s1", level=20)
    recharge.fault("scooter_backend", count=10)
    report = recharge.find()
    assert report.failed == 1 and report.created == 0
    recharge.control("reset")  # the simulator heals (and forgets the car)
    recharge.car("s1", level=20)
    assert recharge.find().created == 1


def test_a_car_whose_info_fails_is_skipped_the_others_go_on(recharge, monkeypatch):
    recharge.car("s1", level=20)
    recharge.car("s2", level=20)
    original = finder.upstreams.car_info

    def info(car_id):
        if car_id == "s1":
            raise finder.UpstreamUnavailable("down")
        return original(car_id)

    monkeypatch.setattr(finder.upstreams, "car_info", info)
    report = recharge.find()
    assert report.failed == 1 and report.created == 1
    assert "recharge_processing" not in recharge.car_state("s1")["tags"]


def test_threshold_tags_match_the_prefix(recharge):
    recharge.car("s1", level=90)
    recharge.control("faults", {"upstream": "scooter_backend", "mode": "ok"})
    import requests
    requests.post(f"{recharge.base}/scooter_backend/tag/add", json={"car_id": "s1", "tag": "battery_low_40"}, timeout=5)
    assert recharge.find().created == 1


def test_the_sweep_resends_overdue_planning(recharge):
    clock.freeze(dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc))
    recharge.car("s1", level=20)
    recharge.find()
    recharge.sent.clear()  # the message was lost
    assert finder.sweep_overdue() == 0  # not overdue yet
    clock.advance(seconds=attempts.WATCHDOG_SECONDS + 1)
    assert finder.sweep_overdue() == 1
    assert len(recharge.sent) == 1
    assert finder.sweep_overdue() == 0  # a new watchdog: not every minute
    task_id = recharge.sent[0].message.task_id
    recharge.plan_due()
    task = recharge.task(task_id)
    assert task.status == "claimed" and task.sweep is None and task.due_at is None


def test_the_local_demo_plays_a_swap(recharge):
    """The local stage's demo: its depots config and the simulator's reset state (demo scooter, cabinets)."""
    import json

    from chalicelib.core import config
    from tests.conftest import ROOT

    for name, value in json.loads((ROOT / "local/demo_configs/scooters.json").read_text()).items():
        config.write(name, value)
    recharge.control("reset")
    assert recharge.find().created == 0  # the demo scooter starts charged
    recharge.control("scooter_backend/cars", {"car_id": "demo-scooter-1", "battery_level": 20})
    recharge.find()
    assert recharge.plan_due() == ["claimed"]
    [claim] = recharge.claims()
    assert claim["body"]["route_points"][0]["address"]["coordinates"] == [37.617, 55.755]  # grocery:demo-1
    assert [b["cabinet_id"] for b in recharge.live_bookings()] == ["demo-cabinet-1"]
