"""Cargo: the public Yandex Delivery claims API v2 (facts: ../shared/CARGO-API-NOTES.md), stateful.

Protocol (prefix /cargo/b2b/cargo/integration/v2/claims; errors {"code", "message"}):
    POST create?request_id=<1..128 chars> {claim body}
         -> 200 the whole claim {"id", "status", "version", "revision", "items", "route_points": [{"id",
            "point_id", "visit_order", "type", "address": {"fullname", "coordinates": [lon, lat]},
            "contact", "skip_confirmation", "external_order_id"?, "visit_status"}], "current_point_id",
            "performer_info", "created_ts", "updated_ts", ...}
         A request_id seen before answers the FIRST claim, whatever the body (no 409).
         A route point's `id` here is the `point_id` the body gave it (the real API assigns its own: clients
         read ids from the claim). 400 validation_error: no items, < 2 or > 300 points, duplicate point_id,
         a type outside source/destination/return, coordinates not [lon, lat] numbers in range.
         Estimation is instant: the claim is answered "new" and moves to "ready_for_approval" at once
         (two journal events).
    POST info?claim_id= -> the whole claim; 404 not_found
         `performer_info` is {"park_id", "driver_profile_id", "courier_name"} once a performer is found.
    POST accept?claim_id= {"version"} -> {"id", "status": "accepted", "version"}; 409 old_version (version is not
         the claim's), 409 inappropriate_status (not ready_for_approval). Accepting moves it to
         "performer_lookup" (journal: accepted, performer_lookup).
    POST cancel?claim_id= {"version", "cancel_state"} -> {"id", "status": "cancelled"}; 409 before pickup only
    POST journal {"cursor"?} -> {"cursor", "events": [{"operation_id", "claim_id", "change_type":
         "status_changed", "new_status", "updated_ts", "revision", "current_point_id"?, "resolution"?}]}
         At most `limit` (default 100, <= 1000) events from the cursor; the same cursor and no events when
         nothing is new; an unknown cursor -> 400 bad_cursor. Without a cursor: from the start.

Controls:
    GET  /_control/cargo/claims -> {"claims": [{"id", "request_id", "status", "body": <create body as sent>,
         "revision", "version", "current_point_id", "accepted"}]}
    POST /_control/cargo/claims/<claim_id>/advance {"status", "current_point_id"?, "performer":
         {"park_id", "driver_profile_id"}?, "version"?}   # moves the claim, writes its journal event
    POST /_control/cargo/journal/repeat {"count": N}      # the last N events again (at-least-once delivery)
    POST /_control/cargo/journal/drop {"claim_id", "count"}   # the journal silently loses that claim's next
         `count` events (the claim still moves: claims/info tells the truth)
    POST /_control/cargo/create/lose_answers {"count", "delay"?}   # the next `count` creates are made (or, for a
         request_id seen before, answered with its first claim) but answered `delay` seconds late (default 3: past
         the client's read timeout, so the caller sees a timeout)
    Faults: POST /_control/faults {"upstream": "cargo", ...} (5xx, 429, timeouts).
Authorization: a call carrying an Authorization header that is not `Bearer <token>` -> 401 unauthorized (no
header at all is accepted: the local stage has no token).
"""
from __future__ import annotations

import datetime as dt
import itertools
import uuid

NAME = "cargo"
PREFIX = "/b2b/cargo/integration/v2/claims"
POINT_TYPES = ("source", "destination", "return")
CANCELLABLE = {"new", "estimating", "ready_for_approval", "accepted", "performer_lookup", "performer_draft",
               "performer_found", "performer_not_found", "pickup_arrived", "ready_for_pickup_confirmation"}
TERMINAL_RESOLUTION = {"delivered_finish": "success", "returned_finish": "success", "failed": "failed",
                       "cancelled": "cancelled", "performer_not_found": "failed", "estimating_failed": "failed"}

_claims: dict[str, dict] = {}
_bodies: dict[str, dict] = {}
_request_ids: dict[str, str] = {}
_journal: list[dict] = []
_drops: dict[str, int] = {}  # claim id -> how many of its next events the journal loses
_lost_answers = {"count": 0, "delay": 3.0}
_ops = itertools.count(1)


def reset() -> None:
    global _ops
    _ops = itertools.count(1)
    for store in (_claims, _bodies, _request_ids, _drops):
        store.clear()
    _journal.clear()
    _lost_answers.update(count=0, delay=3.0)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _error(status: int, code: str, message: str):
    return status, {"code": code, "message": message}


