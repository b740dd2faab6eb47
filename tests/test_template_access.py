"""Least privilege: every function's role holds what its code declares, and nothing that spans services."""
from __future__ import annotations

import json

from chalice.utils import to_cfn_resource_name

from app import app
from deploy import grants
from deploy.roles import Function
from tests import iam
from tests.conftest import ROOT
from tests.packaged import function_names, resources_of, role_statements, template  # noqa: F401


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
