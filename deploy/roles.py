"""The app's Lambda functions as the template names them, and their IAM policies, generated from the grants
(chalicelib/<service>/access.py, read by deploy/grants.py).

Functions: one API function per service (every route whose view a module of `chalicelib/<service>/` registered;
deploy/api_functions.py makes them), one per queue or schedule handler and one per authorizer (Chalice makes
those). Chalice gives each function it makes a role of its own (`<Function>Role`) when `autogen_policy` is off,
filled from `.chalice/policy-base.json`; the merge template replaces that role's `Policies` with exactly what
the function's grant says, on exactly those resources (GetAtt of the template's tables and queues, so the policy
is the same for every stage). The base file only ever reaches a function this generator does not know about, and
it denies everything. Build time only: never shipped.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib.core import access
from deploy import grants

# X-Ray's write actions support no resource-level permissions: "*" is the only resource AWS accepts for them.
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")  # no CreateLogGroup: the template creates it
SERVICES_PACKAGE = "chalicelib"
CORE = "core"  # not a service: what every service shares


@dataclasses.dataclass(frozen=True)
class Function:
    """One Lambda function of the app, as the template names it."""

    name: str  # Chalice's function name (the handler's name); "<service>_api" for a service's API function
    logical_id: str
    role_id: str
    kind: str  # "api", "sqs", "schedule", "authorizer"
    source: Any = None  # the chalice event source config (queue / schedule), if any
    route_modules: tuple[str, ...] = ()  # an API function's: the modules whose routes it serves

    @property
    def service(self) -> str | None:
        """The service package the function's code belongs to (None for core's: the authorizers)."""
        module = self.route_modules[0] if self.route_modules else \
            (self.source.handler_string if self.source is not None else "")
        return service_of(module)


def service_of(module: str) -> str | None:
    """`chalicelib.<service>.<...>` -> the service; None for core or anything outside chalicelib."""
    parts = module.split(".")
    if len(parts) < 3 or parts[0] != SERVICES_PACKAGE or parts[1] == CORE:
        return None
    return parts[1]


def api_function_name(service: str) -> str:
    return f"{service}_api"


def _named(name: str, kind: str, **extra) -> Function:
    return Function(name, to_cfn_resource_name(name), to_cfn_resource_name(name + "_role"), kind, **extra)


def api_functions_of(app) -> list[Function]:
    """One API function per service with routes: route_sharing -> RouteSharingApi, serving the routes whose views
    the modules of chalicelib/route_sharing/ registered. A route registered anywhere else stops the build."""
    by_service: dict[str, set[str]] = {}
    for module in grants.route_modules(app):
        service = service_of(module)
        if service is None:
            raise ValueError(f"the routes of {module} belong to no service: register routes from a module of "
                             f"{SERVICES_PACKAGE}/<service>/ (each service's routes run in its own function)")
        by_service.setdefault(service, set()).add(module)
    return [_named(api_function_name(service), "api", route_modules=tuple(sorted(modules)))
            for service, modules in sorted(by_service.items())]


def functions_of(app) -> list[Function]:
    found = api_functions_of(app)
    for source in app.event_sources:
        kind = "sqs" if getattr(source, "queue", None) else "schedule" if hasattr(source, "schedule_expression") \
            else type(source).__name__
        found.append(_named(source.name, kind, source=source))
    for auth in app.builtin_auth_handlers:
        found.append(_named(auth.name, "authorizer"))
    clashes = sorted({f.logical_id for f in found if [g.logical_id for g in found].count(f.logical_id) > 1})
    if clashes:
        raise ValueError(f"two functions of the app are named alike in the template: {clashes}")
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
        statements.append(_statement("ReadTables", grants.TABLE_READ_ACTIONS, tables))
        if indexes:
            statements.append(_statement("QueryIndexes", grants.INDEX_READ_ACTIONS, indexes))
    writes = sorted(grant.write, key=lambda model: model.Meta.table_name)
    if writes:
        statements.append(_statement("WriteTables", grants.TABLE_WRITE_ACTIONS, [
            _arn(resource_id(table_logical_id(model.Meta.table_name), f"table {model.Meta.table_name}"))
            for model in writes]))
    queue = getattr(function.source, "queue", None)
    if queue:
        statements.append(_statement("ConsumeQueue", grants.QUEUE_CONSUME_ACTIONS,
                                     [_arn(resource_id(queue_logical_id(queue), f"queue {queue}"))]))
    if grant.send:
        statements.append(_statement("SendToQueues", grants.QUEUE_SEND_ACTIONS, [
            _arn(resource_id(queue_logical_id(name), f"queue {name}")) for name in sorted(grant.send)]))
    if on_failure_queue:
        statements.append(_statement("OnFailureDestination", ["sqs:SendMessage"],
                                     [_arn(resource_id(queue_logical_id(on_failure_queue), on_failure_queue))]))
    if grant.parameters:
        statements.append(_statement("Parameters", grants.PARAMETER_ACTIONS, [
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
                        + name.replace("{stage}", stage)} for name in sorted(grant.parameters)]))
    if grant.secrets:
        # Secrets Manager appends a random 6-character suffix to a secret's ARN.
        statements.append(_statement("Secrets", grants.SECRET_ACTIONS, [
            {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:%s-??????"
                        % name.replace("{stage}", stage)} for name in sorted(grant.secrets)]))
    return statements


def role_policies(app, functions: list[Function], template: dict, on_failure_queues: dict[str, str],
                  stage: str = "*") -> dict:
    """Merge-template fragments: every function's role gets exactly its grant.

    A function (or route module) without a grant gets nothing but logs and X-Ray: it fails closed on AWS, and
    tests/test_template.py fails on it. The build goes on, so a service still being written can deploy locally
    (the emulator does not enforce IAM) before its access.py exists."""
    missing = grants.missing_grants(app)
    if missing:
        print(f"WARNING: no access grant for: {', '.join(missing)} (declare them in chalicelib/<service>/access.py)",
              file=sys.stderr)
    fragments: dict[str, Any] = {}
    for function in functions:
        grant = grants.grant_for(function, app, partial=True) or access.Grant()
        statements = policy_statements(function, grant, template, on_failure_queues.get(function.name), stage)
        fragments[function.role_id] = {"Properties": {"Policies": [{
            "PolicyName": function.role_id + "Policy",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        }]}}
    return fragments
