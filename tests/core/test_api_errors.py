"""Every answer leaves in one error shape, whatever went wrong and whoever raised it."""
from __future__ import annotations

import json

JSON = {"Content-Type": "application/json"}


def assert_error(answer, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.body
    body = json.loads(answer.body)
    assert set(body) >= {"code", "message"} and "Code" not in body
    if code:
        assert body["code"] == code
    return body


def test_ping(client):
    answer = client.http.get("/ping")
    assert answer.status_code == 200 and answer.json_body == {"status": "ok"}


def test_missing_header_is_400_with_the_field_named(client):
    body = assert_error(client.http.get("/order-route-sharing/v1/sharing_keys"), 400, "invalid_request")
    assert body["details"]["errors"][0]["loc"] == "x-yataxi-phoneid"


def test_malformed_json_is_400(client):
    answer = client.http.post("/order-route-sharing/v1/cargo_claims", headers=JSON, body="{not json")
    assert_error(answer, 400, "invalid_json")


def test_json_that_is_not_an_object_is_400(client):
    assert_error(client.http.post("/order-route-sharing/v1/cargo_claims", headers=JSON, body="[1, 2]"), 400)


def test_missing_body_is_400(client):
    assert_error(client.http.post("/order-route-sharing/v1/cargo_claims", headers=JSON), 400, "body_required")


def test_chalice_own_errors_are_rewritten_into_our_shape(client):
    # Chalice refuses a non-JSON content type before our code runs.
    answer = client.http.post("/order-route-sharing/v1/cargo_claims", headers={"Content-Type": "text/plain"},
                              body="x")
    assert_error(answer, 415, "unsupported_media_type")


def test_rejected_values_are_not_echoed_back(client):
    answer = client.http.post("/order-route-sharing/v1/cargo_claims", headers=JSON,
                              body=json.dumps({"claim_id": "c1", "phone_ids": "+79990001122"}))
    assert b"+79990001122" not in answer.body
    assert_error(answer, 400)


def test_unexpected_failure_is_500_in_our_shape_and_logged(client, monkeypatch, capsys):
    from chalicelib.route_sharing import keys

    def broken(phone_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(keys, "sharing_keys", broken)
    answer = client.http.get("/order-route-sharing/v1/sharing_keys", headers={"X-YaTaxi-PhoneId": "p"})
    assert_error(answer, 500, "internal_error")
    assert b"boom" not in answer.body
    assert '"event": "http.unhandled_error"' in capsys.readouterr().out


def test_configs_read_default_then_stored_value(client):
    name = "order_route_sharing_keep_after_finish_hours"
    first = client.http.get(f"/internal/v1/configs/{name}").json_body
    assert first["value"] == 24 and first["is_default"] is True
    put = client.http.put(f"/internal/v1/configs/{name}", headers=JSON, body='{"value": 48}')
    assert put.status_code == 200 and put.json_body["value"] == 48
    assert client.http.get(f"/internal/v1/configs/{name}").json_body == {**first, "value": 48, "is_default": False}


def test_config_value_is_validated_against_its_schema(client):
    name = "order_route_sharing_keep_after_finish_hours"
    assert_error(client.http.put(f"/internal/v1/configs/{name}", headers=JSON, body='{"value": "soon"}'),
                 400, "invalid_config_value")
    assert_error(client.http.put(f"/internal/v1/configs/{name}", headers=JSON, body='{"value": 0}'), 400)
    assert client.http.get(f"/internal/v1/configs/{name}").json_body["value"] == 24


def test_unknown_config_is_404(client):
    assert_error(client.http.get("/internal/v1/configs/no_such_config"), 404, "config_not_found")
    assert_error(client.http.put("/internal/v1/configs/no_such_config", headers=JSON, body='{"value": 1}'), 404)


def test_openapi_document_only_in_the_local_stage(client, monkeypatch):
    assert_error(client.http.get("/openapi.json"), 404)
    monkeypatch.setenv("APP_STAGE", "local")
    from chalicelib.core.settings import reload_settings

    reload_settings()
    answer = client.http.get("/openapi.json")
    assert answer.status_code == 200 and answer.json_body["openapi"].startswith("3.")
