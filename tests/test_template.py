"""The deploy template (what `chalice package` builds, merged with deploy/template.py) matches the code.

The per-service API functions have their own tests: tests/test_api_functions.py."""
from __future__ import annotations

import atexit
import fnmatch
import functools
import json
import pathlib
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

from chalice.utils import to_cfn_resource_name

from app import app
from chalicelib.core import access, authorizers
from chalicelib.core.api import DRIVER, EATS_USER, INTERNAL, PUBLIC, ROUTES
from chalicelib.core.storage import ttl_attribute_name
from deploy import edge, grants
from deploy.package import package
from deploy.roles import Function, functions_of
from deploy.template import _all_tables, build, stage_lambda_timeout, stage_operations
from tests import iam
from tests.codedispatch.conftest import AREA as CODES_AREA, assign as codedispatch_assign, cd, created_code  # noqa: F401
from tests.core.test_metrics import emf_records
from tests.conftest import ROOT


@functools.cache
def package_prod() -> pathlib.Path:
    """`make package STAGE=prod`, the way the Makefile does it (once per test run, shared by the modules that
    need it): the directory with sam.json and the zip."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="taxi-package-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    # Without the bytecode step: tests/test_bytecode.py runs it on a copy, the step under test.
    _, zip_path = package("prod", out, bytecode=False)
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


# --- least privilege -----------------------------------------------------------------------------------

PROD_OPERATIONS = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]["operations"]


def function_names(template) -> dict[str, Function]:
    """Template logical id -> the app's function (each event handler and authorizer by its handler string, each
    API function by the route modules its environment names): every function of the template is one of the app's."""
    by_handler = {source.handler_string: source.name for source in app.event_sources}
    by_handler.update({auth.handler_string: auth.name for auth in app.builtin_auth_handlers})
    functions = {function.logical_id: function for function in functions_of(app)}
    found = {}
    for logical_id, resource in resources_of(template, "AWS::Serverless::Function").items():
        function = functions[logical_id]
        if function.kind == "api":
            variables = resource["Properties"]["Environment"]["Variables"]
            assert tuple(variables["API_ROUTE_MODULES"].split(",")) == function.route_modules, logical_id
        else:
            assert by_handler[resource["Properties"]["Handler"]] == function.name, logical_id
        found[logical_id] = function
    assert set(found) == set(functions)
    return found


def role_statements(template, function: dict) -> list[dict]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return iam.statements_of(template["Resources"][role_id])


def expected_permissions(logical_id: str, function: Function) -> set:
    """What a function may do, worked out from its grant and the handler alone."""
    name = function.name
    grant = grants.grant_for(function, app)
    assert grant is not None, f"{name} has no grant"
    expected = {(action, f"log-group//aws/lambda/${{AWS::StackName}}-{logical_id}:*")
                for action in ("logs:CreateLogStream", "logs:PutLogEvents")}
    expected |= {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
    for model in grant.read:
        table = model.Meta.table_name
        expected |= {(action, f"table/{table}") for action in grants.TABLE_READ_ACTIONS}
        expected |= {("dynamodb:Query", f"table/{table}/index/{index['index_name']}")
                     for index in model._get_schema()["global_secondary_indexes"]}
    for model in grant.write:
        expected |= {(action, f"table/{model.Meta.table_name}") for action in grants.TABLE_WRITE_ACTIONS}
    expected |= {(action, f"queue/{queue}") for queue in grant.send for action in grants.QUEUE_SEND_ACTIONS}
    expected |= {("ssm:GetParameter", "parameter" + p.replace("{stage}", "prod")) for p in grant.parameters}
    expected |= {("secretsmanager:GetSecretValue", "secret/" + s.replace("{stage}", "prod")) for s in grant.secrets}
    for source in app.event_sources:
        if source.name != name:
            continue
        if getattr(source, "queue", None):
            expected |= {(action, f"queue/{source.queue}") for action in grants.QUEUE_CONSUME_ACTIONS}
        if hasattr(source, "schedule_expression"):
            expected.add(("sqs:SendMessage", f"queue/{name}_failures"))
    return expected


def test_every_function_and_route_module_declares_its_grant():
    assert grants.missing_grants(app) == [], "declare them in chalicelib/<service>/access.py"


def test_a_function_can_touch_exactly_what_it_declares(template):
    names = function_names(template)
    assert "RouteSharingApi" in names and len(names) >= 5
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        granted = iam.allowed(template["Resources"], role_statements(template, function))
        assert granted == expected_permissions(logical_id, names[logical_id]), logical_id


def test_tables_are_writable_only_by_the_functions_that_declare_them(template):
    """E.g. the picker updater cannot rewrite route sharing keys, and no function but the platform's API function
    writes configs."""
    writers: dict[str, set[str]] = {}
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        for action, resource in iam.allowed(template["Resources"], role_statements(template, function)):
            if action == "dynamodb:PutItem":
                writers.setdefault(resource, set()).add(logical_id)
    assert writers["table/route_sharing_keys"] <= {"RouteSharingApi", "SaveSharingKeys", "FinishSharedOrder"}
    assert "PickerOrdersUpdater" not in writers["table/route_sharing_keys"]
    assert writers["table/configs"] == {"PlatformApi"}
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
    alarms = [alarm for alarm in _alarms(template) if "MetricName" in alarm]  # one metric each (not a query)
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
    grants.load_all()
    granted = {name.replace("{stage}", stage)
               for grant in (*access.FUNCTION_GRANTS.values(), *access.ROUTE_GRANTS.values())
               for name in grant.parameters}
    assert not any("*" in name for name in granted), granted
    variables = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage]["environment_variables"]
    named = {value for key, value in variables.items() if key.endswith("_PARAMETER")}
    assert named and named <= granted, named - granted


