"""Route sharing on the deployed local stack: HTTP and SQS through the emulator, the way AWS runs it."""
from __future__ import annotations

import datetime as dt
import json

SAVE = "order_route_sharing_save_key"
FINISH = "order_route_sharing_finish_order"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def keys_of(stack, phone_id: str) -> list[str]:
    answer = stack.get("/order-route-sharing/v1/sharing_keys", headers={"X-YaTaxi-PhoneId": phone_id})
    assert answer.status_code == 200, answer.text
    return answer.json()["sharing_keys"]


def test_a_delivery_shows_up_for_its_recipient_until_it_expires(stack):
    order_id, sender, recipient = stack.unique("order"), stack.unique("phone-a"), stack.unique("phone-b")
    stack.send(SAVE, {"order_id": order_id, "tariff_class": "express", "phone_ids": [recipient, sender],
                      "corp_client_id": "vkusvill", "created_at": now().isoformat()})
    keys = stack.wait_until(lambda: keys_of(stack, recipient), what="the key reaches the recipient")
    assert keys_of(stack, sender) == keys
    key = keys[0]

    info = stack.get("/4.0/sharedroute/info", params={"key": key})
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["popup_title"] == "Доставка" and body["status_title"] == "Магазин собирает заказ"
    assert body["corp_info"] == {"name": "ВкусВилл"}  # the local stage's demo config
    assert body["client_flags"] == {"show_point_a": False, "show_track": True}
    assert body["driver"]["phone_gateway"]["phone"].startswith("+7")
    assert stack.get("/4.0/sharedroute/track", params={"key": key}).json()["track"]
    assert stack.get("/order-route-sharing/v1/corp_info", params={"sharing_key": key}).json() == \
        {"corp_info": {"name": "ВкусВилл"}}

    # Finished long enough ago that only 20 s of its 24 h remain: still visible, then gone.
    finished_at = now() - dt.timedelta(hours=24) + dt.timedelta(seconds=20)
    stack.send(FINISH, {"order_id": order_id, "finished_at": finished_at.isoformat(), "tariff_class": "express"})
    stack.wait_until(lambda: stack.client("dynamodb").get_item(
        TableName="route_sharing_keys", Key={"sharing_key": {"S": key}}, ConsistentRead=True
    ).get("Item", {}).get("expires_at"), what="the finish is recorded")
    assert keys_of(stack, recipient) == [key]
    stack.wait_until(lambda: keys_of(stack, recipient) == [], timeout=40, what="the key expires")
    assert stack.get("/4.0/sharedroute/info", params={"key": key}).status_code == 404
    assert stack.get("/order-route-sharing/v1/corp_info", params={"sharing_key": key}).status_code == 404


def order_key(stack, order_id: str) -> str | None:
    item = stack.client("dynamodb").get_item(TableName="route_sharing_orders", Key={"order_id": {"S": order_id}},
                                             ConsistentRead=True).get("Item") or {}
    return item.get("sharing_key", {}).get("S")


def test_a_poison_message_fails_alone_and_reaches_the_dlq(stack):
    stack.dlq_bodies(SAVE)  # start from an empty DLQ
    phone = stack.unique("phone")
    poison = json.dumps({"order_id": stack.unique("poison"), "tariff_class": "express", "phone_ids": ["p"],
                         "created_at": "not a time"})
    bodies = [{"order_id": stack.unique("order"), "tariff_class": "courier", "phone_ids": [phone],
               "created_at": now().isoformat()} for _ in range(8)]
    # Well-formed, without phones (doc 000: the phone is saved "if the order has one"): never dead-lettered.
    no_phones = {"order_id": stack.unique("order"), "tariff_class": "courier", "phone_ids": [],
                 "created_at": now().isoformat()}
    stack.send_batch(SAVE, bodies[:4] + [poison, no_phones] + bodies[4:])
    stack.wait_until(lambda: len(keys_of(stack, phone)) == 8, what="the 8 good saves")
    key = stack.wait_until(lambda: order_key(stack, no_phones["order_id"]), what="the order without phones")
    page = stack.get("/4.0/sharedroute/info", params={"key": key})
    assert page.status_code == 200 and page.json()["popup_title"] == "Доставка", page.text
    dead = stack.wait_until(lambda: stack.dlq_bodies(SAVE), timeout=90, what="the poison message in the DLQ")
    assert dead == [poison]
    assert len(keys_of(stack, phone)) == 8


def test_a_key_not_saved_here_is_the_protocols_to_answer(stack):
    key = stack.unique("taxi-ride")
    answer = stack.get("/4.0/sharedroute/info", params={"key": key})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "driving" and "popup_title" not in answer.json()
    assert stack.get("/4.0/sharedroute/track", params={"key": key}).json()["track"]
    stack.simulator_control("protocol/order", {"key": key, "gone": True})
    assert stack.get("/4.0/sharedroute/info", params={"key": key}).status_code == 404


def test_an_upstream_failure_degrades_info_without_a_500(stack):
    phone = stack.unique("phone")
    stack.send(SAVE, {"order_id": stack.unique("order"), "tariff_class": "express", "phone_ids": [phone],
                      "created_at": now().isoformat()})
    key = stack.wait_until(lambda: keys_of(stack, phone), what="the key")[0]
    try:
        # ordercontactobtain is only an enrichment: the info still comes, without the phone.
        stack.simulator_control("protocol/order", {"key": key, "call_mode": "on_demand"})
        calls_before = len(stack.http.get(f"{stack.simulator}/_control/calls?upstream=protocol").json()["calls"])
        stack.fault("protocol", "timeout", delay=3.0, count=None)
        answer = stack.get("/4.0/sharedroute/info", params={"key": key})
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "upstream_unavailable"
        calls = stack.http.get(f"{stack.simulator}/_control/calls?upstream=protocol").json()["calls"]
        assert len(calls) - calls_before == 3  # one call and two bounded retries
        stack.clear_faults("protocol")

        original = stack.get("/4.0/sharedroute/info", params={"key": key}).json()
        assert "phone_gateway" in original["driver"]
        # Now only ordercontactobtain breaks.
        stack.simulator_control("protocol/contact_fault", {"status": 500})
        degraded = stack.get("/4.0/sharedroute/info", params={"key": key})
        assert degraded.status_code == 200, degraded.text
        assert "phone_gateway" not in degraded.json()["driver"]
        assert degraded.json()["status_title"]
    finally:
        stack.clear_faults("protocol")
        stack.simulator_control("protocol/contact_fault", {"status": None})
