"""Each service's HTTP routes in a Lambda function of its own, inside the template `chalice package` builds.

Chalice makes ONE function for every route (APIHandler, handler `app.app`: the whole app) and points every path
of the API's swagger at it. The merge template adds, per service with routes (deploy/roles.py: api_functions_of,
from the modules that registered the routes):
- the function, e.g. RouteSharingApi: handler `chalicelib.core.api_function.app`, the route modules it serves in
  its environment, every other property as Chalice writes it for a function of that name and stage (runtime, code,
  memory, timeout, environment variables, tags, layers, VPC: Chalice's own config lookup, so
  `lambda_functions.route_sharing_api` in .chalice/config.json applies to it as to any Chalice function), and the
  stage's reserved concurrency for it;
- its role (the policy is deploy/roles.py's, from the service's route grants) and the permission API Gateway needs
  to invoke it;
- the integration `uri` of each of the service's routes, pointed at it.
APIHandler then serves nothing: deploy/package.py takes it out of the packaged template (why: there).

The platform's function also serves the config API, for every service's configs, and the local stage's OpenAPI
document of every route: its environment names the modules that define configs and every route module, which it
imports when those routes are first called (core/config.py, core/openapi.py), not while it starts.

Stage setting (`stages.<stage>.operations`): `api_reserved_concurrency`, {logical id: executions} naming every API
function (or none, in a stage without operations settings): each service's routes get that much of the account's
concurrency to themselves and never more, so a spike on one service's routes throttles those routes alone.
Build time only: never shipped.
"""
from __future__ import annotations

import json
from typing import Any

from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT

from chalicelib.core import config as runtime_config
from chalicelib.core.settings import (
    CONFIG_MODULES_VARIABLE, DOCUMENT_ROUTE_MODULES_VARIABLE, ROUTE_MODULES_VARIABLE,
)
from deploy import grants
from deploy.roles import Function

HANDLER = "chalicelib.core.api_function.app"
PLATFORM = "platform"  # the service whose function serves every service's configs and the API document
CODE_URI = "./deployment.zip"  # where `chalice package` puts the zip, beside the template
RESERVED_CONCURRENCY = "api_reserved_concurrency"
ASSUME_ROLE = {"Version": "2012-10-17", "Statement": [{
    "Sid": "", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _invocation_uri(function: Function) -> dict:
    return {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                       "${%s.Arn}/invocations" % function.logical_id}


def reserved_concurrency(functions: list[Function], settings: dict) -> dict[str, int]:
    """The stage's reserved concurrency per API function: every one named, or none."""
    configured = dict(settings.get(RESERVED_CONCURRENCY) or {})
    if not configured:
        return {}
    names = {function.logical_id for function in functions}
    unknown, missing = sorted(set(configured) - names), sorted(names - set(configured))
    if unknown or missing:
        raise ValueError(f"operations.{RESERVED_CONCURRENCY} must name every API function and no other: "
                         f"unknown {unknown}, missing {missing}")
    for name, value in configured.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            # 0 would be a function that never runs; AWS keeps 100 of the account's concurrency unreserved.
            raise ValueError(f"operations.{RESERVED_CONCURRENCY}.{name} must be a whole number >= 1")
    return configured


def _environment(function: Function, chalice_config: Config, app) -> dict[str, str]:
    variables = dict(chalice_config.environment_variables)
    variables[ROUTE_MODULES_VARIABLE] = ",".join(function.route_modules)
    if function.service == PLATFORM:
        variables[CONFIG_MODULES_VARIABLE] = ",".join(sorted({definition.module for definition
                                                              in runtime_config.REGISTRY.values()}))
        variables[DOCUMENT_ROUTE_MODULES_VARIABLE] = ",".join(sorted(grants.route_modules(app)))
    return variables


def function_resource(function: Function, chalice_config: Config, app, reserved: int | None) -> dict:
    """The function as Chalice's SAM generator writes one (chalice/package.py), with our handler and environment."""
    properties: dict[str, Any] = {
        "Runtime": chalice_config.lambda_python_version,
        "Handler": HANDLER,
        "CodeUri": CODE_URI,
        "Tags": chalice_config.tags,
        "Tracing": "Active" if chalice_config.xray_enabled else "PassThrough",
        "Timeout": chalice_config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT,
        "MemorySize": chalice_config.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE,
        "Architectures": [chalice_config.lambda_architecture],
        "Environment": {"Variables": _environment(function, chalice_config, app)},
        "Role": {"Fn::GetAtt": [function.role_id, "Arn"]},
    }
    if chalice_config.security_group_ids and chalice_config.subnet_ids:
        properties["VpcConfig"] = {"SecurityGroupIds": chalice_config.security_group_ids,
                                   "SubnetIds": chalice_config.subnet_ids}
    if chalice_config.layers:
        properties["Layers"] = list(chalice_config.layers)
    if reserved is not None:
        properties["ReservedConcurrentExecutions"] = reserved
    return {"Type": "AWS::Serverless::Function", "Properties": properties}


def invoke_permission(function: Function) -> dict:
    """API Gateway may invoke the function, from this API only (as Chalice's own permission for APIHandler)."""
    return {"Type": "AWS::Lambda::Permission", "Properties": {
        "FunctionName": {"Ref": function.logical_id},
        "Action": "lambda:InvokeFunction",
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": {"Fn::Sub": ["arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RestAPIId}/*",
                                  {"RestAPIId": {"Ref": "RestAPI"}}]},
    }}


def integrations(app, functions: list[Function]) -> dict:
    """The swagger's paths, each method's integration pointed at the function of the service whose module
    registered its view: {path: {method: {"x-amazon-apigateway-integration": {"uri": ...}}}}."""
    by_module = {module: function for function in functions for module in function.route_modules}
    paths: dict[str, dict] = {}
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            function = by_module[grants.route_module_of(entry.view_function)]
            paths.setdefault(path, {})[method.lower()] = {
                "x-amazon-apigateway-integration": {"uri": _invocation_uri(function)}}
    return paths


def resources(app, functions: list[Function], stage: str, settings: dict,
              config_path: str = ".chalice/config.json") -> dict:
    """Merge-template resources: every API function, its role (policies: deploy/roles.py), its permission, and
    the integrations of the routes it serves."""
    api = [function for function in functions if function.kind == "api"]
    if not api:
        return {}
    with open(config_path, encoding="utf-8") as handle:
        chalice_settings = json.load(handle)
    reserved = reserved_concurrency(api, settings)
    found: dict[str, Any] = {}
    for function in api:
        chalice_config = Config(chalice_stage=stage, function_name=function.name, config_from_disk=chalice_settings)
        found[function.logical_id] = function_resource(function, chalice_config, app,
                                                       reserved.get(function.logical_id))
        found[function.role_id] = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": ASSUME_ROLE}}
        found[function.logical_id + "InvokePermission"] = invoke_permission(function)
    found["RestAPI"] = {"Properties": {"DefinitionBody": {"paths": integrations(app, api)}}}
    return found
