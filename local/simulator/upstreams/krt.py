"""KRT (АИС "КРТ"), the city's registry of taxi drivers: a plausible REST protocol, JSON over HTTPS, bearer token.

Token (OAuth 2 client credentials):
    POST /krt/oauth/token {"grant_type": "client_credentials", "client_id", "client_secret"}
      200 {"access_token", "token_type": "Bearer", "expires_in": <seconds>}
      401 {"code": "invalid_client"} wrong id or secret;  400 another grant type
Every /api call wants `Authorization: Bearer <access_token>`: 401 {"code": "invalid_token"} when the token is
unknown or expired.

Is this registry ID the driver's (the licence the ID was issued for)?
    POST /krt/api/v1/drivers/verify {"id", "licence_number"} -> 200 {"valid": true|false};  400 a field missing

A driver's line state changed (came on line / went off line), answered by the state of his shift:
    POST /krt/api/v1/line-states {"event_id", "id", "state": "on_line"|"off_line", "changed_at": ISO-8601}
      200 {"shift": {"status": "active"|"paused"|"finished"|"none", "ends_at": ISO-8601 | null}}
      404 {"code": "unknown_id"};  400 a field missing or malformed
    A shift starts when the driver comes on line with no running shift and lasts SHIFT_HOURS; off line pauses it.
    `event_id` makes the call idempotent: the same event_id again returns the first answer and changes nothing
    (the ledger below keeps one entry per event_id).

Rate limit: while a limit is set, /api calls answer 429 {"code": "rate_limited", "retry_after": <s>} with the
same wait in a `Retry-After` header (whole seconds).

Controls:
    POST /_control/krt/ids {"licence", "id"}         register a registry ID for a licence number
    POST /_control/krt/token_ttl {"seconds": 5}      lifetime of tokens issued from now on (default 3600)
    POST /_control/krt/expire_tokens {}              every issued token is refused from now on (-> 401)
    POST /_control/krt/rate_limit {"count": 3, "retry_after": 1}   the next 3 /api calls answer 429
    GET  /_control/krt/reports[?id=]                 what KRT acknowledged, one per event_id, in order:
                                                     {"reports": [...], "by_id": {id: [...]}, "last": {id: state}}
    GET  /_control/calls?upstream=krt                every call KRT got (the server's generic record)
    Latency and outages: the server's generic switches, e.g.
    POST /_control/faults {"upstream": "krt", "mode": "slow", "delay": 0.05}   (~50 ms per call, until reset)
    POST /_control/faults {"upstream": "krt", "mode": "error", "status": 503}   (KRT down)
The client the app uses: id "taxi-local", secret "local-secret" (the local stack seeds them into SSM).
Demo after every reset: licence "7799123456" (the demo driver's, see driver_profiles.py) has ID "AB123456".
"""
from __future__ import annotations

import datetime as dt
import re
import time
import uuid

NAME = "krt"
CLIENTS = {"taxi-local": "local-secret"}
SHIFT_HOURS = 12
DEMO_IDS = {"7799123456": "AB123456"}

_state: dict = {}


def reset() -> None:
    _state.clear()
    _state.update(tokens={}, token_ttl=3600, ids=dict(DEMO_IDS), reports={}, ledger=[], shifts={},
                  rate_limit={"count": 0, "retry_after": 1})


def _error(status: int, code: str, message: str = "", **extra):
    return status, {"code": code, "message": message or code, **extra}


