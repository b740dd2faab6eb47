"""Route sharing queue consumers, driven through the Chalice test client with distinct message ids."""
from __future__ import annotations

import datetime as dt

from chalicelib.core import clock
from chalicelib.route_sharing.models import PhoneKey, SharedOrder
from tests.conftest import failed_ids, sqs_event

SAVE = "order_route_sharing_save_key"
FINISH = "order_route_sharing_finish_order"
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)


def save_body(order_id: str, phones=("phone-b",), tariff="express", **extra) -> dict:
    return {"order_id": order_id, "tariff_class": tariff, "phone_ids": list(phones),
            "corp_client_id": extra.pop("corp_client_id", None), "created_at": extra.pop("created_at", T0.isoformat()),
            **extra}


def keys_of(client, phone_id: str) -> list[str]:
    answer = client.http.get("/order-route-sharing/v1/sharing_keys", headers={"X-YaTaxi-PhoneId": phone_id})
    assert answer.status_code == 200, answer.body
    return answer.json_body["sharing_keys"]


def invoke(client, handler: str, queue: str, bodies: list, ids=None) -> dict:
    return client.lambda_.invoke(handler, sqs_event(client, queue, bodies, ids)).payload


def test_saved_order_is_visible_to_every_phone_newest_first(client):
    clock.freeze(T0)
    answer = invoke(client, "save_sharing_keys", SAVE, [
        save_body("old", phones=["a", "b"], created_at=(T0 - dt.timedelta(minutes=5)).isoformat(), sharing_key="key-old-0001"),
        save_body("new", phones=["b"], sharing_key="key-new-0001"),
    ])
    assert failed_ids(answer) == []
    assert keys_of(client, "b") == ["key-new-0001", "key-old-0001"]
    assert keys_of(client, "a") == ["key-old-0001"]
    assert keys_of(client, "nobody") == []


def test_other_tariffs_are_acknowledged_and_dropped(client):
    answer = invoke(client, "save_sharing_keys", SAVE, [save_body("econom-1", tariff="econom")])
    assert failed_ids(answer) == []
    assert keys_of(client, "phone-b") == []


def test_redelivered_save_keeps_the_first_key(client):
    clock.freeze(T0)
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1")])
    first = keys_of(client, "phone-b")
    assert len(first) == 1 and len(first[0]) >= 16  # generated, unguessable
    # Redelivery: alone, and again inside a batch with a new order and a copy of itself.
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1")], ids=["again"])
    answer = invoke(client, "save_sharing_keys", SAVE,
                    [save_body("o1"), save_body("o2", created_at=(T0 + dt.timedelta(seconds=1)).isoformat()),
                     save_body("o1")])
    assert failed_ids(answer) == []
    keys = keys_of(client, "phone-b")
    assert len(keys) == 2 and keys[1] == first[0]
    assert SharedOrder.get("o1").sharing_key == first[0]


def test_poison_message_fails_alone(client):
    bodies = [save_body(f"o{i}", created_at=(T0 + dt.timedelta(seconds=i)).isoformat()) for i in range(10)]
    bodies[3] = {"order_id": "broken", "phone_ids": []}  # missing fields, no phones
    bodies[6] = "not json at all"
    answer = invoke(client, "save_sharing_keys", SAVE, bodies, ids=[f"m{i}" for i in range(10)])
    assert sorted(failed_ids(answer)) == ["m3", "m6"]
    clock.freeze(T0)
    assert len(keys_of(client, "phone-b")) == 8


def test_finished_order_stays_visible_for_24_hours_then_disappears(client):
    clock.freeze(T0)
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1", phones=["a", "b"], sharing_key="key-o1-00001")])
    finished_at = T0 + dt.timedelta(hours=1)
    assert failed_ids(invoke(client, "finish_shared_order", FINISH,
                             [{"order_id": "o1", "finished_at": finished_at.isoformat()}])) == []
    clock.freeze(finished_at + dt.timedelta(hours=23, minutes=59))
    assert keys_of(client, "a") == ["key-o1-00001"]
    assert client.http.get("/order-route-sharing/v1/corp_info?sharing_key=key-o1-00001").status_code == 404
    clock.freeze(finished_at + dt.timedelta(hours=24, seconds=1))
    assert keys_of(client, "a") == [] and keys_of(client, "b") == []
    # The key itself is gone for the keyed routes too (moto never deletes: the read filters).
    assert client.http.get("/4.0/sharedroute/info?key=key-o1-00001").status_code == 404


