"""The scooter backend (the Drive backend the doc calls scooter-backend): cars, batteries, tags, servicing.

Protocol (all JSON; unknown car -> 404 {"code": "car_not_found"}; a missing field -> 400):
    GET  /scooter_backend/car/list?tags_filter=battery_low*-recharge_processing
         -> {"cars": [{"car_id", "position": [lon, lat], "tags": ["battery_low", ...]}]}
         Filter syntax: terms, each `name` (exact) or `name*` (prefix); a term after `-` excludes cars that have
         a matching tag, a first term or one after `+` requires one. Filtered here (server side): the answer
         grows with the matching cars, not the fleet. No filter: every car.
    GET  /scooter_backend/car/info?car_id=
         -> {"car_id", "position", "battery": {"id", "level"}, "tags": [{"tag_id", "tag", "performer"?,
             "details"?}], "signals": N}
    POST /scooter_backend/tag/add {"car_id", "tag"} -> {"tag_id", "tag"}   (idempotent: an existing tag of that
         name is returned as it is)
    POST /scooter_backend/tag/remove {"car_id", "tag"} -> {"removed": N}  (idempotent: 0 when absent)
    POST /scooter_backend/car/details {"car_id", "tag_id", "details": {...}} -> the tag (history on the service
         tag, e.g. {"performer": {"park_id", "driver_profile_id"}}; the tag may already be gone: then it is kept
         with the servicing record)
    POST /scooter_backend/servicing/start {"car_id", "tag_id", "performer": {"park_id", "driver_profile_id"}}
         -> {"car_id", "tag_id", "status": "started"}   (idempotent)
    POST /scooter_backend/servicing/finish {"car_id", "tag_id"} -> {"status": "finished"}  (idempotent; 409
         {"code": "not_started"} when it never started)
    POST /scooter_backend/car/signal {"car_id"} -> {"car_id", "signals": N}
    POST /scooter_backend/car/battery_door/open {"car_id"} -> {"car_id", "battery": {"id", "level": 100}}:
         the swap: the courier puts a charged battery in, so the car reports a NEW battery id at 100 %.
         A door set stuck answers 409 {"code": "door_stuck"} and swaps nothing.

Batteries: a car set at or under 30 % gets a `battery_low` tag (a new tag id); from then on its tags change only
through the tag calls (charging it again through the control does not remove the tag).

Controls:
    POST /_control/scooter_backend/cars {"car_id", "position": [lon, lat], "battery_level", "battery_id"?,
         "door_stuck"?}            # creates or updates a car -> the car
    GET  /_control/scooter_backend/cars/<car_id>  -> {"car_id", "position", "battery", "tags": ["..."],
         "tag_details": [...], "servicing": {tag_id: {...}}, "signals", "door_opens", "door_stuck"}
    POST /_control/scooter_backend/fleet {"count", "discharged", "prefix"?}  # a bulk fleet (bench)
Faults: POST /_control/faults {"upstream": "scooter_backend", ...}.

Reset state: the demo scooter `demo-scooter-1` at [37.6200, 55.7530] with a full battery (the README discharges
it through the control to play a swap by hand); the demo depots and cabinets are near it.
"""
from __future__ import annotations

import itertools
import re

NAME = "scooter_backend"
LOW_LEVEL = 30
DEMO_CAR = {"car_id": "demo-scooter-1", "position": [37.6200, 55.7530], "battery_level": 100}

_cars: dict[str, dict] = {}
_ids = itertools.count(1)


def reset() -> None:
    _cars.clear()
    global _ids
    _ids = itertools.count(1)
    _upsert(dict(DEMO_CAR))


def _new_id(kind: str) -> str:
    return f"{kind}-{next(_ids)}"


def _bad(message: str):
    return 400, {"code": "bad_request", "message": message}


def _car_or_404(car_id):
    car = _cars.get(car_id) if isinstance(car_id, str) else None
    return car, (404, {"code": "car_not_found", "message": "no such car"})


