"""The CloudFormation resources Chalice does not create: tables, queues with DLQs, partial batch failures,
each service's API function (deploy/api_functions.py), each function's least-privilege policy (deploy/roles.py),
operations (log groups, tracing, API throttling and access logs, on-failure destinations, alarms, a dashboard:
deploy/ops.py) and edge limits (deploy/edge.py).

Generated from the code, the one source of truth: every PynamoDB table (subclass of core.storage.Table),
every queue an @sqs handler consumes or a service declares it sends to, every route's module, every function's
grant (chalicelib/<service>/access.py, see chalicelib/core/access.py). Build time only (deploy/package.py runs it):

    python -m deploy.template --stage local > build/resources.json
    chalice package --stage local --merge-template build/resources.json build/package
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib.core.queues import PRODUCED_QUEUES
from chalicelib.core.storage import Table, ttl_attribute_name
from deploy import api_functions, edge, ops
from deploy.roles import functions_of, queue_logical_id, role_policies, table_logical_id

# Deployed stages give a failing message more tries before the DLQ; local keeps tests fast.
MAX_RECEIVE_COUNT = {"local": 3}
DEFAULT_MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
DLQ_SUFFIX = "_dlq"


def _all_tables() -> list[type[Table]]:
    found: list[type[Table]] = []
    pending = list(Table.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if getattr(model.Meta, "table_name", None):
            found.append(model)
    return sorted(found, key=lambda model: model.Meta.table_name)


def table_resource(model: type[Table], stage: str) -> dict:
    schema = model._get_schema()
    properties: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(schema["attribute_definitions"], key=lambda a: a["AttributeName"]),
        "KeySchema": sorted(schema["key_schema"], key=lambda k: k["KeyType"]),  # HASH before RANGE
    }
    indexes = [
        {
            "IndexName": index["index_name"],
            "KeySchema": sorted(index["key_schema"], key=lambda k: k["KeyType"]),
            "Projection": index["projection"],
        }
        for index in schema["global_secondary_indexes"]
    ]
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    ttl = ttl_attribute_name(model)
    if ttl:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    resource: dict[str, Any] = {"Type": "AWS::DynamoDB::Table", "Properties": properties}
    if stage != "local":
        properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
        # Deleting or replacing the stack must never drop a deployed stage's data.
        resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = "Retain"
    return resource


# API Gateway's own refusals (unknown path, missing signature, throttling) answer in the app's error shape too.
GATEWAY_ERROR_TEMPLATE = '{"code":"$context.error.responseType","message":$context.error.messageString}'


# A driver / eats-user authorizer that cannot check the session (session service down: it raises) fails closed;
# the gateway's default for that is a 500 with a null message. Answer 503 with a clear code, so clients retry.
SESSION_CHECK_FAILED_TEMPLATE = ('{"code":"session_service_unavailable",'
                                 '"message":"the session could not be checked now; retry shortly"}')


def gateway_responses() -> dict:
    responses = {
        f"Gateway{kind.title()}Response": {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": {"Ref": "RestAPI"},
                "ResponseType": f"DEFAULT_{kind}",
                "ResponseTemplates": {"application/json": GATEWAY_ERROR_TEMPLATE},
            },
        }
        for kind in ("4XX", "5XX")
    }
    # AWS documents both types for a failed authorizer; which one a Lambda exception gets varies (the emulator:
    # AUTHORIZER_FAILURE), so both answer the same.
    for response_type, logical_id in (("AUTHORIZER_FAILURE", "GatewayAuthorizerFailureResponse"),
                                      ("AUTHORIZER_CONFIGURATION_ERROR", "GatewayAuthorizerConfigurationErrorResponse")):
        responses[logical_id] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": {"Ref": "RestAPI"},
                "ResponseType": response_type,
                "StatusCode": "503",
                "ResponseParameters": {"gatewayresponse.header.Retry-After": "'1'"},
                "ResponseTemplates": {"application/json": SESSION_CHECK_FAILED_TEMPLATE},
            },
        }
    return responses


def _merge_into(target: dict, fragment: dict) -> dict:
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value
    return target


def build(stage: str, lambda_timeout: int, operations: dict | None = None) -> dict:
    from app import app  # the app registers every service; importing it registers every table, queue and route
    from chalicelib.core.api import ROUTES

    settings = {**ops.DEFAULTS, **edge.DEFAULTS, **(operations or {})}
    resources: dict[str, Any] = gateway_responses()
    for model in _all_tables():
        resources[table_logical_id(model.Meta.table_name)] = table_resource(model, stage)

    consumed = {source.queue: source for source in app.event_sources if getattr(source, "queue", None)}
    main_queues = sorted(set(consumed) | PRODUCED_QUEUES)
    dead_letter_queues = []
    for queue in main_queues:
        queue_id, dlq_id = queue_logical_id(queue), queue_logical_id(queue + DLQ_SUFFIX)
        dead_letter_queues.append(queue + DLQ_SUFFIX)
        resources[dlq_id] = {
            "Type": "AWS::SQS::Queue",
            "Metadata": ops.DLQ_LINT,
            "Properties": {"QueueName": queue + DLQ_SUFFIX, "MessageRetentionPeriod": DLQ_RETENTION_SECONDS},
        }
        resources[queue_id] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue,
                # AWS rejects a visibility timeout shorter than the consumer's timeout.
                "VisibilityTimeout": lambda_timeout if stage == "local" else 6 * lambda_timeout,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                    "maxReceiveCount": MAX_RECEIVE_COUNT.get(stage, DEFAULT_MAX_RECEIVE_COUNT),
                },
            },
        }
        source = consumed.get(queue)
        if source is None:
            continue  # consumed elsewhere: the queue and its DLQ are all this app owns
        function_id = to_cfn_resource_name(source.name)
        event_id = to_cfn_resource_name(f"{source.name}-sqs-event-source")
        resources[function_id] = {
            "DependsOn": [queue_id],
            "Properties": {"Events": {event_id: {"Properties": {
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            }}}},
        }

    functions = functions_of(app)
    _merge_into(resources, api_functions.resources(app, functions, stage, settings))
    # Operations: every function traced, with its log group; a schedule's failed runs go to a queue of their own.
    on_failure: dict[str, str] = {}
    for function in functions:
        if function.kind == "schedule":
            on_failure[function.name] = function.name + ops.SCHEDULE_FAILURES_SUFFIX
            dead_letter_queues.append(on_failure[function.name])
            resources.update(ops.schedule_failure_queue(function))
        _merge_into(resources, ops.function_fragments(function, settings, on_failure.get(function.name)))
    _merge_into(resources, role_policies(app, functions, resources, on_failure, stage))

    template: dict[str, Any] = {"Parameters": {}, "Conditions": {}, "Resources": resources}
    parts = [ops.alarm_topic(), {"Resources": ops.alarms(functions, main_queues, dead_letter_queues, settings)},
             {"Resources": ops.dashboard(functions, main_queues, dead_letter_queues)}]
    if app.routes:
        parts += [{"Resources": ops.api_stage(settings, edge.public_method_settings(ROUTES, settings))},
                  ops.api_gateway_account(),
                  edge.build(app, ROUTES, stage, settings, alarm_target=ops.ALARM_TARGET,
                             metrics_dimension=ops.METRICS_DIMENSION)]
    for part in parts:
        _merge_into(template, part)
    return template


def stage_operations(stage: str, config_path: str = ".chalice/config.json") -> dict:
    """The stage's operations settings (`stages.<stage>.operations` in config.json; see deploy/ops.py,
    deploy/edge.py and deploy/api_functions.py)."""
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    edge.refuse_chalice_policy(config, stage)
    return dict(config.get("stages", {}).get(stage, {}).get("operations") or {})


def stage_lambda_timeout(stage: str, config_path: str = ".chalice/config.json") -> int:
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    return int(config.get("stages", {}).get(stage, {}).get("lambda_timeout") or config.get("lambda_timeout") or 60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    json.dump(build(args.stage, stage_lambda_timeout(args.stage), stage_operations(args.stage)), sys.stdout, indent=2,
              sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
