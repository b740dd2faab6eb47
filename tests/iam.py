"""A small IAM evaluator for tests: what a generated policy allows, and what an AWS call needs.

Resources are compared by name ("table/<name>", "table/<name>/index/<index>", "queue/<name>",
"parameter/<name>", "secret/<name>", "log-group/<name>", "*"), resolved from the template's GetAtt / Sub
of its own resources, so a policy is checked the way IAM would check it, without an account.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Iterable
from urllib.parse import urlsplit

Permission = tuple[str, str]  # (action, resource name)


def _resource_name(resources: dict, logical_id: str) -> str:
    resource = resources[logical_id]
    properties = resource.get("Properties", {})
    if resource["Type"] == "AWS::DynamoDB::Table":
        return f"table/{properties['TableName']}"
    if resource["Type"] == "AWS::SQS::Queue":
        return f"queue/{properties['QueueName']}"
    if resource["Type"] == "AWS::Logs::LogGroup":
        return "log-group/" + str(properties.get("LogGroupName"))
    raise ValueError(f"a policy names {logical_id} ({resource['Type']}): not a table, queue or log group")


_SUB_ARN = re.compile(r"^\$\{(?P<id>[A-Za-z0-9]+)\.Arn\}(?P<rest>.*)$")
_PREFIXED = re.compile(r":(?P<kind>parameter|secret:|log-group:)(?P<name>.*)$")


def resolve(resources: dict, value) -> str:
    """A policy Resource entry (string, GetAtt or Sub) -> the resource name it grants."""
    if value == "*":
        return "*"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return _resource_name(resources, value["Fn::GetAtt"][0])
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        match = _SUB_ARN.match(text)
        if match:
            return _resource_name(resources, match["id"]) + match["rest"]
        match = _PREFIXED.search(text)
        if match:
            name = match["name"]
            if match["kind"] == "parameter":
                return "parameter" + name  # the name starts with "/"
            if match["kind"] == "secret:":
                return "secret/" + name.removesuffix("-??????")
            return "log-group/" + name
    if isinstance(value, str):
        return value
    raise ValueError(f"cannot resolve policy resource {value!r}")


def statements_of(role: dict) -> list[dict]:
    return [statement for policy in role["Properties"].get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(resources: dict, statements: Iterable[dict]) -> set[Permission]:
    """Every (action, resource) the Allow statements grant (no wildcards are expanded: they stay literal)."""
    granted: set[Permission] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                granted.add((action, resolve(resources, resource)))
    return granted


# --- what a call needs --------------------------------------------------------------------------------

_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_SQS_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _queue_of(url: str) -> str:
    return "queue/" + urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def needed(service: str, operation: str, params: dict) -> set[Permission]:
    """The (action, resource) pairs IAM checks for one API call."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return {(f"dynamodb:{_TRANSACT[kind]}", f"table/{item[kind]['TableName']}")
                    for item in params.get("TransactItems", []) for kind in item}
        if operation == "TransactGetItems":
            return {("dynamodb:GetItem", f"table/{item['Get']['TableName']}") for item in params.get("TransactItems", [])}
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return {(f"dynamodb:{operation}", f"table/{table}") for table in params.get("RequestItems", {})}
        table = f"table/{params.get('TableName')}"
        if params.get("IndexName"):
            table += f"/index/{params['IndexName']}"
        return {(f"dynamodb:{operation}", table)}
    if service == "sqs":
        action = "sqs:" + _SQS_ACTIONS.get(operation, operation)
        if operation == "GetQueueUrl":
            return {(action, f"queue/{params.get('QueueName')}")}
        return {(action, _queue_of(params.get("QueueUrl", "")))}
    if service == "ssm" and operation in ("GetParameter", "GetParameters"):
        names = params.get("Names") or [params.get("Name")]
        return {("ssm:GetParameter", "parameter" + name) for name in names}
    if service == "secretsmanager" and operation == "GetSecretValue":
        return {("secretsmanager:GetSecretValue", "secret/" + str(params.get("SecretId")))}
    return {(f"{service}:{operation}", "*")}  # anything else: only a literal grant on "*" would allow it


def denied(granted: set[Permission], needs: set[Permission]) -> set[Permission]:
    """The needs no grant covers ("*" in a granted resource matches any characters, as in IAM)."""
    return {(action, resource) for action, resource in needs
            if not any(action == granted_action and fnmatch.fnmatchcase(resource, granted_resource)
                       for granted_action, granted_resource in granted)}