def test_redelivered_finish_changes_nothing(client):
    clock.freeze(T0)
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1")])
    first = {"order_id": "o1", "finished_at": (T0 + dt.timedelta(hours=1)).isoformat()}
    later = {"order_id": "o1", "finished_at": (T0 + dt.timedelta(hours=5)).isoformat()}
    invoke(client, "finish_shared_order", FINISH, [first])
    answer = invoke(client, "finish_shared_order", FINISH, [first, later], ids=["r1", "r2"])
    assert failed_ids(answer) == []
    assert SharedOrder.get("o1").finished_at == T0 + dt.timedelta(hours=1)
    clock.freeze(T0 + dt.timedelta(hours=25, seconds=1))
    assert keys_of(client, "phone-b") == []


def test_finish_before_save_still_expires_the_keys(client):
    clock.freeze(T0)
    invoke(client, "finish_shared_order", FINISH, [{"order_id": "o1", "finished_at": T0.isoformat()}])
    answer = invoke(client, "save_sharing_keys", SAVE, [save_body("o1", sharing_key="key-late-0001")])
    assert failed_ids(answer) == []
    assert keys_of(client, "phone-b") == ["key-late-0001"]
    clock.freeze(T0 + dt.timedelta(hours=24, seconds=1))
    assert keys_of(client, "phone-b") == []


def test_key_with_no_finish_expires_after_max_order_lifetime(client):
    clock.freeze(T0)
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1")])
    clock.freeze(T0 + dt.timedelta(days=6))
    assert len(keys_of(client, "phone-b")) == 1
    clock.freeze(T0 + dt.timedelta(days=7, seconds=1))
    assert keys_of(client, "phone-b") == []


def test_given_key_taken_by_another_order_fails_that_message_only(client):
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1", sharing_key="shared-key-001")])
    answer = invoke(client, "save_sharing_keys", SAVE,
                    [save_body("o2", sharing_key="shared-key-001"), save_body("o3", phones=["c"])], ids=["x", "y"])
    assert failed_ids(answer) == ["x"]
    clock.freeze(T0)
    assert len(keys_of(client, "c")) == 1
    assert PhoneKey.count("phone-b") == 1


def test_tariff_classes_follow_the_runtime_config(client):
    put = client.http.put("/internal/v1/configs/order_route_sharing_tariff_classes",
                          headers={"Content-Type": "application/json"}, body='{"value": ["cargo"]}')
    assert put.status_code == 200
    invoke(client, "save_sharing_keys", SAVE, [save_body("e1", tariff="express"), save_body("c1", tariff="cargo")])
    clock.freeze(T0)
    assert len(keys_of(client, "phone-b")) == 1
    assert SharedOrder.count() == 1


def test_re_registering_a_claim_whose_sharing_ended_is_a_clear_409(client):
    headers = {"Content-Type": "application/json"}
    body = '{"claim_id": "claim-1", "phone_ids": ["phone-b"]}'
    clock.freeze(T0)
    first = client.http.post("/order-route-sharing/v1/cargo_claims", headers=headers, body=body)
    assert first.status_code == 200
    assert client.http.post("/order-route-sharing/v1/cargo_claims", headers=headers, body=body).json_body == \
        first.json_body
    clock.freeze(T0 + dt.timedelta(days=7, seconds=1))
    late = client.http.post("/order-route-sharing/v1/cargo_claims", headers=headers, body=body)
    assert late.status_code == 409 and late.json_body["code"] == "cargo_claim_expired"


# --- issue 7, section 3: defects 2, 3, 4 ------------------------------------------------------------

def test_an_order_without_phones_is_saved_with_its_key_and_never_dead_lettered(client, upstream):
    """Doc 000 saves the phone "if the order has one": no phones is a well-formed order."""
    clock.freeze(T0)
    bodies = [save_body("no-phones", phones=[], sharing_key="key-nophone-1"),
              {key: value for key, value in save_body("absent", sharing_key="key-absent-01").items()
               if key != "phone_ids"},
              save_body("with-phone", phones=["b"], sharing_key="key-phone-001")]
    answer = invoke(client, "save_sharing_keys", SAVE, bodies, ids=["m0", "m1", "m2"])
    assert failed_ids(answer) == []
    assert keys_of(client, "b") == ["key-phone-001"]
    for key, order_id in (("key-nophone-1", "no-phones"), ("key-absent-01", "absent")):
        # The key still serves the shared-route pages, enriched as any saved order.
        page = client.http.get(f"/4.0/sharedroute/info?key={key}")
        assert page.status_code == 200, page.body
        assert page.json_body["popup_title"] == "Доставка"
        assert SharedOrder.get(order_id).sharing_key == key
    # A redelivery changes nothing; a finish expires the key as for any order.
    assert failed_ids(invoke(client, "save_sharing_keys", SAVE, bodies[:1], ids=["again"])) == []
    assert failed_ids(invoke(client, "finish_shared_order", FINISH,
                             [{"order_id": "no-phones", "finished_at": T0.isoformat()}])) == []
    clock.freeze(T0 + dt.timedelta(hours=24, seconds=1))
    assert client.http.get("/4.0/sharedroute/info?key=key-nophone-1").status_code == 404
    assert client.http.get("/4.0/sharedroute/info?key=key-absent-01").status_code == 200  # not finished


