"""The grants as the build reads them: every service's `access.py` loaded, the effective grant of each Lambda
function, and the IAM actions each kind of grant stands for (what a grant means: chalicelib/core/access.py).
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Any

from chalicelib.core.access import FUNCTION_GRANTS, ROUTE_GRANTS, Grant

TABLE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem")
INDEX_READ_ACTIONS = ("dynamodb:Query",)
TABLE_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                       "dynamodb:ConditionCheckItem")
# What a Lambda event source mapping needs on the queue it polls (AWS's documented minimum).
QUEUE_CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
QUEUE_SEND_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueUrl")
PARAMETER_ACTIONS = ("ssm:GetParameter",)
SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)


def load_all() -> None:
    """Import every `chalicelib.<service>.access` module (each registers its grants once)."""
    import chalicelib

    for module in pkgutil.iter_modules(chalicelib.__path__):
        if module.ispkg and importlib.util.find_spec(f"chalicelib.{module.name}.access") is not None:
            importlib.import_module(f"chalicelib.{module.name}.access")


def route_module_of(view: Any) -> str:
    """The module (= blueprint) a route's view function was registered from."""
    return getattr(view, "__module__", "")


def route_modules(app: Any) -> set[str]:
    return {route_module_of(entry.view_function) for methods in app.routes.values() for entry in methods.values()}


def grant_for(function, app: Any, partial: bool = False) -> Grant | None:
    """The effective grant of one Lambda function of `app` (deploy/functions.py: Function); None when it has no
    declaration.

    An API function's grant is the union of its route modules' grants; None if one of them has none (unless
    `partial`: then the union of those that have one). An authorizer without a declaration gets an empty grant
    (logs and X-Ray only)."""
    load_all()
    if function.kind == "api":
        if not partial and any(module not in ROUTE_GRANTS for module in function.route_modules):
            return None
        union = Grant()
        for module in sorted(set(function.route_modules) & set(ROUTE_GRANTS)):
            union = union.merge(ROUTE_GRANTS[module])
        return union
    if function.name in FUNCTION_GRANTS:
        return FUNCTION_GRANTS[function.name]
    if function.kind == "authorizer":
        return Grant()
    return None


def missing_grants(app: Any) -> list[str]:
    """Functions (and route modules) of `app` that declare nothing: each must have a grant."""
    load_all()
    missing = [f"routes of {module}" for module in sorted(route_modules(app)) if module not in ROUTE_GRANTS]
    missing += [source.name for source in app.event_sources if source.name not in FUNCTION_GRANTS]
    return missing
