"""The gateway's authorizers: who is calling on driver and eats-user routes, decided before any view runs.

Two Chalice built-in TOKEN authorizers. Each packages as a Lambda of its own, imported WITHOUT app.py, and runs on
every call the gateway has not cached: this module imports only core.http (requests on the first call), the
settings and the identity rule, and builds no pydantic model of its own. It lives in core because every service
with driver or eats-user routes names these authorizers on its routes (core/api.py), and each service's API
function imports its own service and core only.

    X-Driver-Session: <token> -> driver-authorizer  POST /v1/session/check {"token"} -> {"park_id", "driver_profile_id"}
    X-Eats-Session: <token>   -> eats-passport      POST /v1/session/check {"token"} -> {"user_id"}

What API Gateway makes of each outcome (shapes from the gateway responses in deploy/template.py):
- a live session whose ids pass the identity rule: Allow on every route of the API, with the ids in the context
  (`current_request.context["authorizer"]`). The gateway caches this answer per token for
  AUTHORIZER_CACHE_SECONDS, for every route, hence the policy covers them all rather than the one method asked.
- no header (the gateway itself), a malformed token, an unknown or expired session: `Unauthorized` -> 401.
- a session whose ids break the identity rule (odd characters, oversized): an explicit Deny -> 403.
- the session service down (timeouts, 5xx after the retries) or answering nonsense: SessionServiceUnavailable ->
  AUTHORIZER_FAILURE, which the gateway answers 503 `session_service_unavailable` with Retry-After: fail closed,
  never let through, and the client knows to retry.

Chalice's test client differs (see ../shared/EMULATOR-NOTES.md): it reads the token from `Authorization`
whatever `header=` says, raises these exceptions into the test instead of answering 401/503, and keeps the
context values as they are (the gateway stringifies them; ours are strings already).
"""
from __future__ import annotations

import re

from chalice import Blueprint

from chalicelib.core import http
from chalicelib.core.identity import DRIVER, EATS_USER, valid_identity_value
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable
from chalicelib.core.logs import get_logger
from chalicelib.core.settings import get_settings

bp = Blueprint(__name__)
log = get_logger(__name__)

DRIVER_SESSION_HEADER = "X-Driver-Session"
EATS_SESSION_HEADER = "X-Eats-Session"
CHECK_PATH = "/v1/session/check"
# A session header's value: a token as the session services issue them (URL-safe base64 and the like), maybe
# after "Bearer ". Anything else is not a session. This one pattern is also each authorizer's
# identityValidationExpression in the template (deploy/edge.py), so API Gateway itself answers 401 to a
# malformed header without running the authorizer; the Lambda checks it again (Chalice's test client skips the
# gateway). Anchored and written for both regex dialects: API Gateway's and Python's.
SESSION_HEADER_PATTERN = r"^(?:[Bb][Ee][Aa][Rr][Ee][Rr] +)?([A-Za-z0-9._~+/=-]{8,512})$"
_SESSION_HEADER = re.compile(SESSION_HEADER_PATTERN)
# The session service's "no such session" answers; any other 4xx means we asked wrongly: a failure, not a refusal.
_NO_SESSION = (401, 403, 404)
# The cache TTL is part of the template (API Gateway caches, not the Lambda), so it is read when `chalice
# package` imports this module; see core/settings.py.
_CACHE_SECONDS = get_settings().authorizer_cache_seconds