def test_more_than_five_phones_is_still_invalid(client):
    answer = invoke(client, "save_sharing_keys", SAVE, [save_body("o1", phones=list("abcdef"))], ids=["six"])
    assert failed_ids(answer) == ["six"]


def _ttl_sweep() -> None:
    """What DynamoDB's TTL does (moto never does it): delete every item whose TTL has passed."""
    from chalicelib.core.storage import ttl_attribute_name
    from chalicelib.route_sharing.models import SharingKeyItem

    for model in (SharedOrder, SharingKeyItem, PhoneKey):
        ttl = ttl_attribute_name(model)
        for item in model.scan():
            moment = getattr(item, ttl)
            if moment is not None and moment <= clock.now():
                item.delete()


def test_a_finish_after_the_keys_were_ttl_deleted_succeeds_and_changes_nothing(client):
    clock.freeze(T0)
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1", sharing_key="key-o1-00001")])
    clock.freeze(T0 + dt.timedelta(days=7, hours=1))  # past the max order lifetime: no finish ever came
    _ttl_sweep()
    before = SharedOrder.get("o1").attribute_values
    late = {"order_id": "o1", "finished_at": (T0 + dt.timedelta(days=7)).isoformat(), "tariff_class": "express"}
    assert failed_ids(invoke(client, "finish_shared_order", FINISH, [late], ids=["late"])) == []
    assert SharedOrder.get("o1").attribute_values == before
    assert keys_of(client, "phone-b") == []
    assert client.http.get("/4.0/sharedroute/info?key=key-o1-00001").status_code == 404


def test_a_finish_of_an_unshared_tariff_keeps_no_stub(client):
    clock.freeze(T0)
    bodies = [{"order_id": f"econom-{i}", "finished_at": T0.isoformat(), "tariff_class": "econom"}
              for i in range(5)]
    assert failed_ids(invoke(client, "finish_shared_order", FINISH, bodies, ids=[f"f{i}" for i in range(5)])) == []
    assert SharedOrder.count() == 0
    # A shared order is still finished when its finish names a tariff no longer shared (the config changed).
    invoke(client, "save_sharing_keys", SAVE, [save_body("o1")])
    finish = {"order_id": "o1", "finished_at": T0.isoformat(), "tariff_class": "econom"}
    assert failed_ids(invoke(client, "finish_shared_order", FINISH, [finish])) == []
    assert SharedOrder.get("o1").finished_at == T0
    clock.freeze(T0 + dt.timedelta(hours=24, seconds=1))
    assert keys_of(client, "phone-b") == []


def test_a_finish_stub_lives_only_as_long_as_a_late_save_could_show_the_order(client):
    from chalicelib.route_sharing.schemas import MAX_ORDER_DAYS

    clock.freeze(T0)
    for order_id, tariff in (("shared", "express"), ("unknown-tariff", None)):
        finish = {"order_id": order_id, "finished_at": T0.isoformat(),
                  **({"tariff_class": tariff} if tariff else {})}
        assert failed_ids(invoke(client, "finish_shared_order", FINISH, [finish])) == []
        stub = SharedOrder.get(order_id)
        assert stub.sharing_key is None
        # A save can make keys visible until its created_at (<= finished_at) + the max order lifetime: no later.
        assert stub.purge_at == T0 + dt.timedelta(days=MAX_ORDER_DAYS.get())
    # A finish so old that any save still to come writes keys already expired: no stub at all.
    clock.freeze(T0 + dt.timedelta(days=8))
    old = {"order_id": "old", "finished_at": T0.isoformat()}
    assert failed_ids(invoke(client, "finish_shared_order", FINISH, [old])) == []
    assert SharedOrder.count("old") == 0
    # Its save, redriven now, shows nothing.
    invoke(client, "save_sharing_keys", SAVE, [save_body("old")])
    assert keys_of(client, "phone-b") == []
