"""Edge limits in the deploy template: what API Gateway and AWS WAF refuse before any Lambda of ours runs, and
the alarm on wrong order codes per area. Generated from the code like the rest (deploy/template.py):

- each session authorizer's `identityValidationExpression`: the header pattern of
  chalicelib/core/authorizers.py, so a malformed session header is a 401 from the gateway itself;
- a resource policy (`x-amazon-apigateway-policy`): the routes of kind INTERNAL (chalicelib/core/api.py
  ROUTES) may be called only by the roles of this account named in the stack parameter `InternalCallerRoleArns`;
  every other route stays open to all, behind its own authorisation;
- the routes of kind PUBLIC (no identity: the shared-route screens, /ping) get their own method throttling,
  tighter than the stage-wide one;
- a WAF web ACL with a per-client-IP rate-based rule, associated with the API stage, whose block answers 429
  in the app's error shape;
- an alarm when any one area's wrong order codes (EMF metric `CodesWrong`, dimensions `service`, `area_id`)
  exceed a threshold over a period: a Metrics Insights query grouped by area.

Stage settings (`.chalice/config.json`, `stages.<stage>.operations`; defaults below):
    public_route_throttling_rate / _burst   each PUBLIC route's requests per second and burst
    waf_rate_limit                          requests one client IP may make per window before WAF answers 429
    waf_rate_window_seconds                 that window: 60, 120, 300 or 600
    wrong_codes_alarm_per_area              wrong codes in one area per period above which the alarm fires
    wrong_codes_alarm_period_seconds        that period

The local stage (the emulator, ministack 1.5.33) leaves out what it cannot deploy: the web ACL's association
(no provisioner for AWS::WAFv2::WebACLAssociation) and the Metrics Insights alarm (its CloudFormation takes no
alarm with `Metrics`). Build time only: never imported by a Lambda.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

from chalicelib.core.identity import INTERNAL, PUBLIC
from chalicelib.core.metrics import NAMESPACE as METRICS_NAMESPACE

DEFAULTS = {
    "public_route_throttling_rate": 20,
    "public_route_throttling_burst": 40,
    "waf_rate_limit": 1000,
    "waf_rate_window_seconds": 300,
    "wrong_codes_alarm_per_area": 50,
    "wrong_codes_alarm_period_seconds": 600,
}
WAF_WINDOWS = (60, 120, 300, 600)  # what WAF's rate-based statement accepts

INTERNAL_CALLERS_PARAMETER = "InternalCallerRoleArns"
# The local :8000 forwarder signs with the emulator's test credentials, which it takes for the account's root.
LOCAL_INTERNAL_CALLER = "arn:aws:iam::000000000000:root"

WEB_ACL_ID = "ApiWebAcl"
WEB_ACL_ASSOCIATION_ID = "ApiWebAclAssociation"
RATE_LIMITED_BODY_KEY = "rate_limited"
RATE_LIMITED_BODY = json.dumps({"code": "rate_limited",
                                "message": "too many requests from this address; retry later"},
                               separators=(",", ":"))

# The wrong-code metric as chalicelib/codedispatch counts it (core.metrics: namespace, `service`, `area_id`).
WRONG_CODES_METRIC = "CodesWrong"
WRONG_CODES_SERVICE = "codedispatch"
AREA_DIMENSION = "area_id"
WRONG_CODES_ALARM_ID = "CodedispatchWrongCodesPerAreaAlarm"

# What the emulator cannot deploy: left out of the local stage only (README: "What is deployed").
NOT_ON_THE_EMULATOR = {
    WEB_ACL_ASSOCIATION_ID: "ministack has no provisioner for AWS::WAFv2::WebACLAssociation",
    WRONG_CODES_ALARM_ID: "ministack's CloudFormation takes no AWS::CloudWatch::Alarm with Metrics",
}


def _check(settings: dict) -> None:
    if settings["waf_rate_window_seconds"] not in WAF_WINDOWS:
        raise ValueError(f"waf_rate_window_seconds must be one of {WAF_WINDOWS}")
    if not 10 <= settings["waf_rate_limit"] <= 2_000_000_000:
        raise ValueError("waf_rate_limit must be 10 .. 2e9 (WAF's range)")
    if settings["wrong_codes_alarm_period_seconds"] % 60 or not \
            60 <= settings["wrong_codes_alarm_period_seconds"] <= 3 * 3600:
        raise ValueError("wrong_codes_alarm_period_seconds: whole minutes, at most 3 h (Metrics Insights alarms)")


def authorizer_identity_validation(app) -> dict:
    """Each built-in authorizer's identityValidationExpression, merged into the swagger Chalice generates."""
    from chalicelib.core import authorizers

    definitions = {}
    for auth in app.builtin_auth_handlers:
        pattern = authorizers.HEADER_PATTERNS.get(auth.name)
        if pattern is None:
            raise ValueError(f"authorizer {auth.name} has no header pattern (chalicelib/core/authorizers.py)")
        definitions[auth.name] = {"x-amazon-apigateway-authorizer": {"identityValidationExpression": pattern}}
    return {"securityDefinitions": definitions}


