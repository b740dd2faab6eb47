"""Off the happy path around the swap: a claim that ends after the swap closes its side only (no second claim for a
charged scooter); the exact low-battery tag is the one removed; scooters reported missing or destroyed get no
claim, and a waiting task whose scooter no longer needs one is given up."""
from __future__ import annotations

import datetime as dt
import logging

import requests

from chalicelib.core import clock
from chalicelib.scooters.recharge import planner
from chalicelib.scooters.recharge.lifecycle import DONE, GIVEN_UP, RENTABLE, WAITING

PERFORMER = ("park-1", "driver-1")


def _to(recharge, claimed, *steps):
    recharge.follow()
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    for status, kind in steps:
        recharge.advance(claimed.claim_id, status, current_point_id=claimed.points[kind])
    recharge.follow()


def _planned_again(recharge) -> list:
    return [s for s in recharge.sent if s.delay_seconds > 0]


def test_a_cancellation_after_the_swap_closes_the_claim_only(recharge, claimed, caplog):
    _to(recharge, claimed, ("pickup_arrived", "source"), ("pickuped", "destination"),
        ("delivery_arrived", "destination"), ("pickuped", "return"))
    task = recharge.task(claimed.task_id)
    assert task.status == RENTABLE and recharge.car_state("s1")["tags"] == []
    recharge.advance(claimed.claim_id, "cancelled", current_point_id=claimed.points["return"])
    with caplog.at_level(logging.ERROR):
        recharge.follow()
    task = recharge.task(claimed.task_id)
    assert task.status == DONE and task.claim_outcome == "cancelled" and task.attempt == 1
    assert _planned_again(recharge) == [] and len(recharge.claims()) == 1  # no second claim, no second courier
    booking = recharge.bookings()[task.book_id]
    assert booking["contractor_id"] is None and booking["status"] == "unbooked"
    assert "scooters.discharged_battery_with_courier" in [r.getMessage() for r in caplog.records]
    recharge.find()
    assert recharge.car_state("s1")["tags"] == []  # rentable, and stays so after the next poll


def test_a_failure_at_the_scooter_after_the_swap_puts_it_back_in_rent(recharge, claimed):
    _to(recharge, claimed, ("pickup_arrived", "source"), ("pickuped", "destination"),
        ("delivery_arrived", "destination"))
    requests.post(f"{recharge.base}/scooter_backend/car/battery_door/open", json={"car_id": "s1"}, timeout=5)
    recharge.advance(claimed.claim_id, "failed", current_point_id=claimed.points["destination"])
    recharge.follow()
    task = recharge.task(claimed.task_id)
    assert task.status == DONE and _planned_again(recharge) == []
    assert recharge.car_state("s1")["tags"] == []


def test_a_failure_before_the_swap_plans_again(recharge, claimed):
    _to(recharge, claimed, ("pickup_arrived", "source"), ("pickuped", "destination"))
    recharge.advance(claimed.claim_id, "failed", current_point_id=claimed.points["destination"])
    recharge.follow()
    assert recharge.task(claimed.task_id).status == WAITING and len(_planned_again(recharge)) == 1


def test_a_threshold_tag_is_the_one_removed(recharge):
    recharge.car("s1", level=90)
    requests.post(f"{recharge.base}/scooter_backend/tag/add", json={"car_id": "s1", "tag": "battery_low_40"},
                  timeout=5)
    recharge.find()
    task_id = recharge.sent[0].message.task_id
    assert recharge.task(task_id).low_tag == "battery_low_40"
    recharge.plan_due()
    claim = recharge.claims()[0]
    recharge.follow()
    recharge.advance(claim["id"], "performer_found", performer=PERFORMER)
    recharge.advance(claim["id"], "pickuped", current_point_id=3)
    recharge.follow()
    assert recharge.task(task_id).status == RENTABLE
    assert recharge.car_state("s1")["tags"] == []
    removed = [c["body"]["tag"] for c in recharge.calls("scooter_backend") if c["path"] == "/tag/remove"]
    assert removed == ["battery_low_40", "recharge_processing"]
    assert recharge.find().listed == 0 and recharge.car_state("s1")["tags"] == []


def test_reported_scooters_get_no_claim(recharge):
    for car_id, tag in (("s1", "scooter_missing"), ("s2", "scooter_destroyed")):
        recharge.car(car_id, level=20)
        requests.post(f"{recharge.base}/scooter_backend/tag/add", json={"car_id": car_id, "tag": tag}, timeout=5)
    report = recharge.find()
    assert report.listed == 0 and report.created == 0 and recharge.sent == []


def _waiting(recharge, claimed):
    recharge.follow()
    recharge.advance(claimed.claim_id, "performer_not_found")
    recharge.follow()
    [later] = _planned_again(recharge)
    clock.freeze(clock.now() + dt.timedelta(seconds=later.delay_seconds))
    return later.message


def test_a_waiting_task_whose_scooter_was_reported_is_given_up(recharge, claimed):
    message = _waiting(recharge, claimed)
    requests.post(f"{recharge.base}/scooter_backend/tag/add", json={"car_id": "s1", "tag": "scooter_missing"},
                  timeout=5)
    assert planner.plan(message) == "given_up"
    task = recharge.task(claimed.task_id)
    assert task.status == GIVEN_UP and task.reason == "scooter_reported" and task.sweep is None
    assert recharge.live_bookings() == [] and len(recharge.claims()) == 1
    assert "recharge_processing" not in recharge.car_state("s1")["tags"]
    # Found again (the missing tag gone): the poll starts a new recharge of it.
    requests.post(f"{recharge.base}/scooter_backend/tag/remove", json={"car_id": "s1", "tag": "scooter_missing"},
                  timeout=5)
    assert recharge.find().created == 1
    task = recharge.task(claimed.task_id)
    assert task.status == "new" and task.attempt == 1


def test_a_waiting_task_whose_scooter_was_charged_otherwise_is_given_up(recharge, claimed):
    message = _waiting(recharge, claimed)
    requests.post(f"{recharge.base}/scooter_backend/tag/remove", json={"car_id": "s1", "tag": "battery_low"},
                  timeout=5)
    assert planner.plan(message) == "given_up"
    assert recharge.task(claimed.task_id).reason == "charged_otherwise"
    assert recharge.car_state("s1")["tags"] == []  # rentable
