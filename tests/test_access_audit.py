"""The in-process IAM audit (tests/access_audit.py) fails a handler that touches what its grant does not cover,
and passes the handlers as they are. `make test` runs the whole suite under the audit; these tests prove the
audit itself, whether or not the plugin is loaded."""
from __future__ import annotations

import datetime as dt

from app import app
from chalicelib.core import clock
from tests import access_audit, iam
from tests.conftest import failed_ids, sqs_event
from tests.route_sharing.test_tasks import SAVE, save_body

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)


def _new_violations(audit, before: int) -> list[str]:
    found = audit.violations[before:]
    del audit.violations[before:]  # expected here: not a failure of this test
    return found


def test_a_handler_writing_a_table_it_did_not_declare_fails_like_iam_would(client, monkeypatch):
    audit = access_audit.install(app)
    # As if save_sharing_keys' access.py had forgotten route_sharing_phone_keys.
    narrowed = {p for p in audit.allowed["save_sharing_keys"] if "route_sharing_phone_keys" not in p[1]}
    monkeypatch.setitem(audit.allowed, "save_sharing_keys", narrowed)
    clock.freeze(T0)
    before = len(audit.violations)
    answer = client.lambda_.invoke("save_sharing_keys", sqs_event(client, SAVE, [save_body("o-audit")])).payload
    found = _new_violations(audit, before)
    assert found and all("save_sharing_keys" in v and "route_sharing_phone_keys" in v for v in found)
    assert failed_ids(answer) == ["msg-0"]  # refused as on AWS: the message is retried, then reaches the DLQ


def test_a_route_using_a_table_its_blueprint_did_not_declare_fails(client, monkeypatch):
    """A route module may use only its own blueprint's grant, even where its function's role would allow more."""
    audit = access_audit.install(app)
    module = "chalicelib.platform.api"
    monkeypatch.setitem(audit.route_allowed, module,
                        {p for p in audit.route_allowed[module] if p[1] != "table/configs"})
    before = len(audit.violations)
    answer = client.http.get("/internal/v1/configs/order_route_sharing_keep_after_finish_hours")
    found = _new_violations(audit, before)
    assert answer.status_code == 500
    assert found and "routes of chalicelib.platform.api" in found[0] and "table/configs" in found[0]


def test_a_route_reading_a_config_it_did_not_declare_fails(client, monkeypatch):
    """Its API function would not have read it while starting: the first request would pay for it."""
    audit = access_audit.install(app)
    route = "POST /order-route-sharing/v1/cargo_claims"
    assert audit.route_configs[route] == {"order_route_sharing_max_order_days"}
    monkeypatch.setitem(audit.route_configs, route, frozenset())  # as if the route had forgotten it
    clock.freeze(T0)
    before = len(audit.violations)
    answer = client.http.post("/order-route-sharing/v1/cargo_claims", headers={"Content-Type": "application/json"},
                              body='{"claim_id": "claim-audit", "phone_ids": ["phone-b"]}')
    found = _new_violations(audit, before)
    assert answer.status_code == 200  # not refused: only the test fails
    assert found == [f"{route} reads config order_route_sharing_max_order_days without declaring it "
                     "(route(..., configs=...))"]


def test_the_handlers_as_declared_pass_the_audit(client):
    audit = access_audit.install(app)
    clock.freeze(T0)
    before = len(audit.violations)
    answer = client.lambda_.invoke("save_sharing_keys", sqs_event(client, SAVE, [save_body("o-ok")])).payload
    assert failed_ids(answer) == []
    assert client.http.get("/internal/v1/configs/order_route_sharing_keep_after_finish_hours").status_code == 200
    assert audit.violations[before:] == []
    seen = audit.seen["save_sharing_keys"]
    assert ("dynamodb:PutItem", "table/route_sharing_phone_keys") in seen  # the transaction, item by item


def test_calls_are_mapped_to_what_iam_checks():
    assert iam.needed("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "a"}}, {"ConditionCheck": {"TableName": "b"}}]}) == \
        {("dynamodb:PutItem", "table/a"), ("dynamodb:ConditionCheckItem", "table/b")}
    assert iam.needed("dynamodb", "Query", {"TableName": "t", "IndexName": "i"}) == {("dynamodb:Query", "table/t/index/i")}
    assert iam.needed("sqs", "SendMessageBatch", {"QueueUrl": "http://127.0.0.1:4566/000000000000/q1"}) == \
        {("sqs:SendMessage", "queue/q1")}
    assert iam.needed("sts", "GetCallerIdentity", {}) == {("sts:GetCallerIdentity", "*")}
    granted = {("ssm:GetParameter", "parameter/app/*/secret"), ("dynamodb:GetItem", "table/a")}
    assert iam.denied(granted, {("ssm:GetParameter", "parameter/app/prod/secret")}) == set()
    assert iam.denied(granted, {("dynamodb:GetItem", "table/ab")}) == {("dynamodb:GetItem", "table/ab")}
    assert iam.denied(granted, {("dynamodb:Scan", "table/a")}) == {("dynamodb:Scan", "table/a")}