# --- edge limits ---------------------------------------------------------------------------------------

def _security_definitions(template) -> dict:
    return template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["securityDefinitions"]


def test_each_session_authorizer_refuses_a_malformed_header_at_the_gateway(template):
    """API Gateway matches the header against the authorizer's identityValidationExpression and answers 401
    without running the Lambda; the expression is the authorizers' own pattern, not a copy of it."""
    definitions = _security_definitions(template)
    assert {auth.name for auth in app.builtin_auth_handlers} == set(authorizers.HEADER_PATTERNS) == \
        {auth.name for auth in authorizers.FOR_KIND.values()}
    headers = {DRIVER: authorizers.DRIVER_SESSION_HEADER, EATS_USER: authorizers.EATS_SESSION_HEADER}
    for kind, auth in authorizers.FOR_KIND.items():
        definition = definitions[auth.name]
        assert definition["name"] == headers[kind]
        assert definition["x-amazon-apigateway-authorizer"]["type"] == "token"
        expression = definition["x-amazon-apigateway-authorizer"]["identityValidationExpression"]
        assert expression == authorizers.SESSION_HEADER_PATTERN
        for token in (secrets.token_urlsafe(24), "Bearer " + secrets.token_urlsafe(32), "a" * 512):
            assert re.fullmatch(expression, token), token  # what the session services issue passes
        for header in ("", "x", "short", "a" * 513, "a b c d e f g h", "ü" * 10, "Bearer ", "token\\nInjected"):
            assert not re.fullmatch(expression, header), header


def _policy_statements(template) -> list[dict]:
    return template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-policy"]["Statement"]


def _policy_decision(statements: list[dict], resource: str, principal_arn: str, account: str, *,
                     allowed_callers: list[str], owner: str) -> str:
    """API Gateway's verdict on one call from the resource policy alone: an explicit Deny wins, then an Allow."""
    values = {"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": account}

    def resolve(value):
        if value == {"Ref": edge.INTERNAL_CALLERS_PARAMETER}:
            return allowed_callers
        if value == {"Ref": "AWS::AccountId"}:
            return [owner]
        return value if isinstance(value, list) else [value]

    def condition_holds(condition: dict) -> bool:
        for operator, keys in condition.items():
            for key, expected in keys.items():
                actual, patterns = values[key], resolve(expected)
                if operator == "ArnNotLike" and any(fnmatch.fnmatchcase(actual, p) for p in patterns):
                    return False
                if operator == "StringNotEquals" and actual in patterns:
                    return False
                assert operator in ("ArnNotLike", "StringNotEquals"), operator
        return True

    def applies(statement: dict) -> bool:
        assert statement["Principal"] == "*" and statement["Action"] == "execute-api:Invoke"
        return any(fnmatch.fnmatchcase(resource, pattern) for pattern in resolve(statement["Resource"])) \
            and condition_holds(statement.get("Condition", {}))

    effects = {statement["Effect"] for statement in statements if applies(statement)}
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else "ImplicitDeny"


