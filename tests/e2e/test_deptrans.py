"""Deptrans on the deployed local stack: bind a registry ID, stream status events through SQS, see them reach
the simulated KRT (DeptransStatusSender, fired as `make fire FN=DeptransStatusSender` does) and come back out of
the status feed. What cannot be sent when it arrives is sent once it can (a position appears, an ID is bound);
a licence with profiles in two parks ends where its newest events put it; a KRT outage loses nothing.

The minute schedule also runs the sender on its own: the tests fire it and then watch what KRT got, so it does
not matter which run did the work (one runner at a time: a fired run may find the lease taken).
"""
from __future__ import annotations

import datetime as dt
import random
import time

import pytest
import requests

QUEUE = "deptrans_contractor_status_events"
SENDER = "DeptransStatusSender"
ID_PATH = "/driver/v1/deptrans-status/v1/id"
STATUS_FEED = "/deptrans-driver-status-integration/internal/v1/status/updates"
ID_FEED = "/deptrans-driver-status-integration/internal/v1/id/updates"
MOSCOW = [37.6173, 55.7558]


@pytest.fixture(scope="module")
def deptrans(stack):
    stack.put_config("deptrans_feed_safety_seconds", 2)
    stack.put_config("deptrans_sender_concurrency", 8)
    time.sleep(1.5)  # CONFIG_CACHE_SECONDS is 1 in the local stage
    return stack


def krt_reports(stack, ids: set[str]) -> list[dict]:
    answer = requests.get(f"{stack.simulator}/_control/krt/reports", timeout=5).json()["reports"]
    return [r for r in answer if r["id"] in ids]


def krt_states(stack, registry_id: str) -> list[str]:
    answer = requests.get(f"{stack.simulator}/_control/krt/reports", params={"id": registry_id}, timeout=5).json()
    return [r["state"] for r in answer["by_id"].get(registry_id, [])]


def krt_line_calls(stack, ids: set[str]) -> list[dict]:
    calls = requests.get(f"{stack.simulator}/_control/calls", params={"upstream": "krt"}, timeout=5).json()["calls"]
    return [c for c in calls if c["path"] == "/api/v1/line-states" and (c["body"] or {}).get("id") in ids]


