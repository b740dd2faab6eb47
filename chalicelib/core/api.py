"""HTTP route helpers: one decorator per route kind, input validation, and the single error shape.

    bp = Blueprint(__name__)

    @route(bp, "/v1/things", kind=PUBLIC, query=ThingQuery, response=ThingOut)
    def get_thing(call: Call) -> ThingOut:
        return service.get_thing(call.query.key)

Every route answers JSON. Errors leave in one shape, `{"code", "message"}`: domain errors (core.errors)
keep their status, invalid input is 400, missing identity 401, anything unexpected 500 (and is logged).
Each route is recorded in ROUTES, from which the OpenAPI document is built.

Who is calling is decided by the gateway, never by headers the client sends: a DRIVER or EATS_USER route gets
its kind's built-in authorizer (chalicelib/core/authorizers.py: the session token in X-Driver-Session /
X-Eats-Session, checked with the session service), and the view's `call.identity` is read from the
authorizer context only (`current_request.context["authorizer"]`), checked again against IDENTITY_VALUE.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any, Callable, Iterable

from chalice import Blueprint, Chalice, IAMAuthorizer, Response
from pydantic import BaseModel, ValidationError

from . import request_body
from .errors import AppError, BadRequest, Forbidden, Unauthorized, validation_details
from .identity import (  # noqa: F401 - the route kinds are part of this module's API
    DRIVER, EATS_USER, IDENTITY_VALUE, INTERNAL, KINDS, PUBLIC, DriverIdentity, EatsUserIdentity,
    valid_identity_value,
)
from .logs import get_logger

log = get_logger(__name__)

APP_NAME = "taxi-delivery"

_IAM = IAMAuthorizer()
# What a driver or eats-user route may answer before its view runs: no or bad session (401), an identity the
# app refuses (403), the session service down (503, the gateway's response to a failed authorizer).
_GATEWAY_IDENTITY_ERRORS = {401, 403, 503}


@dataclasses.dataclass
class Call:
    """What a view gets: validated inputs and the caller's identity."""

    query: Any = None
    headers: Any = None
    body: Any = None
    path: dict[str, str] = dataclasses.field(default_factory=dict)
    identity: DriverIdentity | EatsUserIdentity | None = None


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    path: str
    method: str
    kind: str
    name: str
    summary: str
    query: type[BaseModel] | None
    headers: type[BaseModel] | None
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    module: str = ""  # the module that registered it (= its blueprint): which API function serves it
    configs: tuple[str, ...] = ()  # the configs and experiments its view reads: its function reads them at start


ROUTES: list[RouteSpec] = []


def routes_of(route_modules: Iterable[str]) -> list[RouteSpec]:
    modules = set(route_modules)
    return [spec for spec in ROUTES if spec.module in modules]


def build_models(route_modules: Iterable[str]) -> None:
    """Build the request and response models of these modules' routes now (an API function's init phase): they
    are built on first use otherwise (core.schema: defer_build), inside the function's first request."""
    for spec in routes_of(route_modules):
        for model in (spec.query, spec.headers, spec.body, spec.response):
            if model is not None and not model.__pydantic_complete__:
                model.model_rebuild()


def configs_of(route_modules: Iterable[str]) -> set[str]:
    """The configs these modules' routes declare they read (route(..., configs=...))."""
    return {name for spec in routes_of(route_modules) for name in spec.configs}