def execute_api_resource(method: str, path: str) -> str:
    """A route as a resource of the API's own policy: any stage, its method, a path parameter as `*`."""
    return f"execute-api:/*/{method}" + re.sub(r"\{[^/}]+\}", "*", path)


def resource_policy(routes: Iterable, stage: str) -> dict:
    """The API's resource policy and its stack parameter. Everyone may invoke (each route keeps its own
    authorisation: none, a session authorizer or SigV4); the internal routes deny every principal that is not
    one of the named roles of this account, whatever its own IAM policy says (a Deny in the resource policy
    wins). A named role needs no IAM permission of its own: the Allow here covers it."""
    internal = sorted({execute_api_resource(r.method, r.path) for r in routes if r.kind == INTERNAL})
    parameter: dict[str, Any] = {
        "Type": "CommaDelimitedList",
        "Description": "ARNs of this account's roles that may call the internal routes (SigV4): cargo-orders, "
                       "the picker service, order processing...; wildcards as in ArnLike",
    }
    if stage == "local":
        parameter["Default"] = LOCAL_INTERNAL_CALLER
    statements: list[dict] = [{
        "Sid": "EveryRouteBehindItsOwnAuthorisation", "Effect": "Allow", "Principal": "*",
        "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
    }]
    if internal:
        statements += [{
            "Sid": "InternalRoutesOnlyForTheNamedRoles", "Effect": "Deny", "Principal": "*",
            "Action": "execute-api:Invoke", "Resource": internal,
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": {"Ref": INTERNAL_CALLERS_PARAMETER}}},
        }, {
            "Sid": "InternalRoutesOnlyFromThisAccount", "Effect": "Deny", "Principal": "*",
            "Action": "execute-api:Invoke", "Resource": internal,
            "Condition": {"StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}},
        }]
    return {"Parameters": {INTERNAL_CALLERS_PARAMETER: parameter},
            "Policy": {"Version": "2012-10-17", "Statement": statements}}


def method_resource_path(path: str) -> str:
    """A route's path as a stage MethodSetting names it: "/" and "~" escaped as in a JSON pointer."""
    return "/" + path.replace("~", "~0").replace("/", "~1")


def public_method_settings(routes: Iterable, settings: dict) -> list[dict]:
    """Method throttling of every PUBLIC route (no identity: anyone can loop on it, e.g. enumerating shared-route
    keys that the route passes on to the protocol), beside the stage-wide "*" entry."""
    found = sorted({(r.method, r.path) for r in routes if r.kind == PUBLIC}, key=lambda route: route[1])
    return [{"HttpMethod": method, "ResourcePath": method_resource_path(path),
             "ThrottlingRateLimit": settings["public_route_throttling_rate"],
             "ThrottlingBurstLimit": settings["public_route_throttling_burst"]} for method, path in found]


def web_acl(settings: dict) -> dict:
    """A regional web ACL with one rule: a client IP over `waf_rate_limit` requests per window is answered 429
    in the app's error shape until its rate falls; associated with the API stage. WAF runs before the resource
    policy, the authorizers and the throttles, so one client cannot use up the stage's throttle alone."""
    window = settings["waf_rate_window_seconds"]
    name = {"Fn::Sub": "${AWS::StackName}-api"}

    def visibility(metric) -> dict:
        return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}

    return {
        WEB_ACL_ID: {"Type": "AWS::WAFv2::WebACL", "Properties": {
            "Name": name, "Scope": "REGIONAL",
            "Description": "Per-client-IP rate limit of the API",  # no "_" or "(": WAF refuses them
            "DefaultAction": {"Allow": {}},
            "CustomResponseBodies": {RATE_LIMITED_BODY_KEY: {"ContentType": "APPLICATION_JSON",
                                                             "Content": RATE_LIMITED_BODY}},
            "Rules": [{
                "Name": "per-client-ip-rate", "Priority": 0,
                "Statement": {"RateBasedStatement": {"AggregateKeyType": "IP", "Limit": settings["waf_rate_limit"],
                                                     "EvaluationWindowSec": window}},
                "Action": {"Block": {"CustomResponse": {
                    "ResponseCode": 429, "CustomResponseBodyKey": RATE_LIMITED_BODY_KEY,
                    "ResponseHeaders": [{"Name": "Retry-After", "Value": str(window)}]}}},
                "VisibilityConfig": visibility({"Fn::Sub": "${AWS::StackName}-per-client-ip-rate"}),
            }],
            "VisibilityConfig": visibility(name),
        }},
        WEB_ACL_ASSOCIATION_ID: {"Type": "AWS::WAFv2::WebACLAssociation", "Properties": {
            # ${RestAPI.Stage}: SAM's reference to the stage it creates, which also orders the association after it.
            "ResourceArn": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}"
                                       "/stages/${RestAPI.Stage}"},
            "WebACLArn": {"Fn::GetAtt": [WEB_ACL_ID, "Arn"]},
        }},
    }


