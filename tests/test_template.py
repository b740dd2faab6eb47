"""The deploy template (what `chalice package` builds, merged with deploy/template.py) matches the code: tables,
queues, schedules, handlers. The roles: tests/test_template_access.py; alarms, logs, dashboard:
tests/test_template_operations.py; the gateway's guards: tests/test_template_edge.py; the per-service API
functions: tests/test_api_functions.py."""
from __future__ import annotations

import subprocess
import sys

from app import app
from chalicelib.core.storage import ttl_attribute_name
from deploy.template import _all_tables
from tests.conftest import ROOT
from tests.packaged import resources_of, template  # noqa: F401


def test_every_table_has_the_models_keys_indexes_and_ttl(template):
    tables = {r["Properties"]["TableName"]: r["Properties"]
              for r in resources_of(template, "AWS::DynamoDB::Table").values()}
    models = _all_tables()
    assert set(tables) == {model.Meta.table_name for model in models}
    for model in models:
        table = tables[model.Meta.table_name]
        assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == \
            {(k["AttributeName"], k["KeyType"]) for k in model._get_schema()["key_schema"]}
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == \
            {i["index_name"] for i in model._get_schema()["global_secondary_indexes"]}
        ttl = ttl_attribute_name(model)
        assert table.get("TimeToLiveSpecification") == ({"AttributeName": ttl, "Enabled": True} if ttl else None)
        assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_every_queue_consumer_reports_partial_failures_and_has_a_dlq(template):
    queues = {r["Properties"]["QueueName"]: r["Properties"] for r in resources_of(template, "AWS::SQS::Queue").values()}
    functions = resources_of(template, "AWS::Serverless::Function")
    consumers = [s for s in app.event_sources if getattr(s, "queue", None)]
    assert consumers
    for source in consumers:
        function = next(f for f in functions.values() if f["Properties"]["Handler"] == source.handler_string)
        events = [e for e in function["Properties"]["Events"].values() if e["Type"] == "SQS"]
        assert len(events) == 1
        assert events[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert events[0]["Properties"]["BatchSize"] >= 1
        queue = queues[source.queue]
        assert queue["VisibilityTimeout"] >= function["Properties"]["Timeout"]  # AWS refuses less
        dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert template["Resources"][dlq_id]["Properties"]["QueueName"] == source.queue + "_dlq"
        assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3


def test_every_schedule_is_in_the_template(template):
    schedules = [s for s in app.event_sources if type(s).__name__ == "CloudWatchEventConfig"]
    functions = resources_of(template, "AWS::Serverless::Function")
    for source in schedules:
        function = next(f for f in functions.values() if f["Properties"]["Handler"] == source.handler_string)
        assert any(e["Type"] == "Schedule" for e in function["Properties"]["Events"].values())


def test_every_handler_imports_on_its_own_without_app_py(template):
    handlers = sorted({f["Properties"]["Handler"] for f in resources_of(template, "AWS::Serverless::Function").values()})
    assert handlers and "app.app" not in handlers  # no function runs the whole app
    script = (
        "import importlib, sys\n"
        f"for handler in {handlers!r}:\n"
        "    module, name = handler.rsplit('.', 1)\n"
        "    assert callable(getattr(importlib.import_module(module), name)), handler\n"
        "assert 'app' not in sys.modules, 'a handler module imported app.py'\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True)


def test_deployed_tables_survive_stack_deletion_and_gateway_errors_share_our_shape(template):
    for table in resources_of(template, "AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    responses = resources_of(template, "AWS::ApiGateway::GatewayResponse").values()
    assert {r["Properties"]["ResponseType"] for r in responses} >= {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses:
        body = response["Properties"]["ResponseTemplates"]["application/json"]
        assert '"code":' in body and '"message":' in body