def json_response(body: Any, status: int) -> Response:
    # Serialized here so Cyrillic texts leave as UTF-8, not \u escapes (Chalice's default).
    return Response(body=json.dumps(body, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    headers={"Content-Type": "application/json; charset=utf-8"})


def error_response(status: int, code: str, message: str, details: dict | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return json_response(body, status)


def _authorizer_context(request) -> dict:
    context = (getattr(request, "context", None) or {}).get("authorizer")
    return context if isinstance(context, dict) else {}


def _identity_values(request, names: tuple[str, ...], missing_code: str, kind: str) -> list[str]:
    context = _authorizer_context(request)
    values = [context.get(name) for name in names]
    if any(value is None or value == "" for value in values):
        raise Unauthorized(f"a {kind} session is required", code=missing_code)
    if not all(valid_identity_value(value) for value in values):
        raise Forbidden(f"the session's {kind} identity is not acceptable", code="identity_invalid")
    return values


def _driver_identity(request) -> DriverIdentity:
    park_id, profile_id = _identity_values(request, ("park_id", "driver_profile_id"), "driver_unauthorized",
                                           "driver")
    return DriverIdentity(park_id=park_id, driver_profile_id=profile_id)


def _eats_identity(request) -> EatsUserIdentity:
    (user_id,) = _identity_values(request, ("user_id",), "user_unauthorized", "eats user")
    return EatsUserIdentity(user_id=user_id)


def _parse(schema: type[BaseModel] | None, data: Any, where: str):
    if schema is None:
        return None
    try:
        return schema.model_validate(data or {})
    except ValidationError as error:
        raise _InvalidInput(f"invalid {where}", validation_details(error)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as error:  # a validator tripped on an edge value
        raise _InvalidInput(f"invalid {where}", {"errors": [{"loc": where, "msg": type(error).__name__}]}) from None


class _InvalidInput(Exception):
    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.message, self.details = message, details


def _read_call(request, kind: str, spec: RouteSpec, path_params: dict) -> Call:
    call = Call(path=path_params)
    if kind == DRIVER:
        call.identity = _driver_identity(request)
    elif kind == EATS_USER:
        call.identity = _eats_identity(request)
    call.headers = _parse(spec.headers, {k.lower(): v for k, v in (request.headers or {}).items()}, "headers")
    call.query = _parse(spec.query, _query_params(request), "query")
    if spec.body is not None:
        call.body = _parse(spec.body, request_body.read_object(request.raw_body), "body")
    return call


def _query_params(request) -> dict[str, str]:
    """The query as one value per name. A name given twice is refused: gateways disagree on which one wins
    (API Gateway keeps the last, the emulator the first), so any answer would be a guess."""
    params = request.query_params
    if not params:
        return {}
    repeated = sorted(name for name in params if len(params.getlist(name)) > 1)
    if repeated:
        raise BadRequest("a query parameter is given more than once", code="duplicate_parameter",
                         details={"errors": [{"loc": name, "msg": "given more than once"} for name in repeated]})
    return dict(params)


def _render(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json_response(result, status)


def route(
    bp: Blueprint,
    path: str,
    *,
    method: str = "GET",
    kind: str = PUBLIC,
    query: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    summary: str = "",
    configs: Iterable[Any] = (),
) -> Callable:
    """Register `view(call: Call)` on the blueprint as a route of the given kind. `configs`: the config and
    experiment definitions (core.config) the view reads, whoever reads them for it: its API function reads them
    while it starts, so its first request finds them cached (the tests' access audit fails a route that reads
    one it does not name)."""
    if kind not in KINDS:
        raise ValueError(f"unknown route kind {kind!r}")

    def decorator(view: Callable[[Call], Any]) -> Callable:
        spec = RouteSpec(
            path=path, method=method.upper(), kind=kind, name=view.__name__,
            summary=summary or (view.__doc__ or "").strip().split("\n")[0],
            query=query, headers=headers, body=body, response=response, status=status,
            errors=tuple(sorted(set(errors) | {400, 500} | (_GATEWAY_IDENTITY_ERRORS if kind in (DRIVER, EATS_USER)
                                                            else set()))),
            module=view.__module__, configs=tuple(sorted({definition.name for definition in configs})),
        )
        ROUTES.append(spec)

        @functools.wraps(view)
        def handler(**path_params):
            request = bp.current_request
            try:
                return _render(view(_read_call(request, kind, spec, path_params)), status)
            except _InvalidInput as error:
                return error_response(400, "invalid_request", error.message, error.details)
            except AppError as error:
                if error.status >= 500:
                    log.warning_event("http.upstream_error", route=path, code=error.code, error=error.message)
                return error_response(error.status, error.code, error.message, error.details)
            except Exception:
                log.error_event("http.unhandled_error", route=path, method=spec.method, exc_info=True)
                return error_response(500, "internal_error", "internal error")

        options: dict[str, Any] = {"methods": [spec.method]}
        if kind == INTERNAL:
            options["authorizer"] = _IAM
        elif kind in (DRIVER, EATS_USER):
            # Imported here, by the services that have such routes only (the authorizers' blueprint is theirs:
            # each authorizer is a Lambda of its own).
            from . import authorizers

            options["authorizer"] = authorizers.FOR_KIND[kind]
        bp.route(path, **options)(handler)
        return handler

    return decorator


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def uniform_errors(event, get_response):
    """App middleware: Chalice's own errors answer {"Code", "Message"}; rewrite them into our shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        response.body = {"code": _snake(str(body["Code"])), "message": str(body.get("Message", ""))}
        response.headers = {**(response.headers or {}), "Content-Type": "application/json"}
    return response


def make_app(blueprints: Iterable[Blueprint]) -> Chalice:
    """A Chalice app of these blueprints whose every error leaves in the one shape: the whole app (app.py), or one
    service's API function (core/api_function.py)."""
    app = Chalice(app_name=APP_NAME)
    app.register_middleware(uniform_errors, "http")
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app