def wrong_codes_query(dimension: str) -> str:
    return (f'SELECT SUM({WRONG_CODES_METRIC}) FROM SCHEMA("{METRICS_NAMESPACE}", {AREA_DIMENSION}, {dimension}) '
            f"WHERE {dimension} = '{WRONG_CODES_SERVICE}' GROUP BY {AREA_DIMENSION} ORDER BY SUM() DESC")


def wrong_codes_alarm(settings: dict, alarm_target: dict, dimension: str) -> dict:
    """One alarm over every area: the query returns a series per area_id, each a contributor of its own, and the
    alarm fires when any one of them exceeds the threshold (an area under a guessing attack: give it longer
    codes, see the README's runbook)."""
    period, threshold = settings["wrong_codes_alarm_period_seconds"], settings["wrong_codes_alarm_per_area"]
    return {WRONG_CODES_ALARM_ID: {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": f"codedispatch: over {threshold} wrong order codes in one area within {period} s. "
                            "See the runbook.",
        "Metrics": [{"Id": "wrong_codes_per_area", "Expression": wrong_codes_query(dimension), "Period": period,
                     "ReturnData": True}],
        "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
        "AlarmActions": [alarm_target], "OKActions": [alarm_target],
    }}}


def refuse_chalice_policy(chalice_config: dict, stage: str) -> None:
    """Chalice writes its own `x-amazon-apigateway-policy` for `api_gateway_policy_file` or a PRIVATE endpoint;
    the merge would silently replace it with ours (or ours with a partial mix): one policy, generated here."""
    for scope in (chalice_config, chalice_config.get("stages", {}).get(stage, {})):
        if scope.get("api_gateway_policy_file") or scope.get("api_gateway_endpoint_type") == "PRIVATE":
            raise ValueError("the API's resource policy is generated (deploy/edge.py): drop "
                             "api_gateway_policy_file / a PRIVATE endpoint from .chalice/config.json")


def build(app, routes: Iterable, stage: str, settings: dict, *, alarm_target: dict, metrics_dimension: str) -> dict:
    """The edge fragments to merge into the template (the public routes' method throttling is part of the
    stage's MethodSettings: public_method_settings); without what the emulator cannot deploy on the local stage."""
    _check(settings)
    policy = resource_policy(routes, stage)
    definition = {**authorizer_identity_validation(app), "x-amazon-apigateway-policy": policy["Policy"]}
    resources: dict[str, Any] = {"RestAPI": {"Properties": {"DefinitionBody": definition}}}
    resources.update(web_acl(settings))
    resources.update(wrong_codes_alarm(settings, alarm_target, metrics_dimension))
    if stage == "local":
        for logical_id in NOT_ON_THE_EMULATOR:
            resources.pop(logical_id)
    return {"Parameters": policy["Parameters"], "Resources": resources}
