"""A licence's line state: one licence, several profiles, KRT told the licence's state; what moves it besides events
(regions, positions, bindings, profiles that change licence); re-checks bounded per run; the product metric."""
from __future__ import annotations

import datetime as dt

from chalicelib.core import clock, config
from chalicelib.deptrans.models import DriverProfile, LicenceLine
from tests.deptrans.conftest import BALASHIKHA, MOSCOW, PITER

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def states(dep, registry_id: str) -> list[str]:
    return [r["state"] for r in dep.reports() if r["id"] == registry_id]


def test_a_licence_is_on_line_while_any_of_its_profiles_is(dep):
    dep.online_driver("park1", "a", "7706000001", "ID6000001")
    dep.driver("park2", "b", licence="7706000001")  # the same driver in another park
    dep.events(("park1", "a", "online", at(0)))
    dep.send()
    dep.events(("park2", "b", "online", at(1)), ids=["b-on"])
    dep.send()
    dep.events(("park1", "a", "offline", at(2)), ids=["a-off"])
    dep.send()
    assert states(dep, "ID6000001") == ["on_line"]  # b is still on line in park2
    dep.events(("park2", "b", "offline", at(3)), ids=["b-off"])
    assert dep.send()["sent_off_line"] == 1
    assert states(dep, "ID6000001") == ["on_line", "off_line"]


def test_two_parks_with_an_older_off_line_arriving_last_end_on_line(dep):
    pd_id = dep.online_driver("park1", "a", "7706000002", "ID6000002")
    dep.driver("park2", "b", licence="7706000002")
    # All in one batch, the newest first; then a late, older off-line of b, in a run of its own.
    dep.events(("park2", "b", "online", at(5)), ("park1", "a", "offline", at(4)), ("park1", "a", "online", at(1)),
               ids=["b-on", "a-off", "a-on"])
    dep.send()
    dep.events(("park2", "b", "offline", at(2)), ids=["b-off-late"])
    dep.send()
    assert dep.last_states() == {"ID6000002": "on_line"}
    line = LicenceLine.get(pd_id)
    assert line.acked_state == "on_line" and line.acked_seq == 1


def test_leaving_every_region_while_on_line_sends_off_line_and_coming_back_on_line(dep):
    dep.online_driver("p1", "d1", "7706000003", "ID6000003")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    dep.move("p1", "d1", BALASHIKHA)
    assert dep.send()["sent_off_line"] == 1
    dep.move("p1", "d1", PITER)
    assert "sent_off_line" not in dep.send()
    dep.move("p1", "d1", MOSCOW)
    assert dep.send()["sent_on_line"] == 1
    assert states(dep, "ID6000003") == ["on_line", "off_line", "on_line"]


def test_a_lost_position_does_not_turn_a_reported_driver_off(dep):
    dep.online_driver("p1", "d1", "7706000004", "ID6000004")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    dep.move("p1", "d1", None)
    result = dep.send()
    assert "sent_off_line" not in result and result["supply_reported"] == 1
    assert states(dep, "ID6000004") == ["on_line"]


def test_a_new_id_bound_while_on_line_moves_krt_from_the_old_id_to_the_new(dep):
    dep.online_driver("p1", "d1", "7706000005", "ID6000005")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    dep.control("krt/ids", {"licence": "7706000005", "id": "ID6000055"})  # KRT re-issued the licence's ID
    assert dep.bind("p1", "d1", "ID6000055").status_code == 200
    result = dep.send()
    # Off line goes to the old ID first; KRT no longer knows it (404): nothing is on line there, so the
    # refusal counts as off, and on line goes to the new ID in the same run.
    assert result["rejected"] == 1 and result["sent_on_line"] == 1
    calls = [(c["body"]["id"], c["body"]["state"]) for c in dep.calls("krt") if c["path"] == "/api/v1/line-states"]
    assert calls == [("ID6000005", "on_line"), ("ID6000005", "off_line"), ("ID6000055", "on_line")]
    assert dep.last_states() == {"ID6000005": "on_line", "ID6000055": "on_line"}


def test_a_profile_moved_to_another_licence_leaves_the_old_one(dep, client):
    old = dep.online_driver("p1", "d1", "7706000006", "ID6000006")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    new = dep.online_driver("p9", "d9", "7706000007", "ID6000007")
    # p1/d1's profile now carries the other licence; driver-profiles tells the cache at its next refresh.
    dep.driver("p1", "d1", licence="7706000007")
    clock.freeze(clock.now() + dt.timedelta(hours=1))
    dep.events(("p1", "d1", "busy", at(10)), ids=["busy"])
    dep.send()
    assert states(dep, "ID6000006") == ["on_line", "off_line"]  # the old licence has nobody on line
    assert states(dep, "ID6000007") == ["on_line"]  # the profile's line went with it
    assert DriverProfile.get(old).profiles is None
    assert DriverProfile.get(new).profiles == {"p1/d1", "p9/d9"}
    # Both licences are in the ID feed as changed.
    changed = {i["licence_pd_id"]: i["profiles"] for i in _id_feed(client)}
    assert changed[old] == [] and {"park_id": "p1", "driver_id": "d1"} in changed[new]


