"""The deploy template (what `chalice package` builds, merged with chalicelib/infra.py) matches the code."""
from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys

import pytest

from app import app
from chalicelib.core.storage import ttl_attribute_name
from chalicelib.infra import _all_tables
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    resources = subprocess.run([sys.executable, "-m", "chalicelib.infra", "--stage", "prod"], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True).stdout
    (out / "resources.json").write_text(resources)
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    subprocess.run([chalice, "package", "--stage", "prod", "--merge-template", str(out / "resources.json"),
                    str(out / "pkg")], cwd=ROOT, env=env, check=True, capture_output=True)
    return json.loads((out / "pkg" / "sam.json").read_text())


def resources_of(template, kind):
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


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
    handlers = sorted({f["Properties"]["Handler"] for f in resources_of(template, "AWS::Serverless::Function").values()}
                      - {"app.app"})
    assert handlers
    script = (
        "import importlib, sys\n"
        f"for handler in {handlers!r}:\n"
        "    module, name = handler.rsplit('.', 1)\n"
        "    assert callable(getattr(importlib.import_module(module), name)), handler\n"
        "assert 'app' not in sys.modules, 'a handler module imported app.py'\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True)


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_the_stage_policy_covers_every_table_and_queue(template, stage):
    policy = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
    allowed = [arn for statement in policy["Statement"] for arn in
               ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"])]
    for table in resources_of(template, "AWS::DynamoDB::Table").values():
        name = table["Properties"]["TableName"]
        arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}"
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in allowed), name
        for index in table["Properties"].get("GlobalSecondaryIndexes", []):
            index_arn = f"{arn}/index/{index['IndexName']}"
            assert any(fnmatch.fnmatchcase(index_arn, pattern) for pattern in allowed), index_arn
    for queue in resources_of(template, "AWS::SQS::Queue").values():
        arn = f"arn:aws:sqs:us-east-1:123456789012:{queue['Properties']['QueueName']}"
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in allowed), arn


def test_deployed_tables_survive_stack_deletion_and_gateway_errors_share_our_shape(template):
    for table in resources_of(template, "AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    responses = resources_of(template, "AWS::ApiGateway::GatewayResponse").values()
    assert {r["Properties"]["ResponseType"] for r in responses} == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses:
        body = response["Properties"]["ResponseTemplates"]["application/json"]
        assert '"code":' in body and '"message":' in body