def _upsert(body: dict) -> dict:
    car = _cars.setdefault(body["car_id"], {
        "car_id": body["car_id"], "position": [0.0, 0.0], "battery": {"id": _new_id("battery"), "level": 100},
        "tags": [], "servicing": {}, "signals": 0, "door_opens": 0, "door_stuck": False,
    })
    if "position" in body:
        car["position"] = [float(body["position"][0]), float(body["position"][1])]
    if body.get("battery_id"):
        car["battery"]["id"] = str(body["battery_id"])
    if "battery_level" in body:
        car["battery"]["level"] = int(body["battery_level"])
        if car["battery"]["level"] <= LOW_LEVEL and not any(t["tag"] == "battery_low" for t in car["tags"]):
            car["tags"].append({"tag_id": _new_id("tag"), "tag": "battery_low"})
    if "door_stuck" in body:
        car["door_stuck"] = bool(body["door_stuck"])
    return car


def _parse_filter(text: str) -> list[tuple[bool, str, bool]]:
    """[(include, name, is_prefix)] from e.g. "battery_low*-recharge_processing"."""
    terms = []
    for sign, term in re.findall(r"([+-]?)([^+-]+)", text or ""):
        term = term.strip()
        if term:
            terms.append((sign != "-", term.rstrip("*"), term.endswith("*")))
    return terms


def _matches(tags: list[str], terms) -> bool:
    for include, name, is_prefix in terms:
        hit = any(tag.startswith(name) if is_prefix else tag == name for tag in tags)
        if hit != include:
            return False
    return True


def _list(request):
    terms = _parse_filter(request.query.get("tags_filter", ""))
    cars = []
    for car in _cars.values():
        names = [t["tag"] for t in car["tags"]]
        if _matches(names, terms):
            cars.append({"car_id": car["car_id"], "position": car["position"], "tags": names})
    return 200, {"cars": cars}


def _info_body(car: dict) -> dict:
    return {"car_id": car["car_id"], "position": car["position"], "battery": dict(car["battery"]),
            "tags": [dict(t) for t in car["tags"]], "signals": car["signals"]}


def _info(request):
    car, missing = _car_or_404(request.query.get("car_id"))
    return (200, _info_body(car)) if car else missing


def _body(request) -> dict:
    return request.body if isinstance(request.body, dict) else {}


def _tag_add(request):
    body = _body(request)
    car, missing = _car_or_404(body.get("car_id"))
    if not car:
        return missing
    tag = body.get("tag")
    if not isinstance(tag, str) or not tag:
        return _bad("tag is required")
    for existing in car["tags"]:
        if existing["tag"] == tag:
            return 200, dict(existing)
    entry = {"tag_id": _new_id("tag"), "tag": tag}
    if isinstance(body.get("comment"), str):
        entry["comment"] = body["comment"]
    car["tags"].append(entry)
    return 200, dict(entry)


def _tag_remove(request):
    body = _body(request)
    car, missing = _car_or_404(body.get("car_id"))
    if not car:
        return missing
    tag = body.get("tag")
    if not isinstance(tag, str) or not tag:
        return _bad("tag is required")
    before = len(car["tags"])
    car["tags"] = [t for t in car["tags"] if t["tag"] != tag]
    return 200, {"removed": before - len(car["tags"])}


def _details(request):
    body = _body(request)
    car, missing = _car_or_404(body.get("car_id"))
    if not car:
        return missing
    tag_id, details = body.get("tag_id"), body.get("details")
    if not isinstance(tag_id, str) or not isinstance(details, dict):
        return _bad("tag_id and details are required")
    record = car["servicing"].setdefault(tag_id, {"status": "none"})
    record.setdefault("details", {}).update(details)
    for tag in car["tags"]:
        if tag["tag_id"] == tag_id:
            tag.setdefault("details", {}).update(details)
            if "performer" in details:
                tag["performer"] = details["performer"]
    return 200, {"car_id": car["car_id"], "tag_id": tag_id, "details": record["details"]}


