"""The OpenAPI 3 document of every route, built from the route registry and its pydantic schemas.

The platform's Lambda function, which serves it, imports no service of its own: there build_document() first
imports every route module, as the build names them in its environment (core.settings document_route_modules).
"""
from __future__ import annotations

import importlib
import re
from typing import Any

from pydantic import BaseModel

from .api import DRIVER, EATS_USER, INTERNAL, ROUTES, RouteSpec
from .settings import get_settings

_REF = "#/components/schemas/{model}"
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
}


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}

    def ref(self, model: type[BaseModel], mode: str) -> dict:
        schema = model.model_json_schema(ref_template=_REF, mode=mode)
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[model.__name__] = schema
        return {"$ref": _REF.format(model=model.__name__)}

    def parameters(self, model: type[BaseModel] | None, where: str) -> list[dict]:
        if model is None:
            return []
        schema = model.model_json_schema(ref_template=_REF, by_alias=True)
        self.schemas.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        return [
            {"name": name, "in": where, "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()
        ]


# Who may call a route, by kind: internal routes are SigV4-signed; driver and eats-user routes carry the app's
# session, which the gateway's authorizer turns into the caller's identity (no identity header is read).
SECURITY_SCHEMES = {
    "sigv4": {"type": "apiKey", "name": "Authorization", "in": "header",
              "description": "AWS SigV4 signature (IAM): service-to-service routes"},
    "driverSession": {"type": "apiKey", "name": "X-Driver-Session", "in": "header",
                      "description": "the driver app's session token; the gateway checks it with driver-authorizer "
                                     "and hands park_id and driver_profile_id to the view"},
    "eatsSession": {"type": "apiKey", "name": "X-Eats-Session", "in": "header",
                    "description": "the eats app's session token; the gateway checks it with eats-passport and "
                                   "hands user_id to the view"},
}
_SECURITY_BY_KIND = {INTERNAL: "sigv4", DRIVER: "driverSession", EATS_USER: "eatsSession"}


def _operation(spec: RouteSpec, components: _Components) -> dict:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", spec.path)
    ]
    parameters += components.parameters(spec.query, "query")
    parameters += components.parameters(spec.headers, "header")
    success: dict[str, Any] = {"description": "OK"}
    if spec.response is not None:
        success["content"] = {"application/json": {"schema": components.ref(spec.response, "serialization")}}
    responses: dict[str, Any] = {str(spec.status): success}
    for status in spec.errors:
        responses[str(status)] = {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
        }
    operation: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.summary,
        "tags": [spec.kind],
        "parameters": parameters,
        "responses": responses,
    }
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.ref(spec.body, "validation")}},
        }
    if spec.kind in _SECURITY_BY_KIND:
        operation["security"] = [{_SECURITY_BY_KIND[spec.kind]: []}]
    return operation


def build_document(title: str = "taxi-delivery-backend") -> dict:
    for module in get_settings().document_route_modules:
        importlib.import_module(module)  # registers its routes in ROUTES (once: a module is imported once)
    components = _Components()
    paths: dict[str, dict] = {}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, components)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0.0"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components.schemas,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
