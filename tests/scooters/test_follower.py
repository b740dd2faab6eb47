"""Follow the claims: the journal's cursor, dedupe by revision, claims not ours, each status's reaction."""
from __future__ import annotations

import logging

from chalicelib.scooters.recharge import follower, lifecycle, reactions
from chalicelib.scooters.recharge.lifecycle import DONE, PERFORMER_FOUND, RENTABLE, WAITING
from chalicelib.scooters.recharge.models import JournalCursor

PERFORMER = ("park-1", "driver-1")


def _backend_calls(recharge):
    return [(c["path"], (c["body"] or {}).get("tag")) for c in recharge.calls("scooter_backend")
            if c["method"] == "POST"]


def _to_performer_found(recharge, claimed):
    recharge.follow()  # new, ready_for_approval -> accepted, performer_lookup
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    recharge.follow()


def test_ready_for_approval_is_accepted_with_the_claims_version(recharge, claimed):
    recharge.advance(claimed.claim_id, "ready_for_approval")  # a second estimation: version 1 still
    report = recharge.follow()
    [claim] = recharge.claims()
    assert claim["status"] == "performer_lookup"
    accepts = [c for c in recharge.calls("cargo") if c["path"].endswith("/accept")]
    assert accepts and all(c["body"] == {"version": 1} for c in accepts)
    assert report.handled >= 4 and recharge.task(claimed.task_id).claim_status == "performer_lookup"


def test_accept_uses_the_version_the_claim_has_now(recharge, claimed):
    recharge.control(f"cargo/claims/{claimed.claim_id}/advance", {"status": "ready_for_approval", "version": 3})
    recharge.follow()
    accepts = [c["body"]["version"] for c in recharge.calls("cargo") if c["path"].endswith("/accept")]
    assert accepts == [3] and recharge.claims()[0]["status"] == "performer_lookup"


def test_the_whole_claim_back_to_rent(recharge, claimed):
    _to_performer_found(recharge, claimed)
    task = recharge.task(claimed.task_id)
    assert task.status == PERFORMER_FOUND
    assert (task.performer_park_id, task.performer_driver_profile_id) == PERFORMER
    [booking] = recharge.live_bookings()
    assert booking["contractor_id"] == "park-1_driver-1"
    car = recharge.car_state("s1")
    assert car["servicing"][task.tag_id]["status"] == "started"
    assert car["servicing"][task.tag_id]["details"]["performer"] == {"park_id": "park-1", "driver_profile_id": "driver-1"}

    a, b, c = claimed.points["source"], claimed.points["destination"], claimed.points["return"]
    recharge.advance(claimed.claim_id, "pickup_arrived", current_point_id=a)
    recharge.advance(claimed.claim_id, "pickuped", current_point_id=b)  # heading to the scooter
    recharge.advance(claimed.claim_id, "delivery_arrived", current_point_id=b)
    recharge.follow()
    task = recharge.task(claimed.task_id)
    assert task.claim_status == "delivery_arrived" and task.current_point_id == str(b)
    assert {"battery_low", "recharge_processing"} <= set(recharge.car_state("s1")["tags"])  # not yet

    before = len(recharge.calls("scooter_backend"))
    recharge.advance(claimed.claim_id, "pickuped", current_point_id=c)  # swapped, heading back to the cabinet
    recharge.follow()
    assert recharge.task(claimed.task_id).status == RENTABLE
    car = recharge.car_state("s1")
    assert car["tags"] == [] and car["servicing"][task.tag_id]["status"] == "finished"
    order = [(x["path"], (x["body"] or {}).get("tag")) for x in recharge.calls("scooter_backend")[before:]
             if x["method"] == "POST"]
    assert order == [("/tag/remove", "battery_low"), ("/servicing/finish", None),
                     ("/tag/remove", "recharge_processing")]

    recharge.advance(claimed.claim_id, "delivery_arrived", current_point_id=c)
    recharge.advance(claimed.claim_id, "delivered", current_point_id=c)
    recharge.follow()
    assert recharge.task(claimed.task_id).status == DONE
    assert recharge.bookings()[task.book_id]["contractor_id"] is None


def test_repeated_events_are_handled_once(recharge, claimed):
    _to_performer_found(recharge, claimed)
    c = claimed.points["return"]
    recharge.advance(claimed.claim_id, "pickuped", current_point_id=c)
    recharge.follow()
    calls = len(recharge.calls("scooter_backend"))
    recharge.control("cargo/journal/repeat", {"count": 3})
    report = recharge.follow()
    assert report.duplicates == 3 and report.handled == 0
    assert len(recharge.calls("scooter_backend")) == calls