def test_a_move_found_by_another_lookup_still_takes_the_line_out_of_the_old_licence(dep):
    dep.online_driver("p1", "d1", "7706000008", "ID6000008")
    dep.events(("p1", "d1", "online", at(0)))
    dep.send()
    dep.driver("p1", "d1", licence="7706000009", registry_id="ID6000009")
    # The ID route's fresh lookup finds the move (no status event comes): the profile's line follows it.
    assert dep.bind("p1", "d1", "ID6000009").status_code == 200
    dep.send()
    assert dep.last_states() == {"ID6000008": "off_line", "ID6000009": "on_line"}


def test_the_id_feed_lists_the_licences_profiles_from_the_cache(dep, client):
    dep.driver("p2", "other", licence="7706000010")
    dep.events(("p2", "other", "offline", at(0)))
    dep.send()  # the cache learns p2/other's licence before anything is bound
    pd_id = dep.online_driver("p1", "d1", "7706000010", "ID6000010")
    assert DriverProfile.get(pd_id).profiles == {"p1/d1", "p2/other"}


def test_rechecks_are_bounded_per_run_and_go_oldest_first(dep):
    for n in range(5):
        dep.online_driver("p1", f"d{n}", f"77061001{n:02d}", f"ID61001{n:02d}", position=PITER)
        dep.events(("p1", f"d{n}", "online", at(n)), ids=[f"e{n}"])
    assert dep.send()["waiting_region"] == 5
    config.write("deptrans_rechecks_per_run", 2)
    for n in range(5):
        dep.move("p1", f"d{n}", MOSCOW)
    sent = []
    for _ in range(3):
        clock.freeze(clock.now() + dt.timedelta(minutes=1))
        before = {r["id"] for r in dep.reports()}
        dep.send()
        sent.append(sorted({r["id"] for r in dep.reports()} - before))
    assert [len(batch) for batch in sent] == [2, 2, 1]
    assert sent[0] == ["ID6100100", "ID6100101"]  # checked longest ago first (their events came first)


def test_each_run_publishes_the_supply_krt_could_lose(dep, app_logs):
    import json

    dep.online_driver("p1", "ok", "7706000011", "ID6000011")
    dep.driver("p1", "unbound", licence="7706000012")
    dep.online_driver("p1", "nopos", "7706000013", "ID6000013", position=None)
    dep.online_driver("p1", "cargo", "7706000014", "ID6000014", categories=["cargo"])
    dep.online_driver("p1", "piter", "7706000015", "ID6000015", position=PITER)
    dep.events(*[("p1", d, "online", at(0)) for d in ("ok", "unbound", "nopos", "cargo", "piter")],
               ids=["a", "b", "c", "d", "e"])
    result = dep.send()
    assert (result["supply_on_line"], result["supply_reported"]) == (4, 1)  # Piter is not supply in the regions
    assert (result["supply_lost_no_id"], result["supply_lost_no_position"], result["supply_lost_category"]) == (1, 1, 1)
    line = json.loads(next(line for line in app_logs.lines if "deptrans.sender_run" in line))
    assert (line["SupplyOnLine"], line["SupplyReported"], line["SupplyLostNoId"], line["WaitingRegion"]) == (4, 1, 1, 1)
    assert {"Name": "SupplyLostCategory", "Unit": "Count"} in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]


def _id_feed(client) -> list[dict]:
    config.write("deptrans_feed_safety_seconds", 2)
    clock.freeze(clock.now() + dt.timedelta(seconds=5))
    items, cursor = [], None
    while True:
        answer = client.http.get("/deptrans-driver-status-integration/internal/v1/id/updates?limit=100"
                                 + (f"&cursor={cursor}" if cursor else ""))
        body = answer.json_body
        items += body["items"]
        cursor = body["cursor"]
        if not body["items"]:
            return items


def test_the_dashboard_charts_the_supply_metrics_the_sender_publishes(dep, app_logs):
    import json

    from deploy import ops

    dep.events(("p1", "nobody", "online", at(0)))
    dep.send()
    line = json.loads(next(line for line in app_logs.lines if "deptrans.sender_run" in line))
    published = {m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"] if m["Name"].startswith("Supply")}
    body = json.loads(ops.dashboard([], [], [])["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    [widget] = [w for w in body["widgets"] if "supply" in w["properties"]["title"]]
    charted = {m[1] for m in widget["properties"]["metrics"] if isinstance(m[0], str)}
    assert charted == published and len(published) == 6
    assert widget["properties"]["metrics"][0][0]["expression"] == "100 * (online - reported) / online"


def test_the_scheduled_handler_does_the_same_within_its_grants(dep, client):
    """Through the Lambda's handler (under `make unit` the access audit holds its calls to its IAM grants)."""
    dep.online_driver("p1", "d1", "7706000020", "ID6000020")
    dep.driver("p2", "d2", licence="7706000020")
    dep.events(("p1", "d1", "online", at(0)), ("p2", "d2", "online", at(1)), ids=["a", "b"])
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=["arn:aws:events:us-east-1:123456789012:rule/x"])
    result = client.lambda_.invoke("deptrans_status_sender", event).payload
    assert result["sent_on_line"] == 1 and result["supply_reported"] == 1
    dep.events(("p1", "d1", "offline", at(2)), ("p2", "d2", "offline", at(3)), ids=["c", "d"])
    assert client.lambda_.invoke("deptrans_status_sender", event).payload["sent_off_line"] == 1
    assert dep.last_states() == {"ID6000020": "off_line"}
