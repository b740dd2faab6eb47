"""The gateway's guards in the template: identity validation, resource policy, throttles, WAF, alarms on abuse."""
from __future__ import annotations

import fnmatch
import json
import re
import secrets

import pytest

from app import app
from chalicelib.core import authorizers
from chalicelib.core.api import DRIVER, EATS_USER, INTERNAL, PUBLIC, ROUTES
from deploy import edge
from deploy.template import build, stage_lambda_timeout, stage_operations
from tests.codedispatch.conftest import AREA as CODES_AREA, assign as codedispatch_assign, cd, created_code  # noqa: F401
from tests.core.test_metrics import emf_records
from tests.conftest import ROOT
from tests.packaged import PROD_OPERATIONS, alarms_of, resources_of, template  # noqa: F401


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
    [alarm] = [a for a in alarms_of(template) if "Metrics" in a]
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
    [alarm] = [a for a in alarms_of(template) if "Metrics" in a]
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
