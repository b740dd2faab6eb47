"""Route sharing HTTP routes through the Chalice test client, against the upstream simulator.

The recipient's screen (GET /4.0/sharedroute/info) is the protocol's sharedroute plus what this service adds:
screen texts, client flags, the courier's forwarded phone, the seller. An enrichment that fails is left out;
the protocol itself failing is 503, never 500.
"""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from chalicelib.core import clock
from chalicelib.route_sharing import keys
from chalicelib.route_sharing.models import SharingKeyItem
from chalicelib.route_sharing.schemas import FinishOrderMessage, SaveKeyMessage
from local.simulator.server import Fault
from local.simulator.upstreams import protocol
from tests.conftest import failed_ids, sqs_event

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
JSON = {"Content-Type": "application/json"}
INFO = "/4.0/sharedroute/info"
TRACK = "/4.0/sharedroute/track"
CORP_INFO = "/order-route-sharing/v1/corp_info"
CLAIMS = "/order-route-sharing/v1/cargo_claims"


@pytest.fixture
def now(client):
    clock.freeze(T0)
    return T0


def save(order_id: str, key: str, *, tariff: str = "express", corp: str | None = None, phones=("phone-b",)) -> str:
    outcome = keys.save_keys([SaveKeyMessage(order_id=order_id, tariff_class=tariff, phone_ids=list(phones),
                                                corp_client_id=corp, sharing_key=key, created_at=T0)])
    assert outcome == [keys.SaveOutcome.SAVED]
    return key


def set_order(key: str, **fields) -> None:
    status, body = protocol.CONTROLS["order"]({"key": key, **fields})
    assert status == 200, body


def put_config(client, name: str, value) -> None:
    answer = client.http.put(f"/internal/v1/configs/{name}", headers=JSON, body=json.dumps({"value": value}))
    assert answer.status_code == 200, answer.body


def info(client, key: str, status: int = 200) -> dict:
    answer = client.http.get(f"{INFO}?key={key}")
    assert answer.status_code == status, answer.body
    return json.loads(answer.body)


