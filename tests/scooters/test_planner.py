"""Plan a recharge: depots by distance, availability, the algorithm, booking (race -> next cabinet), the claim,
reschedules (with delays beyond SQS's 15 minutes), and replays that book and claim nothing twice."""
from __future__ import annotations

import datetime as dt
import logging

import pytest

from chalicelib.core import clock
from chalicelib.core.errors import UpstreamUnavailable
from chalicelib.scooters.recharge import lifecycle, planner
from chalicelib.scooters.recharge.attempts import claim_request_id
from chalicelib.scooters.recharge.lifecycle import BOOKED, CLAIMED, WAITING
from chalicelib.scooters.recharge.schemas import PlanMessage

from .conftest import CAR_POSITION, DEPOT_NEAR

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def found(recharge):
    """A discharged scooter found: its task id (its first planning message is due)."""
    clock.freeze(T0)
    recharge.car("s1", level=20)
    recharge.find()
    return recharge.sent[0].message.task_id


def _waiting(recharge):
    delayed = [s for s in recharge.sent if s.delay_seconds > 0]
    recharge.sent = [s for s in recharge.sent if s.delay_seconds == 0]
    return delayed


def test_the_nearest_cabinet_is_booked_and_the_claim_created(recharge, found):
    assert recharge.plan_due() == [CLAIMED]
    task = recharge.task(found)
    assert (task.status, task.store_id, task.cabinet_id) == (CLAIMED, "grocery:near", "cab-near")
    [booking] = recharge.live_bookings()
    assert booking["book_id"] == task.book_id and task.cell_ids == booking["cell_ids"]
    [claim] = recharge.claims()
    assert task.claim_id == claim["id"] and task.claim_version == 1
    body = claim["body"]
    [item] = body["items"]
    assert item["extra_id"] == found and item["quantity"] == 1 and item["weight"] > 0 and item["size"]["length"] > 0
    points = body["route_points"]
    assert [p["type"] for p in points] == ["source", "destination", "return"]
    assert item["pickup_point"] == points[0]["point_id"] and item["dropoff_point"] == points[1]["point_id"]
    assert points[0]["address"]["coordinates"] == DEPOT_NEAR["position"] == points[2]["address"]["coordinates"]
    assert points[1]["address"]["coordinates"] == CAR_POSITION  # [lon, lat]
    assert points[1]["external_order_id"] == found
    assert all(p["skip_confirmation"] is True for p in points)  # no SMS codes
    # Point ids as the claim reports them.
    assert task.point_ids.as_dict() == {p["type"]: str(p["point_id"]) for p in points}
    assert claim["request_id"] == claim_request_id(task)
    assert task.sweep is None and task.due_at is None


def test_a_cabinet_without_batteries_is_passed_over(recharge, found):
    recharge.cabinet("grocery:near", "cab-near", 0)
    recharge.plan_due()
    assert recharge.task(found).cabinet_id == "cab-far"


def test_only_depots_in_range_are_asked(recharge, found):
    recharge.plan_due()
    [ask] = [c for c in recharge.calls("scooter_accumulator") if c["path"].endswith("available_for_booking")]
    assert ask["body"]["store_ids"] == ["grocery:near", "garage:far"]  # sorted by distance, the other city left out


def test_the_walk_limit_narrows_the_range(recharge, found):
    # 60 min at 5 km/h is 5 km; 15 min is 1.25 km: only the near depot (0.3 km), not the far one (1.5 km).
    recharge.algorithm({"method": "nearest_with_available_acc", "params": {"max_distance_km": 20, "max_walk_min": 15}})
    recharge.cabinet("grocery:near", "cab-near", 0)
    assert recharge.plan_due() == ["no_cabinet"]


def test_no_cabinet_in_range_reschedules_not_drops(recharge, found):
    recharge.depots({"store_id": "grocery:away", "position": [30.3141, 59.9386]})
    assert recharge.plan_due() == ["no_cabinet"]
    task = recharge.task(found)
    assert task.status == WAITING and task.reason == "no_cabinet" and task.attempt == 1
    assert task.not_before == T0 + dt.timedelta(seconds=600)
    [later] = _waiting(recharge)
    assert later.delay_seconds == 600 and later.message.not_before == int(task.not_before.timestamp())
    assert recharge.live_bookings() == [] and recharge.claims() == []
    # Depots come back in range: the next try plans it.
    recharge.depots(DEPOT_NEAR)
    recharge.cabinet("grocery:near", "cab-near", 1)
    clock.advance(seconds=600)
    assert planner.plan(later.message) == CLAIMED


def test_repeated_failures_back_off(recharge, found):
    recharge.depots()
    recharge.plan_due()
    first = _waiting(recharge)[0]
    clock.advance(seconds=first.delay_seconds)
    planner.plan(first.message)
    _waiting(recharge)
    assert recharge.task(found).not_before == clock.now() + dt.timedelta(seconds=2 * first.delay_seconds)
    assert recharge.task(found).failures == 2