def test_claims_not_ours_are_ignored(recharge, claimed):
    import requests

    body = {"items": [{"title": "x", "quantity": 1, "pickup_point": 1, "extra_id": "theirs"}],
            "route_points": [{"point_id": p, "type": t, "address": {"coordinates": [37.6, 55.7]}}
                             for p, t in ((1, "source"), (2, "destination"))]}
    requests.post(f"{recharge.base}/cargo/b2b/cargo/integration/v2/claims/create?request_id=other", json=body, timeout=5)
    report = recharge.follow()
    assert report.not_ours == 2
    accepts = [x for x in recharge.calls("cargo") if x["path"].endswith("/accept")]
    assert [x["query"]["claim_id"] for x in accepts] == [claimed.claim_id]


def test_the_cursor_is_kept_and_moves_only_after_its_events(recharge, claimed):
    recharge.follow()
    saved = JournalCursor.get(follower.CURSOR_NAME).cursor
    assert saved
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    recharge.fault("cargo", count=3)  # claims/info fails (with its retries): the event cannot be handled
    report = recharge.follow()
    assert report.failed == 1 and JournalCursor.get(follower.CURSOR_NAME).cursor == saved
    assert recharge.task(claimed.task_id).status != PERFORMER_FOUND
    report = recharge.follow()
    assert recharge.task(claimed.task_id).status == PERFORMER_FOUND
    assert JournalCursor.get(follower.CURSOR_NAME).cursor != saved
    assert recharge.follow().events == 0  # nothing new: the same cursor, no events


def test_the_journal_down_keeps_the_cursor(recharge, claimed):
    recharge.fault("cargo", count=None)
    report = recharge.follow()
    assert report.failed == 1 and report.pages == 0
    assert JournalCursor.count() == 0


def test_a_poison_event_is_skipped_after_a_few_runs(recharge, claimed, monkeypatch, caplog):
    recharge.follow()
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    recharge.advance(claimed.claim_id, "pickup_arrived", current_point_id=claimed.points["source"])
    original = reactions.REACTIONS[lifecycle.TAKE_PERFORMER]

    def broken_on_that_event(task, event, claim):
        if event.new_status == "performer_found":
            raise ValueError("a bug")
        return original(task, event, claim)

    monkeypatch.setitem(reactions.REACTIONS, lifecycle.TAKE_PERFORMER, broken_on_that_event)
    for _ in range(follower.POISON_RUNS - 1):
        assert recharge.follow().handled == 0
    with caplog.at_level(logging.CRITICAL):
        report = recharge.follow()
    assert report.poison_skipped == 1 and report.handled == 1  # pickup_arrived went through
    assert any(r.getMessage() == "scooters.event_skipped" for r in caplog.records)
    # pickup_arrived implies a performer: it was taken first (the skipped performer_found healed by the next event).
    task = recharge.task(claimed.task_id)
    assert task.claim_status == "pickup_arrived" and task.status == PERFORMER_FOUND
    assert (task.performer_park_id, task.performer_driver_profile_id) == PERFORMER


def test_an_upstream_outage_stops_the_run_without_counting(recharge, claimed):
    """Five minutes (and more) of cargo failing never make an event poison: nothing is skipped."""
    recharge.follow()
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    recharge.fault("scooter_accumulator", count=None, status=503)  # set_contractor fails
    for _ in range(follower.POISON_RUNS + 2):
        report = recharge.follow()
        assert report.poison_skipped == 0 and report.handled == 0 and report.transient == 1
    recharge.fault("scooter_backend", count=None, status=429)  # car/details fails
    recharge.control("faults", {"upstream": "scooter_accumulator", "mode": "ok"})
    for _ in range(follower.POISON_RUNS + 2):
        report = recharge.follow()
        assert report.poison_skipped == 0 and report.transient == 1
    assert JournalCursor.get(follower.CURSOR_NAME).blocked_runs is None
    recharge.control("faults", {"upstream": "scooter_backend", "mode": "ok"})
    assert recharge.follow().handled == 1
    assert recharge.task(claimed.task_id).status == PERFORMER_FOUND


def _dropped(recharge, claimed, status, caplog):
    recharge.follow()
    with caplog.at_level(logging.INFO):
        recharge.advance(claimed.claim_id, status)
        recharge.follow()
    task = recharge.task(claimed.task_id)
    assert task.status == WAITING and task.book_id is None and task.attempt == 2
    # The claim stays on the task, closed (its former courier is told so), until the next attempt's replaces it.
    assert task.claim_id == claimed.claim_id and task.claim_outcome == status and task.live_claim is None
    assert recharge.live_bookings() == []
    delayed = [s for s in recharge.sent if s.delay_seconds > 0]
    assert [s.message.attempt for s in delayed] == [2]
    return [r for r in caplog.records if r.levelno >= logging.CRITICAL]