def _servicing_start(request):
    body = _body(request)
    car, missing = _car_or_404(body.get("car_id"))
    if not car:
        return missing
    tag_id, performer = body.get("tag_id"), body.get("performer")
    if not isinstance(tag_id, str) or not isinstance(performer, dict):
        return _bad("tag_id and performer are required")
    record = car["servicing"].setdefault(tag_id, {"status": "none"})
    if record["status"] != "finished":
        record.update(status="started", performer=performer)
    return 200, {"car_id": car["car_id"], "tag_id": tag_id, "status": record["status"]}


def _servicing_finish(request):
    body = _body(request)
    car, missing = _car_or_404(body.get("car_id"))
    if not car:
        return missing
    tag_id = body.get("tag_id")
    record = car["servicing"].get(tag_id) if isinstance(tag_id, str) else None
    if record is None or record["status"] == "none":
        return 409, {"code": "not_started", "message": "servicing was never started for this tag"}
    record["status"] = "finished"
    return 200, {"car_id": car["car_id"], "tag_id": tag_id, "status": "finished"}


def _signal(request):
    car, missing = _car_or_404(_body(request).get("car_id"))
    if not car:
        return missing
    car["signals"] += 1
    return 200, {"car_id": car["car_id"], "signals": car["signals"]}


def _door_open(request):
    car, missing = _car_or_404(_body(request).get("car_id"))
    if not car:
        return missing
    if car["door_stuck"]:
        return 409, {"code": "door_stuck", "message": "the battery door does not open"}
    car["door_opens"] += 1
    car["battery"] = {"id": _new_id("battery"), "level": 100}
    return 200, {"car_id": car["car_id"], "battery": dict(car["battery"])}


ROUTES = [
    ("GET", r"/car/list", _list),
    ("GET", r"/car/info", _info),
    ("POST", r"/tag/add", _tag_add),
    ("POST", r"/tag/remove", _tag_remove),
    ("POST", r"/car/details", _details),
    ("POST", r"/servicing/start", _servicing_start),
    ("POST", r"/servicing/finish", _servicing_finish),
    ("POST", r"/car/signal", _signal),
    ("POST", r"/car/battery_door/open", _door_open),
]


def _control_car_body(car: dict) -> dict:
    return {"car_id": car["car_id"], "position": car["position"], "battery": dict(car["battery"]),
            "tags": [t["tag"] for t in car["tags"]], "tag_details": [dict(t) for t in car["tags"]],
            "servicing": {k: dict(v) for k, v in car["servicing"].items()}, "signals": car["signals"],
            "door_opens": car["door_opens"], "door_stuck": car["door_stuck"]}


def _set_car(request):
    body = _body(request)
    if not isinstance(body.get("car_id"), str) or not body["car_id"]:
        return _bad("car_id is required")
    position = body.get("position")
    if position is not None and (not isinstance(position, list) or len(position) != 2):
        return _bad("position is [lon, lat]")
    if "battery_level" in body and not isinstance(body["battery_level"], (int, float)):
        return _bad("battery_level is a number")
    return 200, _control_car_body(_upsert(body))


def _get_car(request):
    car = _cars.get(request.match["car_id"])
    if car is None:
        return 404, {"code": "car_not_found", "message": "no such car"}
    return 200, _control_car_body(car)


def _fleet(request):
    body = _body(request)
    count, discharged = int(body.get("count", 0)), int(body.get("discharged", 0))
    prefix = str(body.get("prefix", "fleet"))
    for n in range(count):
        _upsert({"car_id": f"{prefix}-{n}", "position": [37.5 + (n % 100) / 1000, 55.7 + (n // 100) / 1000],
                 "battery_level": 20 if n < discharged else 90})
    return 200, {"cars": len(_cars)}


CONTROL_ROUTES = [
    ("POST", r"scooter_backend/cars", _set_car),
    ("GET", r"scooter_backend/cars/(?P<car_id>[^/]+)", _get_car),
    ("POST", r"scooter_backend/fleet", _fleet),
]
