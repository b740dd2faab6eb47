"""Deptrans on the deployed local stack: bind a registry ID, stream status events through SQS, see them reach
the simulated KRT (DeptransStatusSender, fired as `make fire FN=DeptransStatusSender` does) and come back out of
the status feed; a KRT outage then recovery loses nothing and sends nothing twice.

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


def krt_line_calls(stack, ids: set[str]) -> list[dict]:
    calls = requests.get(f"{stack.simulator}/_control/calls", params={"upstream": "krt"}, timeout=5).json()["calls"]
    return [c for c in calls if c["path"] == "/api/v1/line-states" and (c["body"] or {}).get("id") in ids]


class Driver:
    def __init__(self, stack, driver_auth):
        self.stack = stack
        self.park, self.driver = stack.unique("park"), stack.unique("drv")
        self.licence = "77" + "".join(random.choice("0123456789") for _ in range(10))
        self.registry_id = "E2E" + "".join(random.choice("0123456789ABCDEF") for _ in range(12))
        self.headers = driver_auth(self.park, self.driver)
        answer = stack.simulator_control("drivers", {"park_id": self.park, "driver_id": self.driver,
                                                     "licence": self.licence, "categories": ["econom"],
                                                     "position": MOSCOW})
        self.pd_id = answer["licence_pd_id"]
        stack.simulator_control("krt/ids", {"licence": self.licence, "id": self.registry_id})

    def bound(self) -> bool:
        answer = self.stack.get(ID_PATH, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["bound"]

    def bind(self, registry_id: str | None = None) -> requests.Response:
        return self.stack.post(ID_PATH, {"id": registry_id or self.registry_id}, headers=self.headers)

    def event(self, status: str, at: dt.datetime) -> dict:
        return {"park_id": self.park, "driver_id": self.driver, "status": status, "updated_at": at.isoformat()}


def queued(stack, driver: Driver, status: str) -> bool:
    item = stack.client("dynamodb").get_item(
        TableName="deptrans_status_queue", Key={"driver_key": {"S": f"{driver.park}/{driver.driver}"}},
        ConsistentRead=True).get("Item")
    return bool(item) and item["status"]["S"] == status


def fire_until(stack, check, what: str, timeout: float = 60):
    """Run the sender now (again while another run holds the lease) until `check` holds."""
    def attempt():
        stack.fire_schedule(SENDER)
        return check()
    return stack.wait_until(attempt, timeout=timeout, interval=1.0, what=what)


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
    stack.send_batch(QUEUE, [driver.event("online", now), driver.event("busy", now + dt.timedelta(seconds=1))])
    stack.wait_until(lambda: queued(stack, driver, "busy"), timeout=30, what="events applied")
    ids = {driver.registry_id}
    fire_until(stack, lambda: krt_reports(stack, ids), "KRT got the on-line change")
    stack.send(QUEUE, driver.event("offline", now + dt.timedelta(seconds=2)))
    stack.wait_until(lambda: queued(stack, driver, "offline"), timeout=30, what="offline applied")
    fire_until(stack, lambda: len(krt_reports(stack, ids)) == 2, "KRT got the off-line change")
    assert [r["state"] for r in krt_reports(stack, ids)] == ["on_line", "off_line"]  # busy was no flip

    # Both answers come back out of the status feed, oldest first for the driver's licence.
    def from_feed():
        cursor, rows = None, []
        for _ in range(200):
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = stack.get(STATUS_FEED, params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            rows += [i for i in body["items"] if i["licence_pd_id"] == driver.pd_id]
            if not body["items"]:
                break
            cursor = body["cursor"]
        return rows if len(rows) == 2 else None

    rows = stack.wait_until(from_feed, timeout=30, interval=1.0, what="the driver's statuses in the feed")
    assert [(r["line_state"], r["session_status"]) for r in rows] == [("on_line", "active"), ("off_line", "paused")]
    assert rows[0]["park_id"] == driver.park and rows[0]["driver_id"] == driver.driver

    bad = stack.get(STATUS_FEED, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"
    assert stack.get(ID_FEED, params={"limit": 0}).status_code == 400


def test_krt_outage_then_recovery_loses_nothing_and_sends_nothing_twice(deptrans, driver_auth):
    stack = deptrans
    drivers = [Driver(stack, driver_auth) for _ in range(4)]
    for driver in drivers:
        assert driver.bind().status_code == 200
    ids = {driver.registry_id for driver in drivers}
    now = dt.datetime.now(dt.timezone.utc)
    stack.fault("krt", "error", status=503)
    try:
        stack.send_batch(QUEUE, [driver.event("online", now) for driver in drivers])
        stack.wait_until(lambda: all(queued(stack, d, "online") for d in drivers), timeout=30, what="events applied")
        # Two drivers go off line again while KRT is down: KRT never saw them on line, so nothing is owed.
        stack.send_batch(QUEUE, [d.event("offline", now + dt.timedelta(seconds=1)) for d in drivers[:2]])
        stack.wait_until(lambda: all(queued(stack, d, "offline") for d in drivers[:2]), timeout=30,
                         what="offline applied")
        stack.fire_schedule(SENDER)
        stack.fire_schedule(SENDER)
        assert krt_reports(stack, ids) == []
    finally:
        stack.clear_faults("krt")
    calls_before = len(krt_line_calls(stack, ids))
    waiting = {d.registry_id for d in drivers[2:]}
    fire_until(stack, lambda: {r["id"] for r in krt_reports(stack, ids)} == waiting, "the queue drained into KRT")
    time.sleep(2)
    stack.fire_schedule(SENDER)  # one more run finds nothing to send
    reports = krt_reports(stack, ids)
    assert sorted((r["id"], r["state"]) for r in reports) == sorted((i, "on_line") for i in waiting)
    after = krt_line_calls(stack, ids)[calls_before:]
    assert sorted(c["body"]["id"] for c in after) == sorted(waiting)  # one call per change: nothing sent twice