def test_failed_unbooks_drops_the_claim_reschedules_and_crits(recharge, claimed, caplog):
    crits = _dropped(recharge, claimed, "failed", caplog)
    assert [r.getMessage() for r in crits] == ["scooters.claim_failed"]
    assert getattr(crits[0], "fields", {}).get("crit") is True
    # Later events of the dropped claim change nothing: the lifecycle has no move for them in `waiting`.
    before = len(recharge.calls("scooter_accumulator"))
    recharge.advance(claimed.claim_id, "performer_found", performer=PERFORMER)
    assert recharge.follow().handled == 0
    task = recharge.task(claimed.task_id)
    assert task.status == WAITING and task.performer_park_id is None
    assert len(recharge.calls("scooter_accumulator")) == before


def test_performer_not_found_unbooks_and_reschedules_quietly(recharge, claimed, caplog):
    assert _dropped(recharge, claimed, "performer_not_found", caplog) == []


def test_estimating_failed_crits_and_releases(recharge, claimed, caplog):
    crits = _dropped(recharge, claimed, "estimating_failed", caplog)
    assert [r.getMessage() for r in crits] == ["scooters.claim_estimating_failed"]


def test_a_dropped_claim_is_planned_again_into_a_new_claim(recharge, claimed, caplog):
    from chalicelib.core import clock
    from chalicelib.scooters.recharge import planner

    _dropped(recharge, claimed, "performer_not_found", caplog)
    [later] = [s for s in recharge.sent if s.delay_seconds > 0]
    clock.freeze(clock.now() + __import__("datetime").timedelta(seconds=3600))
    assert planner.plan(later.message) == "claimed"
    claims = recharge.claims()
    assert len(claims) == 2 and claims[0]["request_id"] != claims[1]["request_id"]
    assert recharge.task(claimed.task_id).claim_id == claims[1]["id"]


def test_a_final_status_without_the_second_pickuped_still_frees_the_scooter(recharge, claimed):
    _to_performer_found(recharge, claimed)
    recharge.advance(claimed.claim_id, "returned_finish", current_point_id=claimed.points["return"])
    recharge.follow()
    assert recharge.task(claimed.task_id).status == DONE
    assert recharge.car_state("s1")["tags"] == []


def test_returning_is_the_walk_back_too(recharge, claimed):
    _to_performer_found(recharge, claimed)
    recharge.advance(claimed.claim_id, "delivered", current_point_id=claimed.points["destination"])
    recharge.follow()
    assert recharge.task(claimed.task_id).status == PERFORMER_FOUND  # B delivered: not the end
    recharge.advance(claimed.claim_id, "returning", current_point_id=claimed.points["return"])
    recharge.follow()
    assert recharge.task(claimed.task_id).status == RENTABLE and recharge.car_state("s1")["tags"] == []
    recharge.advance(claimed.claim_id, "returned_finish", current_point_id=claimed.points["return"])
    recharge.follow()
    assert recharge.task(claimed.task_id).status == DONE


def test_a_scooter_reported_missing_is_released_but_not_counted_back_in_rent(recharge, claimed, caplog):
    import requests

    _to_performer_found(recharge, claimed)
    requests.post(f"{recharge.base}/scooter_backend/tag/add", json={"car_id": "s1", "tag": "scooter_missing"},
                  timeout=5)  # the courier's vehicle_not_found
    recharge.advance(claimed.claim_id, "pickuped", current_point_id=claimed.points["return"])
    with caplog.at_level(logging.INFO):
        recharge.follow()
    events = [r.getMessage() for r in caplog.records]
    assert "scooters.scooter_released_reported" in events and "scooters.scooter_rentable" not in events
    # The doc: the flow goes on as if the battery were swapped; the report's own tag keeps it out of rent.
    assert recharge.car_state("s1")["tags"] == ["scooter_missing"]


def test_what_counts_towards_poison():
    """Only a failure of the event itself counts; one that would pass later without a fix stops the run only."""
    from botocore.exceptions import ClientError, EndpointConnectionError
    from pynamodb.exceptions import DoesNotExist, UpdateError

    from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable

    throttled = UpdateError("x", cause=ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem"))
    unreachable = UpdateError("x", cause=EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    invalid = UpdateError("x", cause=ClientError({"Error": {"Code": "ValidationException"}}, "UpdateItem"))
    for error in (UpstreamUnavailable("cargo 503"), UpstreamUnavailable("timeout"), throttled, unreachable,
                  follower.ClaimNotStoredYet("soon"), reactions.RaceLost("moving")):
        assert follower.is_transient(error), error
    for error in (ValueError("a bug"), UpstreamRejected("400", upstream_status=400), invalid, DoesNotExist()):
        assert not follower.is_transient(error), error
