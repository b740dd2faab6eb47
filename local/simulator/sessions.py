"""The app's sessions, as the two session services keep them (driver-authorizer, eats-passport).

One store for both services, so one control makes either kind:

    POST /_control/sessions {"kind": "driver", "park_id": "...", "driver_profile_id": "..."}  -> {"token": "..."}
    POST /_control/sessions {"kind": "eats_user", "user_id": "..."}                            -> {"token": "..."}
         optional "expires_in": seconds (default 3600; 0 = already expired)
    POST /_control/sessions/expire {"token": "..."}    # the session expires now (the check answers 401)

Identity values are stored as given (any string), so tests can hand the app odd or oversized ones: checking
them is the app's job, not the session service's.
"""
from __future__ import annotations

import secrets
import time

KINDS = {"driver": ("park_id", "driver_profile_id"), "eats_user": ("user_id",)}
DEFAULT_EXPIRES_IN = 3600.0

_sessions: dict[str, dict] = {}  # token -> {"kind", "identity", "expires_at"}


def reset(kind: str) -> None:
    for token in [t for t, s in _sessions.items() if s["kind"] == kind]:
        del _sessions[token]


def check(kind: str, request) -> tuple[int, dict]:
    """POST /v1/session/check {"token"} -> 200 the identity | 401 unknown, expired or another kind's token."""
    body = request.body if isinstance(request.body, dict) else {}
    token = body.get("token")
    if not isinstance(token, str) or not token:
        return 400, {"code": "bad_request", "message": "token is required"}
    session = _sessions.get(token)
    if session is None or session["kind"] != kind or session["expires_at"] <= time.time():
        return 401, {"code": "unauthorized", "message": "unknown or expired session"}
    return 200, dict(session["identity"])


def _create(request) -> tuple[int, dict]:
    body = request.body if isinstance(request.body, dict) else {}
    fields = KINDS.get(body.get("kind"))
    if fields is None:
        return 400, {"code": "bad_request", "message": f"kind must be one of {sorted(KINDS)}"}
    identity = {name: body.get(name) for name in fields}
    if not all(isinstance(value, str) for value in identity.values()):
        return 400, {"code": "bad_request", "message": f"{', '.join(fields)} must be strings"}
    expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or expires_in < 0:
        return 400, {"code": "bad_request", "message": "expires_in must be a number of seconds >= 0"}
    token = secrets.token_urlsafe(24)
    _sessions[token] = {"kind": body["kind"], "identity": identity, "expires_at": time.time() + expires_in}
    return 200, {"token": token}


def _expire(request) -> tuple[int, dict]:
    body = request.body if isinstance(request.body, dict) else {}
    session = _sessions.get(body.get("token")) if isinstance(body.get("token"), str) else None
    if session is None:
        return 404, {"code": "not_found", "message": "no such session"}
    session["expires_at"] = time.time() - 1
    return 200, {"status": "expired"}


CONTROL_ROUTES = [
    ("POST", r"sessions", _create),
    ("POST", r"sessions/expire", _expire),
]
