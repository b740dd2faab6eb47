"""The deploy template (what `chalice package` builds, merged with chalicelib/infra.py) matches the code."""
from __future__ import annotations

import atexit
import functools
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from chalice.utils import to_cfn_resource_name

from app import app
from chalicelib.core import access
from chalicelib.core.storage import ttl_attribute_name
from chalicelib.infra import _all_tables
from local import stack as local_stack
from tests import iam
from tests.conftest import ROOT


@functools.cache
def package_prod() -> pathlib.Path:
    """`make package STAGE=prod`, the way the Makefile does it (once per test run, shared by the modules that
    need it): the directory with sam.json and the zip."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="taxi-package-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    # Without the bytecode step: tests/test_bytecode.py runs it on a copy, the step under test.
    _, zip_path = local_stack.package("prod", out, bytecode=False)
    return zip_path.parent


@pytest.fixture(scope="session")
def template():
    return json.loads((package_prod() / "sam.json").read_text())


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


def test_deployed_tables_survive_stack_deletion_and_gateway_errors_share_our_shape(template):
    for table in resources_of(template, "AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    responses = resources_of(template, "AWS::ApiGateway::GatewayResponse").values()
    assert {r["Properties"]["ResponseType"] for r in responses} >= {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses:
        body = response["Properties"]["ResponseTemplates"]["application/json"]
        assert '"code":' in body and '"message":' in body


# --- least privilege -----------------------------------------------------------------------------------

PROD_OPERATIONS = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]["operations"]


def function_names(template) -> dict[str, str]:
    """Template logical id -> Chalice function name (by handler string)."""
    by_handler = {"app.app": access.API_FUNCTION}
    by_handler.update({source.handler_string: source.name for source in app.event_sources})
    by_handler.update({auth.handler_string: auth.name for auth in app.builtin_auth_handlers})
    return {logical_id: by_handler[f["Properties"]["Handler"]]
            for logical_id, f in resources_of(template, "AWS::Serverless::Function").items()}


def role_statements(template, function: dict) -> list[dict]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return iam.statements_of(template["Resources"][role_id])


def expected_permissions(logical_id: str, name: str) -> set:
    """What a function may do, worked out from its grant and the handler alone."""
    grant = access.grant_for(name, app)
    assert grant is not None, f"{name} has no grant"
    expected = {(action, f"log-group//aws/lambda/${{AWS::StackName}}-{logical_id}:*")
                for action in ("logs:CreateLogStream", "logs:PutLogEvents")}
    expected |= {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
    for model in grant.read:
        table = model.Meta.table_name
        expected |= {(action, f"table/{table}") for action in access.TABLE_READ_ACTIONS}
        expected |= {("dynamodb:Query", f"table/{table}/index/{index['index_name']}")
                     for index in model._get_schema()["global_secondary_indexes"]}
    for model in grant.write:
        expected |= {(action, f"table/{model.Meta.table_name}") for action in access.TABLE_WRITE_ACTIONS}
    expected |= {(action, f"queue/{queue}") for queue in grant.send for action in access.QUEUE_SEND_ACTIONS}
    expected |= {("ssm:GetParameter", "parameter" + p.replace("{stage}", "prod")) for p in grant.parameters}
    expected |= {("secretsmanager:GetSecretValue", "secret/" + s.replace("{stage}", "prod")) for s in grant.secrets}
    for source in app.event_sources:
        if source.name != name:
            continue
        if getattr(source, "queue", None):
            expected |= {(action, f"queue/{source.queue}") for action in access.QUEUE_CONSUME_ACTIONS}
        if hasattr(source, "schedule_expression"):
            expected.add(("sqs:SendMessage", f"queue/{name}_failures"))
    return expected


def test_every_function_and_route_module_declares_its_grant():
    assert access.missing_grants(app) == [], "declare them in chalicelib/<service>/access.py"


def test_a_function_can_touch_exactly_what_it_declares(template):
    names = function_names(template)
    assert access.API_FUNCTION in names.values() and len(names) >= 5
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        granted = iam.allowed(template["Resources"], role_statements(template, function))
        assert granted == expected_permissions(logical_id, names[logical_id]), logical_id


def test_tables_are_writable_only_by_the_functions_that_declare_them(template):
    """E.g. the picker updater cannot rewrite route sharing keys, and no function but the API writes configs."""
    writers: dict[str, set[str]] = {}
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        for action, resource in iam.allowed(template["Resources"], role_statements(template, function)):
            if action == "dynamodb:PutItem":
                writers.setdefault(resource, set()).add(logical_id)
    assert writers["table/route_sharing_keys"] <= {"APIHandler", "SaveSharingKeys", "FinishSharedOrder"}
    assert "PickerOrdersUpdater" not in writers["table/route_sharing_keys"]
    assert writers["table/configs"] == {"APIHandler"}
    authorizers = {to_cfn_resource_name(auth.name) for auth in app.builtin_auth_handlers}
    assert not any(authorizers & functions for functions in writers.values())


def _service_of(resource: str) -> str | None:
    for prefix, service in (("table/", "dynamodb"), ("queue/", "sqs"), ("log-group/", "logs"),
                            ("parameter/", "ssm"), ("secret/", "secretsmanager")):
        if resource.startswith(prefix):
            return service
    return None


def test_no_policy_has_a_wildcard_that_spans_services(template):
    roles = {**resources_of(template, "AWS::IAM::Role"), **resources_of(template, "AWS::IAM::Policy")}
    assert roles
    for role_id, role in roles.items():
        properties = role["Properties"]
        documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        assert not properties.get("ManagedPolicyArns"), role_id
        for statement in (s for document in documents for s in document["Statement"]):
            assert statement["Effect"] == "Allow", (role_id, statement)
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), (role_id, actions)
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in (iam.resolve(template["Resources"], r) for r in resources):
                if resource == "*":
                    # X-Ray's write actions take no resource: "*" is the only form AWS accepts for them.
                    assert set(actions) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, (role_id, actions)
                    continue
                service = _service_of(resource)
                assert service and all(action.split(":")[0] == service for action in actions), (role_id, resource)
                if service in ("dynamodb", "sqs"):
                    assert "*" not in resource, (role_id, resource)


def test_a_function_unknown_to_the_generator_is_denied_everything():
    """Chalice fills every role from .chalice/policy-base.json before the merge replaces it: deny all."""
    base = json.loads((ROOT / ".chalice" / "policy-base.json").read_text())
    assert [s["Effect"] for s in base["Statement"]] == ["Deny"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False and config["iam_policy_file"] == "policy-base.json"
    assert all("iam_policy_file" not in stage for stage in config["stages"].values())


# --- operations ----------------------------------------------------------------------------------------

def _alarms(template) -> list[dict]:
    return [a["Properties"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values()]


def _dimension(alarm: dict, name: str):
    return next((d["Value"] for d in alarm["Dimensions"] if d["Name"] == name), None)


def test_every_function_is_traced_and_logs_to_its_own_group_with_the_stage_retention(template):
    groups = resources_of(template, "AWS::Logs::LogGroup")
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        assert function["Properties"]["Tracing"] == "Active", logical_id
        assert function["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-" + logical_id}
        mine = [g["Properties"] for g in groups.values()
                if g["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${%s}" % logical_id}]
        assert len(mine) == 1, logical_id
        assert mine[0]["RetentionInDays"] == PROD_OPERATIONS["log_retention_days"] == 30


def test_the_api_stage_is_traced_throttled_and_logs_json(template):
    api = template["Resources"]["RestAPI"]["Properties"]
    assert api["TracingEnabled"] is True
    [default] = [m for m in api["MethodSettings"] if m["HttpMethod"] == "*" and m["ResourcePath"] == "/*"]
    assert default["ThrottlingRateLimit"] == PROD_OPERATIONS["api_throttling_rate"]
    assert default["ThrottlingBurstLimit"] == PROD_OPERATIONS["api_throttling_burst"]
    log_group = api["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == 30
    line = json.loads(api["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "latencyMs", "resource"} <= set(line)
    assert not any("querystring" in str(v).lower() or "$input" in str(v) for v in line.values())


def test_every_alarm_notifies_the_one_topic(template):
    target = {"Fn::If": ["UseExistingAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}
    for alarm in _alarms(template):
        assert alarm["AlarmActions"] == [target], alarm["AlarmDescription"]
    assert set(template["Parameters"]) >= {"AlarmTopicArn", "AlarmEmail"}
    topic = template["Resources"]["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic" and topic["Condition"] == "CreateAlarmTopic"


def test_alarms_watch_every_dlq_queue_function_schedule_and_the_api(template):
    alarms = _alarms(template)
    queues = {r["Properties"]["QueueName"]: r["Properties"] for r in resources_of(template, "AWS::SQS::Queue").values()}
    dead_letter = {template["Resources"][q["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
                   ["QueueName"] for q in queues.values() if "RedrivePolicy" in q}
    dead_letter |= {name for name in queues if name.endswith("_failures")}
    main = {name for name, q in queues.items() if "RedrivePolicy" in q}
    assert dead_letter and main
    for queue in dead_letter:
        [alarm] = [a for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
                   and _dimension(a, "QueueName") == queue]
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    for queue in main:
        [alarm] = [a for a in alarms if a["MetricName"] == "ApproximateAgeOfOldestMessage"
                   and _dimension(a, "QueueName") == queue]
        assert alarm["Threshold"] == PROD_OPERATIONS["queue_age_alarm_seconds"]
    names = function_names(template)
    for logical_id in names:
        for metric in ("Errors", "Throttles"):
            assert [a for a in alarms if a["MetricName"] == metric
                    and _dimension(a, "FunctionName") == {"Ref": logical_id}], (logical_id, metric)
    schedules = [logical_id for logical_id, f in resources_of(template, "AWS::Serverless::Function").items()
                 if any(e["Type"] == "Schedule" for e in f["Properties"].get("Events", {}).values())]
    assert schedules
    for logical_id in schedules:
        [stopped] = [a for a in alarms if a["MetricName"] == "Invocations"
                     and _dimension(a, "FunctionName") == {"Ref": logical_id}]
        assert stopped["ComparisonOperator"] == "LessThanThreshold" and stopped["Threshold"] == 1
        assert stopped["TreatMissingData"] == "breaching"
    api = [a for a in alarms if a["Namespace"] == "AWS/ApiGateway"]
    assert {(a["MetricName"], a.get("Statistic") or a.get("ExtendedStatistic")) for a in api} == \
        {("5XXError", "Average"), ("Latency", "p99")}
    latency = next(a for a in api if a["MetricName"] == "Latency")
    assert latency["Threshold"] == PROD_OPERATIONS["api_p99_alarm_ms"]
    assert all(_dimension(a, "ApiName") == template["Resources"]["RestAPI"]["Properties"]["Name"] for a in api)


def test_failed_schedule_runs_go_to_an_on_failure_queue(template):
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        events = [e for e in function["Properties"].get("Events", {}).values() if e["Type"] == "Schedule"]
        if not events:
            assert "EventInvokeConfig" not in function["Properties"], logical_id
            continue
        on_failure = function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        queue_id = on_failure["Destination"]["Fn::GetAtt"][0]
        assert on_failure["Type"] == "SQS" and template["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"
        assert all(e["Properties"]["DeadLetterConfig"]["Arn"] == on_failure["Destination"] for e in events)
        policies = [p["Properties"] for p in resources_of(template, "AWS::SQS::QueuePolicy").values()
                    if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
        assert policies and policies[0]["PolicyDocument"]["Statement"][0]["Principal"] == \
            {"Service": "events.amazonaws.com"}


def test_the_dashboard_shows_every_function_and_queue(template):
    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    json.loads(body)
    for logical_id in function_names(template):
        assert "${%s}" % logical_id in body, logical_id
    for queue in resources_of(template, "AWS::SQS::Queue").values():
        assert f'"{queue["Properties"]["QueueName"]}"' in body
    assert '"TaxiDelivery"' in body or "{TaxiDelivery,service}" in body


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_parameter_a_stage_names_is_one_its_functions_are_granted(stage):
    """KRT_CREDENTIALS_PARAMETER, CARGO_TOKEN_PARAMETER...: a name the grants do not cover would be refused
    by IAM in that stage only (the grants name each parameter per stage, never across stages)."""
    access.load_all()
    granted = {name.replace("{stage}", stage)
               for grant in (*access.FUNCTION_GRANTS.values(), *access.ROUTE_GRANTS.values())
               for name in grant.parameters}
    assert not any("*" in name for name in granted), granted
    variables = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage]["environment_variables"]
    named = {value for key, value in variables.items() if key.endswith("_PARAMETER")}
    assert named and named <= granted, named - granted
