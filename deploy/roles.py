"""Per-function IAM policies for the deploy template, generated from the grants (chalicelib/core/access.py).

Chalice already gives every Lambda function a role of its own (`<Function>Role`; the API handler's is
`ApiHandlerRole`) when `autogen_policy` is off, filled from `.chalice/policy-base.json`. The merge template
replaces that role's `Policies` with exactly what the function's grant says, on exactly those resources
(GetAtt of the template's tables and queues, so the policy is the same for every stage). The base file only
ever reaches a function this generator does not know about, and it denies everything.
Build time only: never imported by a Lambda.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib.core import access

# X-Ray's write actions support no resource-level permissions: "*" is the only resource AWS accepts for them.
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")  # no CreateLogGroup: the template creates it


@dataclasses.dataclass(frozen=True)
class Function:
    """One Lambda function of the app, as `chalice package` names it in the template."""

    name: str  # Chalice's function name (the handler's name; "api_handler" for the routes)
    logical_id: str
    role_id: str
    kind: str  # "api", "sqs", "schedule", "authorizer"
    source: Any = None  # the chalice event source config (queue / schedule), if any


def functions_of(app) -> list[Function]:
    found = []
    if app.routes:
        found.append(Function(access.API_FUNCTION, "APIHandler", "ApiHandlerRole", "api"))
    for source in app.event_sources:
        kind = "sqs" if getattr(source, "queue", None) else "schedule" if hasattr(source, "schedule_expression") \
            else type(source).__name__
        found.append(Function(source.name, to_cfn_resource_name(source.name),
                              to_cfn_resource_name(source.name + "_role"), kind, source))
    for auth in app.builtin_auth_handlers:
        found.append(Function(auth.name, to_cfn_resource_name(auth.name), to_cfn_resource_name(auth.name + "_role"),
                              "authorizer"))
    return found


def table_logical_id(table_name: str) -> str:
    return to_cfn_resource_name(table_name) + "Table"


def queue_logical_id(queue: str) -> str:
    return to_cfn_resource_name(queue) + "Queue"


def _arn(logical_id: str) -> dict:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def log_group_arn(function: Function) -> dict:
    """The function's own log group; named from the function's explicit FunctionName (no cycle with its role)."""
    return {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/"
                       "${AWS::StackName}-" + function.logical_id + ":*"}


def _statement(sid: str, actions, resources: list) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def policy_statements(function: Function, grant: access.Grant, template: dict,
                      on_failure_queue: str | None = None, stage: str = "*") -> list[dict]:
    """Exactly what `grant` allows `function`, on the template's resources; raises on an unknown resource.
    `{stage}` in a parameter or secret name is the stage being built."""

    def resource_id(logical_id: str, what: str) -> str:
        if logical_id not in template:
            raise ValueError(f"{function.name} is granted {what}, which the template does not create")
        return logical_id

    statements = [_statement("OwnLogGroup", LOG_ACTIONS, [log_group_arn(function)]),
                  _statement("Tracing", XRAY_ACTIONS, ["*"])]
    reads = sorted(grant.read, key=lambda model: model.Meta.table_name)
    if reads:
        tables, indexes = [], []
        for model in reads:
            table_id = resource_id(table_logical_id(model.Meta.table_name), f"table {model.Meta.table_name}")
            tables.append(_arn(table_id))
            indexes += [{"Fn::Sub": "${%s.Arn}/index/%s" % (table_id, index["index_name"])}
                        for index in model._get_schema()["global_secondary_indexes"]]
        statements.append(_statement("ReadTables", access.TABLE_READ_ACTIONS, tables))
        if indexes:
            statements.append(_statement("QueryIndexes", access.INDEX_READ_ACTIONS, indexes))
    writes = sorted(grant.write, key=lambda model: model.Meta.table_name)
    if writes:
        statements.append(_statement("WriteTables", access.TABLE_WRITE_ACTIONS, [
            _arn(resource_id(table_logical_id(model.Meta.table_name), f"table {model.Meta.table_name}"))
            for model in writes]))
    queue = getattr(function.source, "queue", None)
    if queue:
        statements.append(_statement("ConsumeQueue", access.QUEUE_CONSUME_ACTIONS,
                                     [_arn(resource_id(queue_logical_id(queue), f"queue {queue}"))]))
    if grant.send:
        statements.append(_statement("SendToQueues", access.QUEUE_SEND_ACTIONS, [
            _arn(resource_id(queue_logical_id(name), f"queue {name}")) for name in sorted(grant.send)]))
    if on_failure_queue:
        statements.append(_statement("OnFailureDestination", ["sqs:SendMessage"],
                                     [_arn(resource_id(queue_logical_id(on_failure_queue), on_failure_queue))]))
    if grant.parameters:
        statements.append(_statement("Parameters", access.PARAMETER_ACTIONS, [
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
                        + name.replace("{stage}", stage)} for name in sorted(grant.parameters)]))
    if grant.secrets:
        # Secrets Manager appends a random 6-character suffix to a secret's ARN.
        statements.append(_statement("Secrets", access.SECRET_ACTIONS, [
            {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:%s-??????"
                        % name.replace("{stage}", stage)} for name in sorted(grant.secrets)]))
    return statements


def role_policies(app, template: dict, on_failure_queues: dict[str, str], stage: str = "*") -> dict:
    """Merge-template fragments: every function's role gets exactly its grant.

    A function (or route module) without a grant gets nothing but logs and X-Ray: it fails closed on AWS, and
    tests/test_template.py fails on it. The build goes on, so a service still being written can deploy locally
    (the emulator does not enforce IAM) before its access.py exists."""
    missing = access.missing_grants(app)
    if missing:
        print(f"WARNING: no access grant for: {', '.join(missing)} (declare them in chalicelib/<service>/access.py)",
              file=sys.stderr)
    fragments: dict[str, Any] = {}
    for function in functions_of(app):
        grant = access.grant_for(function.name, app, partial=True) or access.Grant()
        statements = policy_statements(function, grant, template, on_failure_queues.get(function.name), stage)
        fragments[function.role_id] = {"Properties": {"Policies": [{
            "PolicyName": function.role_id + "Policy",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        }]}}
    return fragments