def _event(claim: dict) -> None:
    claim["revision"] += 1
    claim["updated_ts"] = _now()
    event = {"operation_id": next(_ops), "claim_id": claim["id"], "change_type": "status_changed",
             "new_status": claim["status"], "updated_ts": claim["updated_ts"], "revision": claim["revision"]}
    if claim.get("current_point_id") is not None:
        event["current_point_id"] = claim["current_point_id"]
    if claim["status"] in TERMINAL_RESOLUTION:
        event["resolution"] = TERMINAL_RESOLUTION[claim["status"]]
    if _drops.get(claim["id"], 0) > 0:
        _drops[claim["id"]] -= 1  # lost on the way: the claim moved, the journal never says so
        return
    _journal.append(event)


def _move(claim: dict, status: str) -> None:
    claim["status"] = status
    _event(claim)


def _coordinates_ok(value) -> bool:
    return (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
            and -180 <= value[0] <= 180 and -90 <= value[1] <= 90)


def _validate(body) -> str | None:
    if not isinstance(body, dict):
        return "the body is a JSON object"
    items, points = body.get("items"), body.get("route_points")
    if not isinstance(items, list) or not items:
        return "items: at least one"
    if not isinstance(points, list) or not 2 <= len(points) <= 300:
        return "route_points: 2..300"
    seen = set()
    for point in points:
        if not isinstance(point, dict) or not isinstance(point.get("point_id"), int):
            return "route_points[].point_id: an integer"
        if point["point_id"] in seen:
            return "route_points[].point_id: unique"
        seen.add(point["point_id"])
        if point.get("type") not in POINT_TYPES:
            return "route_points[].type: source, destination or return"
        if not _coordinates_ok((point.get("address") or {}).get("coordinates")):
            return "route_points[].address.coordinates: [lon, lat]"
    for item in items:
        if not isinstance(item, dict) or item.get("pickup_point") not in seen:
            return "items[].pickup_point: a route point's point_id"
    return None


def _public(claim: dict) -> dict:
    return {k: v for k, v in claim.items() if not k.startswith("_")}


def _late(answer: tuple):
    """The answer as it is, or sent too late for the caller when create answers are being lost."""
    if _lost_answers["count"] > 0 and answer[0] == 200:
        _lost_answers["count"] -= 1
        return answer[0], answer[1], {}, _lost_answers["delay"]
    return answer


def _create(request):
    return _late(_make_claim(request))


def _make_claim(request):
    request_id = request.query.get("request_id", "")
    if not 1 <= len(request_id) <= 128:
        return _error(400, "validation_error", "request_id: 1..128 characters")
    if request_id in _request_ids:
        return 200, _public(_claims[_request_ids[request_id]])
    problem = _validate(request.body)
    if problem:
        return _error(400, "validation_error", problem)
    body = request.body
    claim_id = uuid.uuid4().hex
    points = [{"id": p["point_id"], "point_id": p["point_id"], "visit_order": p.get("visit_order"),
               "type": p["type"], "address": p["address"], "contact": p.get("contact"),
               "skip_confirmation": bool(p.get("skip_confirmation", False)),
               "external_order_id": p.get("external_order_id"), "visit_status": "pending"} for p in body["route_points"]]
    claim = {"id": claim_id, "status": "new", "version": 1, "revision": 0, "items": body["items"],
             "route_points": points, "current_point_id": None, "performer_info": None,
             "created_ts": _now(), "updated_ts": _now(), "_request_id": request_id}
    _claims[claim_id], _bodies[claim_id], _request_ids[request_id] = claim, body, claim_id
    _event(claim)
    answer = _public(claim)  # the create answer says "new"; estimation follows at once
    answer = {**answer, "route_points": [dict(p) for p in points]}
    _move(claim, "ready_for_approval")
    return 200, answer


def _claim_or_404(request):
    claim = _claims.get(request.query.get("claim_id", ""))
    return claim, _error(404, "not_found", "no such claim")


def _info(request):
    claim, missing = _claim_or_404(request)
    return (200, _public(claim)) if claim else missing


def _accept(request):
    claim, missing = _claim_or_404(request)
    if claim is None:
        return missing
    version = (request.body or {}).get("version") if isinstance(request.body, dict) else None
    if version != claim["version"]:
        return _error(409, "old_version", "the claim has another version")
    if claim["status"] != "ready_for_approval":
        return _error(409, "inappropriate_status", f"the claim is {claim['status']}")
    _move(claim, "accepted")
    answer = {"id": claim["id"], "status": "accepted", "version": claim["version"]}
    _move(claim, "performer_lookup")
    return 200, answer