def assert_error(answer, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.body
    body = json.loads(answer.body)
    assert set(body) >= {"code", "message"}
    if code:
        assert body["code"] == code
    return body


def protocol_calls(upstream, path: str) -> list[dict]:
    return [call for call in upstream.calls["protocol"] if call["path"] == path]


# --- /4.0/sharedroute/info --------------------------------------------------------------------------

def test_info_of_a_queued_order_passes_the_protocol_through_and_adds_the_screen(client, upstream, now):
    event = sqs_event(client, "order_route_sharing_save_key", [{
        "order_id": "o1", "tariff_class": "express", "phone_ids": ["r1"], "sharing_key": "key-o1-00001",
        "created_at": T0.isoformat()}])
    assert failed_ids(client.lambda_.invoke("save_sharing_keys", event).payload) == []
    answer = client.http.get(f"{INFO}?key=key-o1-00001")
    assert answer.status_code == 200, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "Доставка".encode() in answer.body  # UTF-8, not \u escapes
    body = json.loads(answer.body)
    # The protocol's own fields, untouched.
    assert body["status"] == "driving"
    assert body["driver"]["name"] == "Курьер" and body["park"] == {"name": "Экспресс-парк"}
    assert body["routeinfo"] == {"time_left": 600, "distance_left": 3200}
    assert [p["short_text"] for p in body["request"]["route"]] == ["Точка А", "Точка Б"]
    # What this service adds.
    assert body["popup_title"] == "Доставка"
    assert (body["status_title"], body["status_icon"]) == ("Магазин собирает заказ", "express_shared_icon")
    assert body["client_flags"] == {"show_point_a": True, "show_track": True}
    assert "corp_info" not in body
    # The protocol was asked with the sharing key.
    assert protocol_calls(upstream, "/sharedroute")[0]["query"] == {"key": "key-o1-00001"}


SCREENS = [  # tariff, protocol status -> popup title, status title, status icon
    ("express", "search", "Доставка", "Ищем курьера", "express_search_icon"),
    ("express", "transporting", "Доставка", "Курьер в пути", "express_transporting_icon"),
    # Doc 000: the word "Доставка" in the top bar, whatever the tariff ("Курьер" would read as the tariff called).
    ("courier", "waiting", "Доставка", "Курьер забирает заказ", "express_shared_icon"),
    ("courier", "complete", "Доставка", "Заказ доставлен", "express_complete_icon"),
    ("express", "cancelled", "Доставка", "Заказ отменён", "express_cancelled_icon"),
    ("express", "status-nobody-knows", "Доставка", "Доставка", "express_shared_icon"),  # the fallback
]


def test_screen_texts_follow_tariff_and_status(client, now):
    for index, (tariff, status, *_) in enumerate(SCREENS):
        save(f"o{index}", f"key-screen-{index}", tariff=tariff)
        set_order(f"key-screen-{index}", status=status)
    seen = []
    for index, (tariff, status, *_) in enumerate(SCREENS):
        body = info(client, f"key-screen-{index}")
        seen.append((tariff, body["status"], body["popup_title"], body["status_title"], body["status_icon"]))
    assert seen == SCREENS
    # The texts are a runtime config.
    set_order("key-screen-2", status="transporting")  # a courier order
    put_config(client, "order_route_sharing_screen_texts", {
        "popup_titles": {"courier": "Ваш курьер"},
        "statuses": {"courier": {"transporting": {"title": "Едет к вам", "icon": "courier_icon"}}},
        "fallback": {"title": "Заказ", "icon": "fallback_icon"},
    })
    body = info(client, "key-screen-2")
    assert (body["popup_title"], body["status_title"], body["status_icon"]) == (
        "Ваш курьер", "Едет к вам", "courier_icon")
    set_order("key-screen-2", status="waiting")  # no text for this status any more: the fallback
    body = info(client, "key-screen-2")
    assert (body["popup_title"], body["status_title"], body["status_icon"]) == ("Ваш курьер", "Заказ", "fallback_icon")


TRACK_SHOWN = {"driving": True, "waiting": True, "transporting": True,
               "search": False, "complete": False, "cancelled": False}


def test_client_flags(client, now):
    save("p2p", "key-p2p-0001")
    save("corp", "key-corp-001", corp="corp-1")
    assert info(client, "key-p2p-0001")["client_flags"]["show_point_a"] is True
    assert info(client, "key-corp-001")["client_flags"]["show_point_a"] is False
    # The track is shown only while the courier is on the way.
    shown = {}
    for status in TRACK_SHOWN:
        set_order("key-p2p-0001", status=status)
        shown[status] = info(client, "key-p2p-0001")["client_flags"]["show_track"]
    assert shown == TRACK_SHOWN
    set_order("key-p2p-0001", status="complete")
    put_config(client, "order_route_sharing_show_track_statuses", ["complete"])
    assert info(client, "key-p2p-0001")["client_flags"]["show_track"] is True


def test_phone_gateway_only_for_an_on_demand_courier(client, upstream, now):
    save("order-42", "key-o42-0001")
    driver = info(client, "key-o42-0001")["driver"]
    gateway = driver["phone_gateway"]
    assert gateway["phone"].startswith("+7555") and gateway["ext"]
    # Asked for the order behind the key, not the key itself.
    contacts = protocol_calls(upstream, "/ordercontactobtain")
    assert [(c["method"], c["body"]) for c in contacts] == [("POST", {"order_id": "order-42"})]
    for call_mode in ("direct", "forbidden", ""):
        set_order("key-o42-0001", call_mode=call_mode)
        driver = info(client, "key-o42-0001")["driver"]
        assert "phone_gateway" not in driver, call_mode
    assert len(protocol_calls(upstream, "/ordercontactobtain")) == 1  # not asked again


def test_a_failing_ordercontactobtain_leaves_only_the_phone_out(client, upstream, now):
    save("o1", "key-o1-00001")
    for status in (500, 403):
        protocol.CONTROLS["contact_fault"]({"status": status})
        body = info(client, "key-o1-00001")
        assert "phone_gateway" not in body["driver"], status
        assert body["driver"]["name"] == "Курьер"
        assert body["status_title"] == "Магазин собирает заказ" and body["client_flags"]["show_track"] is True
    # An enrichment gets one short try: the recipient's screen polls again in a few seconds.
    assert len(protocol_calls(upstream, "/ordercontactobtain")) == 2
    protocol.CONTROLS["contact_fault"]({"status": None})
    assert info(client, "key-o1-00001")["driver"]["phone_gateway"]["phone"].startswith("+7555")


def test_a_slow_ordercontactobtain_does_not_hold_the_screen(client, upstream, now):
    save("o1", "key-o1-00001")
    assert "phone_gateway" in info(client, "key-o1-00001")["driver"]  # warm: tables and config read once
    # Slow enough for the phone lookup's short timeout, not for sharedroute's (UPSTREAM_READ_TIMEOUT=0.5).
    upstream.faults["protocol"] = Fault(mode="slow", delay=0.4)
    started = time.monotonic()
    body = info(client, "key-o1-00001")
    elapsed = time.monotonic() - started
    assert body["status"] == "driving" and "phone_gateway" not in body["driver"]
    assert len(protocol_calls(upstream, "/ordercontactobtain")) == 2  # the warm-up's and one try, no retry
    assert elapsed < 1.5


def test_protocol_failures_are_404_or_503_never_500(client, upstream, now):
    save("o1", "key-o1-00001")
    save("o2", "key-o2-00001")
    set_order("key-o1-00001", gone=True)  # the protocol forgot it
    assert_error(client.http.get(f"{INFO}?key=key-o1-00001"), 404, "shared_route_not_found")
    for status in (500, 503):
        calls_before = len(protocol_calls(upstream, "/sharedroute"))
        upstream.faults["protocol"] = Fault(mode="error", status=status)
        assert_error(client.http.get(f"{INFO}?key=key-o2-00001"), 503, "upstream_unavailable")
        assert len(protocol_calls(upstream, "/sharedroute")) - calls_before == 3
    # Back after a blip: the retry hides it.
    upstream.faults["protocol"] = Fault(mode="error", status=502, count=1)
    assert info(client, "key-o2-00001")["status"] == "driving"
    # Hanging is the same UpstreamUnavailable (tests/core/test_http.py bounds its time), refused too:
    upstream.faults["protocol"] = Fault(mode="error", status=504)
    assert_error(client.http.get(f"{TRACK}?key=key-o2-00001"), 503, "upstream_unavailable")


def test_a_key_unknown_here_passes_the_protocol_through(client, upstream, now):
    """Before the move these routes served any order's key (e.g. a taxi ride shared by SMS link)."""
    set_order("key-taxi-ride1", status="transporting")
    body = info(client, "key-taxi-ride1")
    assert body["status"] == "transporting" and body["driver"]["name"] == "Курьер"
    assert body["routeinfo"] == {"time_left": 600, "distance_left": 3200}
    # Only what needs no saved order: the status decides the track; no seller is known, so point A shows.
    assert body["client_flags"] == {"show_point_a": True, "show_track": True}
    # Tariff texts, the courier's phone (needs the order id) and the seller need the saved order.
    assert not {"popup_title", "status_title", "status_icon", "corp_info"} & set(body)
    assert "phone_gateway" not in body["driver"]
    assert protocol_calls(upstream, "/ordercontactobtain") == []
    track = client.http.get(f"{TRACK}?key=key-taxi-ride1")
    assert track.status_code == 200 and len(json.loads(track.body)["track"]) == 6
    # 404 only when the protocol says so.
    set_order("key-taxi-ride1", gone=True)
    assert_error(client.http.get(f"{INFO}?key=key-taxi-ride1"), 404, "shared_route_not_found")
    assert_error(client.http.get(f"{TRACK}?key=key-taxi-ride1"), 404, "shared_route_not_found")
    upstream.faults["protocol"] = Fault(mode="error", status=500)
    assert_error(client.http.get(f"{INFO}?key=key-other-01"), 503, "upstream_unavailable")


def test_unknown_expired_and_malformed_keys(client, upstream, now):
    save("o1", "key-o1-00001")
    save("o2", "key-o2-00001")
    keys.finish_order(FinishOrderMessage(order_id="o2", finished_at=T0))
    clock.freeze(T0 + dt.timedelta(days=7, seconds=1))  # past the default max order lifetime
    for key in ("key-o1-00001", "key-o2-00001"):
        assert_error(client.http.get(f"{INFO}?key={key}"), 404, "sharing_key_not_found")
        assert_error(client.http.get(f"{TRACK}?key={key}"), 404, "sharing_key_not_found")
    # DynamoDB's TTL deletes what has expired (moto never does): a key saved here stays 404 for as long as
    # anything of its order is kept, never falls through to the protocol.
    for item in SharingKeyItem.scan():
        if item.purge_at <= clock.now():
            item.delete()
    for key in ("key-o1-00001", "key-o2-00001"):
        assert_error(client.http.get(f"{INFO}?key={key}"), 404, "sharing_key_not_found")
    assert upstream.calls["protocol"] == []
    for query in ("", "?key=", "?key=short", "?key=has%20space1", "?key=" + "k" * 129, "?key=semi;colon1"):
        body = assert_error(client.http.get(f"{INFO}{query}"), 400, "invalid_request")
        assert body["details"]["errors"][0]["loc"] == "key", query
    assert upstream.calls["protocol"] == []  # none of them reached the protocol


# --- /4.0/sharedroute/track -------------------------------------------------------------------------

def test_track(client, upstream, now):
    save("o1", "key-o1-00001")
    save("o2", "key-o2-00001")
    answer = client.http.get(f"{TRACK}?key=key-o1-00001")
    assert answer.status_code == 200, answer.body
    track = json.loads(answer.body)["track"]
    assert len(track) == 6 and track[0]["geopoint"] == [37.58, 55.73]
    assert protocol_calls(upstream, "/sharedroutetrack")[0]["query"] == {"key": "key-o1-00001"}
    assert_error(client.http.get(f"{TRACK}?key=bad"), 400, "invalid_request")
    assert len(upstream.calls["protocol"]) == 1
    set_order("key-o1-00001", gone=True)
    assert_error(client.http.get(f"{TRACK}?key=key-o1-00001"), 404, "shared_route_not_found")
    upstream.faults["protocol"] = Fault(mode="error", status=500)
    assert_error(client.http.get(f"{TRACK}?key=key-o2-00001"), 503, "upstream_unavailable")


# --- /order-route-sharing/v1/corp_info --------------------------------------------------------------

def test_corp_info_names_only_a_known_seller(client, upstream, now):
    put_config(client, "order_route_sharing_corp_names", {"corp-1": "Магазин у дома"})
    save("o1", "key-o1-00001", corp="corp-1")
    save("p2p", "key-p2p-0001")
    save("other", "key-other-01", corp="corp-9")  # a seller nobody named
    answer = client.http.get(f"{CORP_INFO}?sharing_key=key-o1-00001")
    assert answer.status_code == 200, answer.body
    assert json.loads(answer.body) == {"corp_info": {"name": "Магазин у дома"}}
    assert_error(client.http.get(f"{CORP_INFO}?sharing_key=key-p2p-0001"), 404, "corp_info_not_found")
    assert_error(client.http.get(f"{CORP_INFO}?sharing_key=key-other-01"), 404, "corp_info_not_found")
    assert_error(client.http.get(f"{CORP_INFO}?sharing_key=key-nobody-01"), 404, "sharing_key_not_found")
    assert_error(client.http.get(f"{CORP_INFO}?sharing_key=x"), 400, "invalid_request")
    assert_error(client.http.get(CORP_INFO), 400, "invalid_request")
    assert upstream.calls["protocol"] == []  # no upstream needed
    # The recipient's screen carries the seller too, only when it is known.
    assert info(client, "key-o1-00001")["corp_info"] == {"name": "Магазин у дома"}
    unknown = info(client, "key-other-01")
    assert "corp_info" not in unknown and unknown["client_flags"]["show_point_a"] is False
    assert "corp_info" not in info(client, "key-p2p-0001")


# --- /order-route-sharing/v1/cargo_claims -----------------------------------------------------------

def register(client, claim: dict):
    return client.http.post(CLAIMS, headers=JSON, body=json.dumps(claim))


def keys_of(client, phone_id: str) -> list[str]:
    answer = client.http.get("/order-route-sharing/v1/sharing_keys", headers={"X-YaTaxi-PhoneId": phone_id})
    assert answer.status_code == 200, answer.body
    return answer.json_body["sharing_keys"]


def test_a_cargo_claim_gets_one_key_its_recipients_see(client, now):
    # Invalid claims are 400 and register nothing.
    for claim in ({"claim_id": "claim-1"},
                  {"claim_id": "claim-1", "phone_ids": []},
                  {"claim_id": "claim-1", "phone_ids": ["r1", "b", "c", "d", "e", "f"]},
                  {"claim_id": "claim-1", "phone_ids": [""]},
                  {"claim_id": "", "phone_ids": ["r1"]},
                  {"phone_ids": ["r1"]}):
        assert_error(register(client, claim), 400, "invalid_request")
    assert keys_of(client, "r1") == []
    answer = register(client, {"claim_id": "claim-1", "phone_ids": ["r1", "r2"]})
    assert answer.status_code == 200, answer.body
    body = json.loads(answer.body)
    assert body["claim_id"] == "claim-1" and len(body["sharing_key"]) >= 16
    first = body["sharing_key"]
    assert keys_of(client, "r1") == [first] and keys_of(client, "r2") == [first]
    assert keys_of(client, "someone-else") == []
    # The same claim again (a retried call) gets the same key and adds nothing.
    clock.advance(minutes=5)
    again = register(client, {"claim_id": "claim-1", "phone_ids": ["r1", "r2"]})
    assert again.status_code == 200, again.body
    assert json.loads(again.body)["sharing_key"] == first
    other = json.loads(register(client, {"claim_id": "claim-2", "phone_ids": ["r1"]}).body)["sharing_key"]
    assert other != first
    assert keys_of(client, "r1") == [other, first]  # newest first
    assert keys_of(client, "r2") == [first]


def test_a_cargo_claim_shows_on_the_recipients_screen(client, now):
    put_config(client, "order_route_sharing_corp_names", {"corp-7": "Стройматериалы"})
    save("claim-1", "key-taxi-0001", phones=["r1"])  # a taxi order whose id happens to equal the claim's
    key = json.loads(register(client, {"claim_id": "claim-1", "phone_ids": ["r1"], "corp_client_id": "corp-7"}
                              ).body)["sharing_key"]
    assert key != "key-taxi-0001"
    assert sorted(keys_of(client, "r1")) == sorted([key, "key-taxi-0001"])
    body = info(client, key)
    assert body["popup_title"] == "Грузовой"
    assert body["corp_info"] == {"name": "Стройматериалы"}
    assert body["client_flags"]["show_point_a"] is False
    corp = client.http.get(f"{CORP_INFO}?sharing_key={key}")
    assert json.loads(corp.body) == {"corp_info": {"name": "Стройматериалы"}}


def test_the_longest_claim_id_registers_and_a_longer_one_is_a_400(client, now):
    """Found by schemathesis on the deployed stack: a 127-character claim id was a 500 (its order id, prefixed
    with `cargo_claim:`, passed the order id's limit)."""
    longest = register(client, {"claim_id": "0" * 116, "phone_ids": ["r1"]})
    assert longest.status_code == 200, longest.body
    assert keys_of(client, "r1") == [json.loads(longest.body)["sharing_key"]]
    for length in (117, 127, 128):
        assert_error(register(client, {"claim_id": "0" * length, "phone_ids": ["r1"]}), 400, "invalid_request")
