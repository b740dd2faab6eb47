"""Client of the driver tracker: acquire one particular driver for an order (design doc 004, item 3).

    POST {tracker}/driver/acquire {"order_id", "park_db_id", "driver_profile_id"}
      200 {"driver": {"park_db_id", "driver_profile_id", "position": [lon, lat]}}
      404 the tracker does not know the driver (offline, no GPS)

Timeouts and bounded retries come from core.http; the POST is retried under the caller's idempotency token,
one per assignment attempt (a uuid4 stored on the assignment when the attempt starts: an attempt has
exactly one driver, and a new attempt after an error must reach the tracker afresh, not replay the cached
miss), so a retry, in-process or a repeated drivers-lookup, cannot acquire twice.
"""
from __future__ import annotations

from pydantic import ConfigDict

from chalicelib.core.schema import Schema
from chalicelib.core import http
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable

TRACKER = "tracker"


class DriverNotInTracker(Exception):
    """The tracker answered that it does not know this driver."""


class AcquiredDriver(Schema):
    model_config = ConfigDict(extra="ignore")

    park_db_id: str
    driver_profile_id: str
    position: list[float] | None = None


class _AcquireAnswer(Schema):
    model_config = ConfigDict(extra="ignore")

    driver: AcquiredDriver


def acquire_driver(order_id: str, token: str, park_db_id: str, driver_profile_id: str) -> AcquiredDriver:
    """Acquire the driver for the order under the attempt's idempotency `token`; DriverNotInTracker on 404,
    UpstreamUnavailable when it is down."""
    try:
        body = http.call_json(
            TRACKER, "POST", "/driver/acquire",
            json={"order_id": order_id, "park_db_id": park_db_id, "driver_profile_id": driver_profile_id},
            idempotency_key=token,
        )
    except UpstreamRejected as error:
        if error.upstream_status == 404:
            raise DriverNotInTracker(driver_profile_id) from None
        raise
    answer = http.answer_as(TRACKER, _AcquireAnswer, body)
    if (answer.driver.park_db_id, answer.driver.driver_profile_id) != (park_db_id, driver_profile_id):
        raise UpstreamUnavailable("tracker acquired another driver than asked")
    return answer.driver