def _cancel(request):
    claim, missing = _claim_or_404(request)
    if claim is None:
        return missing
    body = request.body if isinstance(request.body, dict) else {}
    if body.get("version") != claim["version"]:
        return _error(409, "old_version", "the claim has another version")
    if claim["status"] not in CANCELLABLE:
        return _error(409, "inappropriate_status", f"the claim is {claim['status']}")
    _move(claim, "cancelled")
    return 200, {"id": claim["id"], "status": "cancelled", "version": claim["version"]}


def _journal_page(request):
    body = request.body if isinstance(request.body, dict) else {}
    cursor = body.get("cursor")
    start = 0
    if cursor is not None:
        try:
            start = int(str(cursor).removeprefix("c-"))
        except ValueError:
            return _error(400, "bad_cursor", "unknown cursor")
        if not 0 <= start <= len(_journal):
            return _error(400, "bad_cursor", "unknown cursor")
    limit = body.get("limit", 100)
    limit = max(1, min(int(limit), 1000)) if isinstance(limit, int) else 100
    events = [dict(e) for e in _journal[start:start + limit]]
    return 200, {"cursor": f"c-{start + len(events)}", "events": events}


def _authorized(handler):
    """A call that carries Authorization must carry `Bearer <token>` (any token; the local stage sends none)."""
    def checked(request):
        value = request.headers.get("authorization")
        if value is not None and (not value.startswith("Bearer ") or not value[7:].strip()):
            return _error(401, "unauthorized", "Authorization: Bearer <OAuth token>")
        return handler(request)

    return checked


ROUTES = [
    ("POST", PREFIX + r"/create", _authorized(_create)),
    ("POST", PREFIX + r"/info", _authorized(_info)),
    ("POST", PREFIX + r"/accept", _authorized(_accept)),
    ("POST", PREFIX + r"/cancel", _authorized(_cancel)),
    ("POST", PREFIX + r"/journal", _authorized(_journal_page)),
]


def _control_claims(request):
    return 200, {"claims": [
        {"id": c["id"], "request_id": c["_request_id"], "status": c["status"], "body": _bodies[c["id"]],
         "revision": c["revision"], "version": c["version"], "current_point_id": c["current_point_id"],
         "performer_info": c["performer_info"]}
        for c in _claims.values()]}


def _control_advance(request):
    claim = _claims.get(request.match["claim_id"])
    if claim is None:
        return _error(404, "not_found", "no such claim")
    body = request.body if isinstance(request.body, dict) else {}
    status = body.get("status")
    if not isinstance(status, str) or not status:
        return _error(400, "bad_request", "status is required")
    if "current_point_id" in body:
        claim["current_point_id"] = body["current_point_id"]
    performer = body.get("performer")
    if isinstance(performer, dict):
        claim["performer_info"] = {"park_id": performer.get("park_id"),
                                   "driver_profile_id": performer.get("driver_profile_id"),
                                   "courier_name": "Курьер"}
    if isinstance(body.get("version"), int):
        claim["version"] = body["version"]
    for point in claim["route_points"]:
        if point["id"] == claim["current_point_id"] and status.endswith("arrived"):
            point["visit_status"] = "arrived"
    _move(claim, status)
    return 200, _public(claim)


def _control_repeat(request):
    body = request.body if isinstance(request.body, dict) else {}
    count = body.get("count", 1)
    if not isinstance(count, int) or count < 1:
        return _error(400, "bad_request", "count is a positive integer")
    _journal.extend([dict(e) for e in _journal[-count:]])
    return 200, {"events": len(_journal)}


def _control_drop(request):
    body = request.body if isinstance(request.body, dict) else {}
    claim_id, count = body.get("claim_id"), body.get("count", 1)
    if claim_id not in _claims:
        return _error(404, "not_found", "no such claim")
    if not isinstance(count, int) or count < 0:
        return _error(400, "bad_request", "count is a non-negative integer")
    _drops[claim_id] = count
    return 200, {"claim_id": claim_id, "drop": count}


def _control_lose_answers(request):
    body = request.body if isinstance(request.body, dict) else {}
    count, delay = body.get("count", 1), body.get("delay", 3.0)
    if not isinstance(count, int) or count < 0:
        return _error(400, "bad_request", "count is a non-negative integer")
    if not isinstance(delay, (int, float)) or not 0 <= delay <= 30:
        return _error(400, "bad_request", "delay is 0..30 seconds")
    _lost_answers.update(count=count, delay=float(delay))
    return 200, dict(_lost_answers)


CONTROL_ROUTES = [
    ("GET", r"cargo/claims", _control_claims),
    ("POST", r"cargo/claims/(?P<claim_id>[^/]+)/advance", _control_advance),
    ("POST", r"cargo/journal/repeat", _control_repeat),
    ("POST", r"cargo/journal/drop", _control_drop),
    ("POST", r"cargo/create/lose_answers", _control_lose_answers),
]