def test_a_delay_beyond_fifteen_minutes_hops(recharge, found):
    from chalicelib.core import config

    config.write("scooters_recharge_retry_delays", {"no_cabinet": 3600})
    recharge.depots()
    recharge.plan_due()
    [hop] = _waiting(recharge)
    assert hop.delay_seconds == 900 and hop.message.not_before == int((T0 + dt.timedelta(hours=1)).timestamp())
    clock.advance(seconds=900)
    assert planner.plan(hop.message) == "not_yet"
    [hop2] = _waiting(recharge)
    assert hop2.delay_seconds == 900 and hop2.message.not_before == hop.message.not_before
    recharge.depots(DEPOT_NEAR)
    clock.advance(seconds=2700)
    assert planner.plan(hop2.message) == CLAIMED


def test_a_booking_race_moves_to_the_next_cabinet(recharge, found):
    recharge.control("scooter_accumulator/race", {"cabinet_id": "cab-near"})
    assert recharge.plan_due() == [CLAIMED]
    task = recharge.task(found)
    assert task.cabinet_id == "cab-far"
    assert [b["cabinet_id"] for b in recharge.live_bookings() if b["book_id"] == task.book_id] == ["cab-far"]


def test_every_cabinet_lost_to_races_is_no_cabinet(recharge, found):
    recharge.control("scooter_accumulator/race", {"cabinet_id": "cab-near"})
    recharge.control("scooter_accumulator/race", {"cabinet_id": "cab-far"})
    assert recharge.plan_due() == ["no_cabinet"]
    assert recharge.task(found).cabinet_id is None


def test_an_unknown_method_is_a_configuration_error(recharge, found, caplog):
    recharge.algorithm({"method": "cheapest", "params": {}})
    with caplog.at_level(logging.CRITICAL):
        assert recharge.plan_due() == ["config_error"]
    assert any(r.levelno == logging.CRITICAL and r.getMessage() == "scooters.unknown_recharge_algorithm"
               for r in caplog.records)
    task = recharge.task(found)
    assert task.status == WAITING and task.reason == "config_error"
    assert not [c for c in recharge.calls("scooter_accumulator")]


def test_the_algorithm_is_an_experiment_per_scooter(recharge, found):
    recharge.algorithm({"clauses": [{"title": "s1 tries a new method", "predicate": {"eq": {"car_id": "s1"}},
                                     "value": {"method": "future_method", "params": {}}}],
                        "default": {"method": "nearest_with_available_acc", "params": {}}})
    assert recharge.plan_due() == ["config_error"]


def test_a_replayed_message_books_and_claims_once(recharge, found):
    message = recharge.sent[0].message
    recharge.plan_due()
    assert planner.plan(message) == "already_planned"
    assert len(recharge.live_bookings()) == 1 and len(recharge.claims()) == 1


def test_a_crash_after_booking_replays_into_the_same_booking(recharge, found, monkeypatch):
    message = recharge.sent[0].message
    original_move = lifecycle.move
    crashed = []

    def crash_after_booking(task, event, actions=(), condition=None):
        if event == lifecycle.BOOK and not crashed:  # the write that stores the booking
            crashed.append(True)
            raise RuntimeError("the Lambda died")
        return original_move(task, event, actions, condition)

    monkeypatch.setattr(lifecycle, "move", crash_after_booking)
    with pytest.raises(RuntimeError):
        planner.plan(message)
    assert recharge.task(found).status == "booking"
    assert planner.plan(message) == CLAIMED
    assert len(recharge.live_bookings()) == 1 and len(recharge.claims()) == 1


def test_a_crash_after_the_claim_replays_into_the_same_claim(recharge, found, monkeypatch):
    message = recharge.sent[0].message
    original = planner.upstreams.create_claim
    answers = []

    def create_then_die(request_id, body):
        answers.append(original(request_id, body))
        if len(answers) == 1:
            raise RuntimeError("the Lambda died after cargo answered")
        return answers[-1]

    monkeypatch.setattr(planner.upstreams, "create_claim", create_then_die)
    with pytest.raises(RuntimeError):
        planner.plan(message)
    assert recharge.task(found).status == BOOKED
    assert planner.plan(message) == CLAIMED
    assert answers[0].id == answers[1].id and len(recharge.claims()) == 1
    assert len(recharge.live_bookings()) == 1


def test_a_lost_booking_answer_is_found_again_with_the_same_token(recharge, found, monkeypatch):
    original = planner.upstreams.book

    def book_then_lose(cabinet_id, token):
        original(cabinet_id, token)
        raise UpstreamUnavailable("the answer was lost")

    monkeypatch.setattr(planner.upstreams, "book", book_then_lose)
    assert recharge.plan_due() == ["upstream_unavailable"]
    task = recharge.task(found)
    assert task.status == WAITING and task.cabinet_id == "cab-near" and task.attempt == 1
    monkeypatch.setattr(planner.upstreams, "book", original)
    [later] = _waiting(recharge)
    clock.advance(seconds=later.delay_seconds)
    assert planner.plan(later.message) == CLAIMED
    assert len(recharge.live_bookings()) == 1


