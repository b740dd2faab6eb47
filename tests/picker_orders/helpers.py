"""Builders shared by the picker_orders tests: queue events, the tracking call, the refresh job."""
from __future__ import annotations

import datetime as dt
import logging

from chalicelib.core import clock
from tests.conftest import as_eats_user, sqs_event

QUEUE = "eats_orders_tracking_picker_orders"
HANDLER = "picker_order_events"
JOB = "picker_orders_updater"
TRACKING = "/eats/v1/eats-orders-tracking/v1/tracking"
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)

CALL_PLACE = "Забыли товар? Позвони нам, мы добавим его в корзину"
CALL_PICKER = "Забыли самое нужное? Просто позвоните сборщику и попросите добавить товар в заказ"
BANNER = "Позвони нам, если забыл что-то купить. Мы все сделаем"
PAYING = "Стоим в очереди на кассу, скоро оплатим"
DEFAULT_PLACE_PHONE = "+78006001210"


def at(minutes: float = 0, seconds: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes, seconds=seconds)


def status_event(order_nr: str, status: str, created_at: dt.datetime, picker_id: str | None = None,
                 customer_id: str | None = "c1", place_id: str = "place-1", **extra) -> dict:
    body = {"event_type": "STATUS_CHANGE", "order_nr": order_nr, "order_status": status, "place_id": place_id,
            "created_at": created_at.isoformat(), **extra}
    if picker_id is not None:
        body["picker_id"] = picker_id
    if customer_id is not None:
        body["customer_id"] = customer_id
    return body


def phone_event(order_nr: str, picker_id: str, phone: str, expires_at: dt.datetime, created_at: dt.datetime,
                status: str = "picking", customer_id: str | None = "c1") -> dict:
    body = status_event(order_nr, status, created_at, picker_id=picker_id, customer_id=customer_id)
    body["event_type"] = "PICKER_PHONE_FORWARDING_READY"
    body["customer_picker_phone_forwarding"] = {"phone": phone, "expires_at": expires_at.isoformat()}
    return body


def send(client, *bodies, ids: list[str] | None = None) -> list[str]:
    """Deliver one SQS batch to the consumer; returns the failed message ids."""
    answer = client.lambda_.invoke(HANDLER, sqs_event(client, QUEUE, list(bodies), ids)).payload
    return [item["itemIdentifier"] for item in answer["batchItemFailures"]]


def track(client, order_nr: str, user_id: str | None = "c1"):
    headers = as_eats_user(user_id) if user_id is not None else {}
    return client.http.get(f"{TRACKING}?order_nr={order_nr}", headers=headers)


def screen(client, order_nr: str, user_id: str = "c1") -> dict:
    answer = track(client, order_nr, user_id)
    assert answer.status_code == 200, answer.body
    return answer.json_body


def run_job(client):
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=["arn:aws:events:us-east-1:000000000000:rule/test"])
    return client.lambda_.invoke(JOB, event).payload


def put_config(client, name: str, value) -> None:
    import json

    answer = client.http.put(f"/internal/v1/configs/{name}", headers={"Content-Type": "application/json"},
                             body=json.dumps({"value": value}))
    assert answer.status_code == 200, answer.body


def freeze(moment: dt.datetime) -> None:
    clock.freeze(moment)


class Records(logging.Handler):
    """Collects the app's structured log lines (the app's loggers do not propagate to pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        from chalicelib.core.logs import JsonFormatter

        self.formatter_ = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, name: str) -> list[dict]:
        return [getattr(r, "fields", {}) for r in self.records if r.getMessage() == name]

    def text(self) -> str:
        return "\n".join(self.formatter_.format(r) for r in self.records)
