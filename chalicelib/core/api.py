"""HTTP route helpers: one decorator per route kind, input validation, and the single error shape.

    bp = Blueprint(__name__)

    @route(bp, "/v1/things", kind=PUBLIC, query=ThingQuery, response=ThingOut)
    def get_thing(call: Call) -> ThingOut:
        return service.get_thing(call.query.key)

Every route answers JSON. Errors leave in one shape, `{"code", "message"}`: domain errors (core.errors)
keep their status, invalid input is 400, missing identity 401, anything unexpected 500 (and is logged).
Each route is recorded in ROUTES, from which the OpenAPI document is built.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any, Callable

from chalice import BadRequestError, Blueprint, IAMAuthorizer, Response
from pydantic import BaseModel, ValidationError

from .errors import AppError, BadRequest, Unauthorized, validation_details
from .identity import DriverIdentity, EatsUserIdentity
from .logs import get_logger

log = get_logger(__name__)

PUBLIC = "public"  # no auth: e.g. shared routes by an unguessable key
INTERNAL = "internal"  # service-to-service: IAM-signed in deployed stages (the emulator does not enforce it)
DRIVER = "driver"  # identity from the gateway authoriser's X-YaTaxi-Park-Id + X-YaTaxi-Driver-Profile-Id
EATS_USER = "eats_user"  # identity from X-Eats-User: user_id=<id>
KINDS = (PUBLIC, INTERNAL, DRIVER, EATS_USER)

_IAM = IAMAuthorizer()


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


ROUTES: list[RouteSpec] = []


def json_response(body: Any, status: int) -> Response:
    # Serialized here so Cyrillic texts leave as UTF-8, not \u escapes (Chalice's default).
    return Response(body=json.dumps(body, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    headers={"Content-Type": "application/json; charset=utf-8"})


def error_response(status: int, code: str, message: str, details: dict | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return json_response(body, status)


def _driver_identity(headers) -> DriverIdentity:
    park_id = headers.get("x-yataxi-park-id")
    profile_id = headers.get("x-yataxi-driver-profile-id")
    if not park_id or not profile_id:
        raise Unauthorized("driver identity headers are missing", code="driver_unauthorized")
    return DriverIdentity(park_id=park_id, driver_profile_id=profile_id)


_EATS_USER = re.compile(r"(?:^|,)\s*user_id=([^,\s]+)")


def _eats_identity(headers) -> EatsUserIdentity:
    match = _EATS_USER.search(headers.get("x-eats-user") or "")
    if not match:
        raise Unauthorized("X-Eats-User header with user_id is missing", code="user_unauthorized")
    return EatsUserIdentity(user_id=match.group(1))


def _parse(schema: type[BaseModel] | None, data: Any, where: str):
    if schema is None:
        return None
    try:
        return schema.model_validate(data or {})
    except ValidationError as error:
        raise _InvalidInput(f"invalid {where}", validation_details(error)) from None


class _InvalidInput(Exception):
    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.message, self.details = message, details


def _read_call(request, kind: str, spec: RouteSpec, path_params: dict) -> Call:
    call = Call(path=path_params)
    if kind == DRIVER:
        call.identity = _driver_identity(request.headers)
    elif kind == EATS_USER:
        call.identity = _eats_identity(request.headers)
    call.headers = _parse(spec.headers, {k.lower(): v for k, v in (request.headers or {}).items()}, "headers")
    call.query = _parse(spec.query, dict(request.query_params or {}), "query")
    if spec.body is not None:
        if not (request.raw_body or b"").strip():
            raise BadRequest("a JSON body is required", code="body_required")
        try:
            raw = request.json_body
        except BadRequestError:
            raise BadRequest("request body is not valid JSON", code="invalid_json") from None
        if raw is None:
            raise BadRequest("a JSON body is required", code="body_required")
        if not isinstance(raw, dict):
            raise BadRequest("the JSON body must be an object", code="invalid_body")
        call.body = _parse(spec.body, raw, "body")
    return call


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
) -> Callable:
    """Register `view(call: Call)` on the blueprint as a route of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown route kind {kind!r}")

    def decorator(view: Callable[[Call], Any]) -> Callable:
        spec = RouteSpec(
            path=path, method=method.upper(), kind=kind, name=view.__name__,
            summary=summary or (view.__doc__ or "").strip().split("\n")[0],
            query=query, headers=headers, body=body, response=response, status=status,
            errors=tuple(sorted(set(errors) | {400, 500} | ({401} if kind in (DRIVER, EATS_USER) else set()))),
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