def test_internal_routes_may_be_called_only_by_the_named_roles_of_the_account(template):
    """The resource policy, from the route kinds: every INTERNAL route refuses a caller that is not a named role
    of this account, whatever its own IAM policy says; every other route is open to all behind its authoriser."""
    parameter = template["Parameters"][edge.INTERNAL_CALLERS_PARAMETER]
    assert parameter["Type"] == "CommaDelimitedList" and "Default" not in parameter  # a deploy must name them
    statements = _policy_statements(template)
    owner, elsewhere = "123456789012", "999999999999"
    allowed = [f"arn:aws:iam::{owner}:role/cargo-orders", "arn:aws:iam::*:role/picker-*"]
    callers = {  # principal ARN, its account, may it call internal routes
        "named role": (f"arn:aws:iam::{owner}:role/cargo-orders", owner, True),
        "named by a pattern": (f"arn:aws:iam::{owner}:role/picker-orders", owner, True),
        "another role of the account": (f"arn:aws:iam::{owner}:role/api-handler", owner, False),
        "a user of the account": (f"arn:aws:iam::{owner}:user/admin", owner, False),
        "the pattern, from another account": (f"arn:aws:iam::{elsewhere}:role/picker-orders", elsewhere, False),
        "anonymous": ("", "", False),
    }
    assert {route.kind for route in ROUTES} == {INTERNAL, PUBLIC, DRIVER, EATS_USER}
    for route in ROUTES:
        resource = f"execute-api:/api/{route.method}" + re.sub(r"\{[^}]+\}", "value", route.path)
        for who, (arn, account, internal_caller) in callers.items():
            decision = _policy_decision(statements, resource, arn, account, allowed_callers=allowed, owner=owner)
            expected = "Allow" if route.kind != INTERNAL or internal_caller else "Deny"
            assert decision == expected, (route.method, route.path, who)


def test_the_public_routes_have_their_own_tighter_throttle(template):
    settings = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    [stage_wide] = [m for m in settings if m["ResourcePath"] == "/*"]
    own = {(m["HttpMethod"], m["ResourcePath"].replace("~1", "/").replace("~0", "~")[1:]): m
           for m in settings if m["ResourcePath"] != "/*"}
    public = {(route.method, route.path) for route in ROUTES if route.kind == PUBLIC}
    assert {"/4.0/sharedroute/info", "/4.0/sharedroute/track"} <= {path for _, path in public}
    assert set(own) == public
    for setting in own.values():
        assert setting["ResourcePath"].startswith("/~1")  # CloudFormation's escaped form
        assert setting["ThrottlingRateLimit"] == PROD_OPERATIONS["public_route_throttling_rate"] \
            < stage_wide["ThrottlingRateLimit"]
        assert setting["ThrottlingBurstLimit"] == PROD_OPERATIONS["public_route_throttling_burst"] \
            < stage_wide["ThrottlingBurstLimit"]