class Unauthorized(Exception):
    """Raised with the exact message "Unauthorized": the one failure API Gateway answers 401 (not 500)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class SessionServiceUnavailable(Exception):
    """The session could not be checked now; the gateway answers 503 (AUTHORIZER_FAILURE), never lets it through."""


def check_session(upstream: str, token: str | None, fields: tuple[str, ...]) -> dict[str, str] | None:
    """The session's identity from the session service: {field: value} if every value passes the identity
    rule, None if the session is live but its identity is not acceptable; raises Unauthorized for no session
    and SessionServiceUnavailable when the service cannot say."""
    header = _SESSION_HEADER.fullmatch((token or "").strip())
    if header is None:
        log.event("authorizer.refused", upstream=upstream, reason="malformed_token")
        raise Unauthorized()
    token = header.group(1)
    try:
        # A session check is a read with no side effect, so a retried POST cannot do anything twice: it gets
        # core.http's bounded retries by carrying a key. A fresh one per check: a key per token would let an
        # idempotent session service replay "valid" for a session that has ended since.
        answer = http.call_json(upstream, "POST", CHECK_PATH, json={"token": token},
                                idempotency_key=http.fresh_key())
    except UpstreamRejected as error:
        if error.upstream_status in _NO_SESSION:
            log.event("authorizer.refused", upstream=upstream, reason="unknown_or_expired")
            raise Unauthorized() from None
        log.warning_event("authorizer.session_service_failed", upstream=upstream, status=error.upstream_status)
        raise SessionServiceUnavailable(f"{upstream} refused the check ({error.upstream_status})") from None
    except UpstreamUnavailable as error:
        log.warning_event("authorizer.session_service_failed", upstream=upstream, code=error.code)
        raise SessionServiceUnavailable(f"{upstream} is unavailable") from None
    values = {name: answer.get(name) for name in fields} if isinstance(answer, dict) else {}
    if not values or not all(isinstance(value, str) for value in values.values()):
        log.warning_event("authorizer.session_service_failed", upstream=upstream, reason="unusable_answer")
        raise SessionServiceUnavailable(f"{upstream} answered without {', '.join(fields)}")
    if not all(valid_identity_value(value) for value in values.values()):
        # Lengths only: the values themselves are what the rule keeps out of logs.
        log.warning_event("authorizer.identity_refused", upstream=upstream,
                          lengths={name: len(value) for name, value in values.items()})
        return None
    return values


def _api_arn(method_arn: str) -> str:
    """arn:...:<api>/<stage>/<METHOD>/<path> -> arn:...:<api>/<stage>/*: every method and path of the stage."""
    return "/".join(method_arn.split("/")[:2]) + "/*"


def _policy(principal_id: str, effect: str, method_arn: str, context: dict[str, str] | None = None) -> dict:
    answer = {
        "principalId": principal_id,
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": [_api_arn(method_arn)]}]},
    }
    if context is not None:
        answer["context"] = context
    return answer


def _decide(kind: str, upstream: str, fields: tuple[str, ...], auth_request) -> dict:
    identity = check_session(upstream, auth_request.token, fields)
    if identity is None:
        return _policy(f"{kind}/refused", "Deny", auth_request.method_arn)
    # "/" is not an identity character, so the principal names one caller unambiguously ("a_b"+"c" != "a"+"b_c").
    return _policy("/".join([kind, *identity.values()]), "Allow", auth_request.method_arn, identity)


@bp.authorizer(header=DRIVER_SESSION_HEADER, ttl_seconds=_CACHE_SECONDS)
def driver_session_authorizer(auth_request) -> dict:
    """Driver routes: the driver app's session -> park_id and driver_profile_id."""
    return _decide(DRIVER, "driver_authorizer", ("park_id", "driver_profile_id"), auth_request)


@bp.authorizer(header=EATS_SESSION_HEADER, ttl_seconds=_CACHE_SECONDS)
def eats_session_authorizer(auth_request) -> dict:
    """Eats-user routes: the eats app's session -> user_id."""
    return _decide(EATS_USER, "eats_passport", ("user_id",), auth_request)


FOR_KIND = {DRIVER: driver_session_authorizer, EATS_USER: eats_session_authorizer}
# What each authorizer's header must look like before the gateway runs it (the template's
# identityValidationExpression, by authorizer name).
HEADER_PATTERNS = {authorizer.name: SESSION_HEADER_PATTERN for authorizer in FOR_KIND.values()}