def test_the_cabinets_service_down_reschedules(recharge, found):
    recharge.fault("scooter_accumulator", count=None)
    assert recharge.plan_due() == ["upstream_unavailable"]
    task = recharge.task(found)
    assert task.status == WAITING and task.reason == "upstream_unavailable" and task.attempt == 1


def test_cargo_down_unbooks_and_reschedules_then_plans_again(recharge, found):
    recharge.fault("cargo", count=None)
    assert recharge.plan_due() == ["cargo_unavailable"]
    task = recharge.task(found)
    assert task.status == WAITING and task.attempt == 2 and task.book_id is None
    assert recharge.live_bookings() == []  # the battery went back
    creates = [c for c in recharge.calls("cargo") if c["path"].endswith("/create")]
    assert len(creates) == 3 and len({c["query"]["request_id"] for c in creates}) == 1  # retried, one token
    assert task.previous_attempt_key  # cargo may have made the claim: the next attempt asks with that token first
    recharge.control("faults", {"upstream": "cargo", "mode": "ok"})
    [later] = _waiting(recharge)
    assert later.message.attempt == 2
    clock.advance(seconds=later.delay_seconds)
    assert planner.plan(later.message) == CLAIMED
    # Nothing was made under the first token: its replay made the one claim (from this attempt's booking).
    [claim] = recharge.claims()
    assert claim["request_id"] == creates[0]["query"]["request_id"]
    task = recharge.task(found)
    assert task.claim_id == claim["id"] and task.previous_attempt_key is None


def test_an_unbook_that_fails_is_retried_before_the_next_plan(recharge, found, monkeypatch):
    recharge.fault("cargo", count=None)
    monkeypatch.setattr(planner.upstreams, "unbook", lambda book_id: (_ for _ in ()).throw(UpstreamUnavailable("x")))
    recharge.plan_due()
    task = recharge.task(found)
    assert task.pending_unbook_ids and len(recharge.live_bookings()) == 1
    monkeypatch.undo()
    recharge.control("faults", {"upstream": "cargo", "mode": "ok"})
    for later in _waiting(recharge):
        clock.advance(seconds=later.delay_seconds)
        planner.plan(later.message)
    task = recharge.task(found)
    assert task.status == CLAIMED and not task.pending_unbook_ids
    assert [b["book_id"] for b in recharge.live_bookings()] == [task.book_id]


def test_stale_and_unknown_messages_do_nothing(recharge, found):
    assert planner.plan(PlanMessage(task_id=found, attempt=7)) == "stale"
    assert planner.plan(PlanMessage(task_id="nope/tag", attempt=1)) == "no_task"
    assert recharge.live_bookings() == []


def test_the_queue_handler_plans_and_fails_bad_messages_alone(recharge, found, client):
    from tests.conftest import failed_ids, sqs_event

    event = sqs_event(client, "scooters_misc_recharge", [{"task_id": found, "attempt": 1}])
    assert failed_ids(client.lambda_.invoke("scooters_misc_recharge", event).payload) == []
    assert recharge.task(found).status == CLAIMED
    bad = sqs_event(client, "scooters_misc_recharge", [{"task": 1}], ids=["bad-1"])
    assert failed_ids(client.lambda_.invoke("scooters_misc_recharge", bad).payload) == ["bad-1"]


def test_cargo_gets_the_stage_token_from_ssm(recharge, found, monkeypatch):
    from chalicelib.core import aws, http
    from chalicelib.scooters.recharge import upstreams

    aws.client("ssm").put_parameter(Name="/taxi-delivery/test/cargo-token", Value="secret-token",
                                    Type="SecureString")
    monkeypatch.setenv("CARGO_TOKEN_PARAMETER", "/taxi-delivery/test/cargo-token")
    upstreams.CARGO_TOKEN.forget()
    seen = []
    original = http.call_json

    def spy(upstream, method, path, **kwargs):
        seen.append((upstream, (kwargs.get("headers") or {}).get("Authorization")))
        return original(upstream, method, path, **kwargs)

    monkeypatch.setattr(http, "call_json", spy)
    assert recharge.plan_due() == [CLAIMED]
    assert {auth for upstream, auth in seen if upstream == "cargo"} == {"Bearer secret-token"}
    assert {auth for upstream, auth in seen if upstream != "cargo"} == {None}
    upstreams.CARGO_TOKEN.forget()


def test_a_missing_cargo_token_is_cargo_unavailable(recharge, found, monkeypatch):
    from chalicelib.scooters.recharge import upstreams

    monkeypatch.setenv("CARGO_TOKEN_PARAMETER", "/taxi-delivery/test/missing")
    upstreams.CARGO_TOKEN.forget()
    assert recharge.plan_due() == ["cargo_unavailable"]
    assert recharge.live_bookings() == [] and recharge.claims() == []