class Driver:
    def __init__(self, stack, driver_auth, position=MOSCOW, licence: str | None = None):
        self.stack = stack
        self.park, self.driver = stack.unique("park"), stack.unique("drv")
        self.licence = licence or "77" + "".join(random.choice("0123456789") for _ in range(10))
        self.registry_id = "E2E" + "".join(random.choice("0123456789ABCDEF") for _ in range(12))
        self.headers = driver_auth(self.park, self.driver)
        answer = stack.simulator_control("drivers", {"park_id": self.park, "driver_id": self.driver,
                                                     "licence": self.licence, "categories": ["econom"],
                                                     "position": position})
        self.pd_id = answer["licence_pd_id"]
        if licence is None:
            stack.simulator_control("krt/ids", {"licence": self.licence, "id": self.registry_id})

    def bound(self) -> bool:
        answer = self.stack.get(ID_PATH, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["bound"]

    def bind(self, registry_id: str | None = None) -> requests.Response:
        return self.stack.post(ID_PATH, {"id": registry_id or self.registry_id}, headers=self.headers)

    def event(self, status: str, at: dt.datetime) -> dict:
        return {"park_id": self.park, "driver_id": self.driver, "status": status, "updated_at": at.isoformat()}

    def move(self, position) -> None:
        self.stack.simulator_control(f"drivers/{self.park}/{self.driver}/position", {"position": position})


def queued(stack, driver: Driver, status: str) -> bool:
    item = stack.client("dynamodb").get_item(
        TableName="deptrans_status_queue", Key={"driver_key": {"S": f"{driver.park}/{driver.driver}"}},
        ConsistentRead=True).get("Item")
    return bool(item) and item["status"]["S"] == status


def stream(stack, *pairs: tuple[Driver, dict]) -> None:
    """Send events through SQS and wait until the consumer applied them (each driver's newest is listed last)."""
    stack.send_batch(QUEUE, [event for _, event in pairs])
    newest = {id(driver): (driver, event["status"]) for driver, event in pairs}
    stack.wait_until(lambda: all(queued(stack, d, status) for d, status in newest.values()), timeout=30,
                     what="events applied")


def fire_until(stack, check, what: str, timeout: float = 60):
    """Run the sender now (again while another run holds the lease) until `check` holds."""
    def attempt():
        stack.fire_schedule(SENDER)
        return check()
    return stack.wait_until(attempt, timeout=timeout, interval=1.0, what=what)


def fire_runs(stack, count: int = 2) -> None:
    """Let at least one full sender run happen (a fired run may find the lease held by the minute schedule)."""
    for _ in range(count):
        stack.fire_schedule(SENDER)
        time.sleep(1)


def read_feed(stack, path: str, cursor: str | None = None) -> tuple[list[dict], str | None]:
    items = []
    for _ in range(500):
        page = stack.get(path, params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["cursor"]
        if not body["items"]:
            break
    return items, cursor


def test_bind_stream_send_and_read_back_from_the_status_feed(deptrans, driver_auth):
    stack = deptrans
    driver = Driver(stack, driver_auth)
    assert driver.bound() is False
    mismatch = driver.bind("WRONG00001")
    assert mismatch.status_code == 400 and mismatch.json()["code"] == "id_mismatch"
    answer = driver.bind()
    assert answer.status_code == 200 and answer.json() == {"bound": True}
    assert driver.bound() is True
    assert driver.registry_id not in answer.text

    now = dt.datetime.now(dt.timezone.utc)
    stream(stack, (driver, driver.event("online", now)), (driver, driver.event("busy", now + dt.timedelta(seconds=1))))
    fire_until(stack, lambda: krt_states(stack, driver.registry_id), "KRT got the on-line flip")
    stream(stack, (driver, driver.event("offline", now + dt.timedelta(seconds=2))))
    fire_until(stack, lambda: len(krt_states(stack, driver.registry_id)) == 2, "KRT got the off-line flip")
    assert krt_states(stack, driver.registry_id) == ["on_line", "off_line"]  # busy was no flip

    # The feed has the licence once, with KRT's latest answer.
    def from_feed():
        rows = [i for i in read_feed(stack, STATUS_FEED)[0] if i["licence_pd_id"] == driver.pd_id]
        return rows if rows and rows[-1]["line_state"] == "off_line" else None

    rows = stack.wait_until(from_feed, timeout=30, interval=1.0, what="the licence's status in the feed")
    assert [(r["line_state"], r["session_status"]) for r in rows] == [("off_line", "paused")]
    assert rows[0]["park_id"] == driver.park and rows[0]["driver_id"] == driver.driver

    bad = stack.get(STATUS_FEED, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"
    assert stack.get(ID_FEED, params={"limit": 0}).status_code == 400


def test_no_position_then_a_position_sends_on_line(deptrans, driver_auth):
    stack = deptrans
    driver = Driver(stack, driver_auth, position=None)
    assert driver.bind().status_code == 200
    stream(stack, (driver, driver.event("online", dt.datetime.now(dt.timezone.utc))))
    fire_runs(stack)
    assert krt_states(stack, driver.registry_id) == []  # nowhere to be seen: it waits
    driver.move(MOSCOW)
    fire_until(stack, lambda: krt_states(stack, driver.registry_id) == ["on_line"], "on_line once he has a position")


def test_bound_while_on_line_sends_on_line(deptrans, driver_auth):
    stack = deptrans
    driver = Driver(stack, driver_auth)
    stream(stack, (driver, driver.event("online", dt.datetime.now(dt.timezone.utc))))
    fire_runs(stack)
    assert krt_states(stack, driver.registry_id) == []  # no ID bound: it waits
    assert driver.bind().status_code == 200
    fire_until(stack, lambda: krt_states(stack, driver.registry_id) == ["on_line"], "on_line once bound")


def test_two_parks_with_an_older_off_line_arriving_last_end_on_line(deptrans, driver_auth):
    stack = deptrans
    first = Driver(stack, driver_auth)
    second = Driver(stack, driver_auth, licence=first.licence)  # the same licence, another park
    assert second.pd_id == first.pd_id and first.bind().status_code == 200
    now = dt.datetime.now(dt.timezone.utc)
    stream(stack, (first, first.event("online", now)), (second, second.event("online", now + dt.timedelta(seconds=2))))
    fire_until(stack, lambda: krt_states(stack, first.registry_id) == ["on_line"], "on_line")
    stream(stack, (first, first.event("offline", now + dt.timedelta(seconds=3))))
    fire_runs(stack)
    # An off-line of the second park older than its on-line comes last: the licence is still on line there.
    stack.send(QUEUE, second.event("offline", now + dt.timedelta(seconds=1)))
    time.sleep(3)
    fire_runs(stack)
    assert krt_states(stack, first.registry_id) == ["on_line"]


def test_the_status_snapshot_is_one_row_per_licence(deptrans, driver_auth):
    stack = deptrans
    drivers = [Driver(stack, driver_auth) for _ in range(3)]
    now = dt.datetime.now(dt.timezone.utc)
    for driver in drivers:
        assert driver.bind().status_code == 200
    for step, status in enumerate(("online", "offline", "online")):  # three answers per licence
        stream(stack, *[(d, d.event(status, now + dt.timedelta(seconds=step))) for d in drivers])
        fire_until(stack, lambda: all(len(krt_states(stack, d.registry_id)) == step + 1 for d in drivers),
                   f"flip {step + 1} of every licence")
    mine = {d.pd_id for d in drivers}

    def snapshot():
        items = read_feed(stack, STATUS_FEED)[0]
        return items if {i["licence_pd_id"] for i in items} >= mine else None

    items = stack.wait_until(snapshot, timeout=30, interval=1.0, what="every licence in the snapshot")
    licences = [i["licence_pd_id"] for i in items]
    rows = stack.client("dynamodb").scan(TableName="deptrans_session_statuses", Select="COUNT")["Count"]
    assert len(licences) == len(set(licences)) == rows  # the snapshot's size is the number of licences
    assert [i["line_state"] for i in items if i["licence_pd_id"] in mine] == ["on_line"] * 3
    history = stack.client("dynamodb").scan(TableName="deptrans_session_history", Select="COUNT")["Count"]
    assert history >= rows + 2 * len(drivers)


def test_krt_outage_then_recovery_loses_nothing_and_sends_nothing_twice(deptrans, driver_auth):
    stack = deptrans
    drivers = [Driver(stack, driver_auth) for _ in range(4)]
    for driver in drivers:
        assert driver.bind().status_code == 200
    ids = {driver.registry_id for driver in drivers}
    now = dt.datetime.now(dt.timezone.utc)
    stack.fault("krt", "error", status=503)
    try:
        stream(stack, *[(d, d.event("online", now)) for d in drivers])
        fire_runs(stack)
        # Two drivers go off line while KRT is down. Their on-line flips were decided and may have reached KRT
        # (a 503 does not say it did not): they go first, in order, then the off-line ones.
        stream(stack, *[(d, d.event("offline", now + dt.timedelta(seconds=1))) for d in drivers[:2]])
        fire_runs(stack)
        assert krt_reports(stack, ids) == []
    finally:
        stack.clear_faults("krt")
    calls_before = len(krt_line_calls(stack, ids))
    fire_until(stack, lambda: all(krt_states(stack, d.registry_id) == ["on_line", "off_line"] for d in drivers[:2])
               and all(krt_states(stack, d.registry_id) == ["on_line"] for d in drivers[2:]), "the flips drained")
    time.sleep(2)
    fire_runs(stack)  # more runs find nothing to send
    after = krt_line_calls(stack, ids)[calls_before:]
    assert len(after) == 6  # one call per flip: nothing sent twice
    assert len({c["body"]["event_id"] for c in after}) == 6