def _parse_time(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _text(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


def _token(request):
    body = request.body if isinstance(request.body, dict) else {}
    if body.get("grant_type") != "client_credentials":
        return _error(400, "unsupported_grant_type")
    if CLIENTS.get(body.get("client_id")) != body.get("client_secret") or not body.get("client_secret"):
        return _error(401, "invalid_client")
    token = uuid.uuid4().hex
    _state["tokens"][token] = time.time() + _state["token_ttl"]
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": _state["token_ttl"]}


def _authorized(request):
    """None when the call may go on, else the error answer."""
    header = request.headers.get("authorization") or ""
    match = re.fullmatch(r"Bearer (\S+)", header)
    expires = _state["tokens"].get(match.group(1)) if match else None
    if expires is None or expires <= time.time():
        return _error(401, "invalid_token")
    limit = _state["rate_limit"]
    if limit["count"] > 0:
        limit["count"] -= 1
        status, body = _error(429, "rate_limited", retry_after=limit["retry_after"])
        return status, body, {"Retry-After": str(int(limit["retry_after"]))}
    return None


def _verify(request):
    refused = _authorized(request)
    if refused:
        return refused
    body = request.body if isinstance(request.body, dict) else {}
    registry_id, licence = body.get("id"), body.get("licence_number")
    if not isinstance(registry_id, str) or not registry_id or not isinstance(licence, str) or not licence:
        return _error(400, "bad_request", "id and licence_number are required")
    return 200, {"valid": _state["ids"].get(licence) == registry_id}


def _line_state(request):
    refused = _authorized(request)
    if refused:
        return refused
    body = request.body if isinstance(request.body, dict) else {}
    event_id, registry_id, state = body.get("event_id"), body.get("id"), body.get("state")
    changed_at = _parse_time(body.get("changed_at"))
    if not isinstance(event_id, str) or not event_id or not isinstance(registry_id, str) \
            or state not in ("on_line", "off_line") or changed_at is None:
        return _error(400, "bad_request", "event_id, id, state (on_line|off_line) and changed_at are required")
    if event_id in _state["reports"]:
        return 200, _state["reports"][event_id]["answer"]
    if registry_id not in _state["ids"].values():
        return _error(404, "unknown_id")
    shift = _state["shifts"].get(registry_id)
    if state == "on_line":
        if shift is None or shift["ends_at"] <= changed_at:
            shift = {"started_at": changed_at, "ends_at": changed_at + dt.timedelta(hours=SHIFT_HOURS)}
            _state["shifts"][registry_id] = shift
        status = "active"
    elif shift is None:
        status = "none"
    else:
        status = "finished" if shift["ends_at"] <= changed_at else "paused"
    answer = {"shift": {"status": status, "ends_at": _text(shift["ends_at"]) if shift else None}}
    report = {"event_id": event_id, "id": registry_id, "state": state, "changed_at": _text(changed_at),
              "answer": answer}
    _state["reports"][event_id] = report
    _state["ledger"].append(report)
    return 200, answer


def _set_id(body):
    licence, registry_id = body.get("licence"), body.get("id")
    if not isinstance(licence, str) or not licence or not isinstance(registry_id, str) or not registry_id:
        return _error(400, "bad_request", "licence and id are required")
    _state["ids"][licence] = registry_id
    return 200, {"licence": licence, "id": registry_id}


def _set_token_ttl(body):
    seconds = body.get("seconds")
    if not isinstance(seconds, int) or seconds < 1:
        return _error(400, "bad_request", "seconds is a positive integer")
    _state["token_ttl"] = seconds
    return 200, {"token_ttl": seconds}


def _expire_tokens(body):
    for token in _state["tokens"]:
        _state["tokens"][token] = 0
    return 200, {"expired": len(_state["tokens"])}


def _set_rate_limit(body):
    count, retry_after = body.get("count", 0), body.get("retry_after", 1)
    if not isinstance(count, int) or count < 0 or not isinstance(retry_after, (int, float)) or retry_after < 0:
        return _error(400, "bad_request", "count >= 0 and retry_after >= 0 are required")
    _state["rate_limit"] = {"count": count, "retry_after": retry_after}
    return 200, dict(_state["rate_limit"])


def _reports(request):
    wanted = request.query.get("id")
    reports = [r for r in _state["ledger"] if wanted is None or r["id"] == wanted]
    by_id: dict[str, list] = {}
    for report in reports:
        by_id.setdefault(report["id"], []).append(report)
    return 200, {"reports": reports, "by_id": by_id,
                 "last": {registry_id: entries[-1]["state"] for registry_id, entries in by_id.items()}}


ROUTES = [
    ("POST", r"/oauth/token", _token),
    ("POST", r"/api/v1/drivers/verify", _verify),
    ("POST", r"/api/v1/line-states", _line_state),
]
CONTROLS = {"ids": _set_id, "token_ttl": _set_token_ttl, "expire_tokens": _expire_tokens,
            "rate_limit": _set_rate_limit}
CONTROL_ROUTES = [("GET", r"krt/reports", _reports)]