def test_a_waf_rate_rule_per_client_ip_guards_the_api_stage_and_answers_in_the_error_shape(template):
    [(acl_id, acl)] = resources_of(template, "AWS::WAFv2::WebACL").items()
    properties = acl["Properties"]
    assert properties["Scope"] == "REGIONAL" and properties["DefaultAction"] == {"Allow": {}}
    [rule] = properties["Rules"]
    assert rule["Statement"] == {"RateBasedStatement": {
        "AggregateKeyType": "IP", "Limit": PROD_OPERATIONS["waf_rate_limit"],
        "EvaluationWindowSec": PROD_OPERATIONS["waf_rate_window_seconds"]}}
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = properties["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    assert set(json.loads(body["Content"])) == {"code", "message"}
    assert {"Name": "Retry-After", "Value": str(PROD_OPERATIONS["waf_rate_window_seconds"])} in \
        response["ResponseHeaders"]
    [association] = resources_of(template, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("::/restapis/${RestAPI}/stages/${RestAPI.Stage}")  # this API's stage, once it exists


def test_an_alarm_fires_when_any_one_areas_wrong_codes_exceed_the_stage_threshold(template):
    [alarm] = [a for a in _alarms(template) if "Metrics" in a]
    [query] = alarm["Metrics"]
    expression = query["Expression"]
    assert re.fullmatch(r'SELECT SUM\(CodesWrong\) FROM SCHEMA\("TaxiDelivery", area_id, service\) '
                        r"WHERE service = 'codedispatch' GROUP BY area_id ORDER BY SUM\(\) DESC", expression)
    assert query["ReturnData"] is True and query["Period"] == PROD_OPERATIONS["wrong_codes_alarm_period_seconds"]
    assert alarm["Threshold"] == PROD_OPERATIONS["wrong_codes_alarm_per_area"]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["TreatMissingData"] == "notBreaching"


def test_the_local_stage_leaves_out_only_what_the_emulator_cannot_deploy(template):
    """ministack (the local stack's emulator) has no provisioner for the web ACL's association and takes no
    alarm on a query: the local template lacks those two, keeps every other edge limit, and prod has them all."""
    local = build("local", stage_lambda_timeout("local"), stage_operations("local"))
    prod = build("prod", stage_lambda_timeout("prod"), stage_operations("prod"))
    assert set(prod["Resources"]) <= set(template["Resources"])
    left_out = set(prod["Resources"]) - set(local["Resources"])
    assert left_out == set(edge.NOT_ON_THE_EMULATOR) == {"ApiWebAclAssociation", "CodedispatchWrongCodesPerAreaAlarm"}
    body = local["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["x-amazon-apigateway-policy"] == \
        template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-policy"]
    assert body["securityDefinitions"] == {name: {"x-amazon-apigateway-authorizer": {
        "identityValidationExpression": pattern}} for name, pattern in authorizers.HEADER_PATTERNS.items()}
    assert "ApiWebAcl" in local["Resources"]
    assert len(local["Resources"]["RestAPI"]["Properties"]["MethodSettings"]) == \
        len(template["Resources"]["RestAPI"]["Properties"]["MethodSettings"])
    # The local :8000 forwarder signs as the emulator's root: the local stack deploys without naming callers.
    assert local["Parameters"][edge.INTERNAL_CALLERS_PARAMETER]["Default"] == edge.LOCAL_INTERNAL_CALLER


def test_chalices_own_resource_policy_cannot_slip_in_beside_the_generated_one():
    """`api_gateway_policy_file` or a PRIVATE endpoint makes Chalice write its own policy into the swagger,
    which the merge would mix with ours: the build refuses them."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage in config["stages"]:
        edge.refuse_chalice_policy(config, stage)
    for bad in ({"api_gateway_policy_file": "policy.json"}, {"api_gateway_endpoint_type": "PRIVATE"}):
        with pytest.raises(ValueError, match="generated"):
            edge.refuse_chalice_policy({**config, **bad}, "prod")
        with pytest.raises(ValueError, match="generated"):
            edge.refuse_chalice_policy({"stages": {"prod": bad}}, "prod")


def test_the_wrong_codes_alarm_reads_the_metric_codedispatch_counts(template, cd, capsys):
    """The alarm's query names a metric by namespace, exact dimension set and value: a wrong code typed in
    codedispatch must be counted as exactly that, or the alarm watches nothing."""
    [alarm] = [a for a in _alarms(template) if "Metrics" in a]
    query = re.fullmatch(r'SELECT SUM\((?P<metric>\w+)\) FROM SCHEMA\("(?P<namespace>[^"]+)", (?P<dimensions>[^)]+)\) '
                         r"WHERE (?P<key>\w+) = '(?P<value>\w+)' GROUP BY (?P<group>\w+) .*",
                         alarm["Metrics"][0]["Expression"])
    code = created_code(cd, "order-wrong-codes")
    capsys.readouterr()
    assert codedispatch_assign(cd, "000000" if code != "000000" else "111111").status_code == 404
    [record] = [r for r in emf_records(capsys) if query["metric"] in r]
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == query["namespace"]
    assert set(directive["Dimensions"][0]) == set(query["dimensions"].split(", "))  # SCHEMA: exactly these
    assert record[query["key"]] == query["value"] and record[query["group"]] == CODES_AREA
