"""The battery cabinets service (scooter-accumulator): one cabinet per store, cells with charged batteries.

Protocol (prefix /scooter_accumulator/scooter-accumulator/v1/cabinet; JSON; a missing field -> 400):
    POST accumulator/available_for_booking {"store_ids": [...]}
         -> {"stores": [{"store_id", "cabinet_id", "available": N}]}   (stores without a cabinet are left out;
            available = charged cells not booked)
    POST accumulator/book {"cabinet_id", "accumulators_count": 1}   header X-Idempotency-Token (required)
         -> {"book_id", "cabinet_id", "cell_ids": [...]}; the same token answers the first booking again,
            whatever the body; 409 {"code": "no_accumulators"} when too few are free; 404 unknown cabinet
    POST booking/unbook {"book_id"} -> {"book_id", "status": "unbooked"}   (idempotent; frees cells not taken)
    POST booking/set_contractor {"book_id", "contractor_id"} -> the booking  (idempotent)
    POST booking/unset_contractor {"book_id"} -> the booking                 (idempotent)
    (unknown book_id -> 404 {"code": "booking_not_found"})
    GET  cells?cabinet_id= -> {"cabinet_id", "store_id", "open_cell_id": str|null, "cells": [{"cell_id", "state":
         "charged" (full) |"charging" (below 100 %) |"empty"|"open"|"broken", "has_battery", "accumulator_id",
         "charge", "book_id", "return_for"}]}
    For the courier:
    POST accumulator/return {"cabinet_id", "book_id", "cell_id", "accumulator_id": str|null}
         -> {"book_id", "cabinet_id", "cell_id", "accumulator_id", "status": "assigned"}: the cell is to hold the
            battery the booking's courier brings back (null: the booking's own battery, taken and unused); the
            cell then opens for that booking (cell/open). The same booking naming another cell moves its return
            there. 409 {"code": "cell_not_free"}: the cell holds a battery, is open, broken, or another
            booking's; 404 unknown cabinet, cell or booking. (Doc 003 names no such call: modelled on `book`.)
    POST cell/open {"cabinet_id", "book_id", "cell_id"}
         -> 200 {"cell_id", "state": "open"} (opening an already open cell of the same booking answers the same)
         -> 409 {"code": "cabinet_busy"}: another cell of this cabinet is open (one open cell per cabinet)
         -> 422 {"code": "cell_not_opened"}: the cell will not open (a stuck cell: definite; its state becomes
            "broken" and stays so); 400 {"code": "cell_not_booked"}: the cell is neither in that booking nor
            assigned to its return
    POST cell/close {"cabinet_id", "cell_id"} -> {"cell_id", "state"}: the door closed without taking the
         battery (back to "charged"). A battery taken out closes its cell by itself: state "empty" (the
         cabinet's sensor; played by the control `take` below).
    Timeouts and 5xx: POST /_control/faults {"upstream": "scooter_accumulator", "mode": "timeout"|"error"}.

Controls:
    POST /_control/scooter_accumulator/cabinets {"store_id", "cabinet_id", "charged": N, "position"?}
         creates or replaces the store's cabinet with N charged cells "<cabinet_id>-1".."-N" (its bookings go)
    POST /_control/scooter_accumulator/take {"cabinet_id", "cell_id"?}   # the courier takes the battery out of
         the open cell (or the named one): the cell becomes "empty" and closes
    POST /_control/scooter_accumulator/put {"cabinet_id", "cell_id"?, "charge"?, "accumulator_id"?}   # a battery
         into the open (or named) cell, which closes: the one accumulator/return announced, at `charge` % (20)
    GET  /_control/scooter_accumulator/cells?cabinet_id= -> {"cabinet_id", "cells": [{"cell_id", "state",
         "battery": {"id", "charge"} | null, "book_id", "return_for"}]}: each cell's battery or none
    POST /_control/scooter_accumulator/close {"cabinet_id", "cell_id"?}  # the open cell closes, battery kept
    POST /_control/scooter_accumulator/stuck {"cabinet_id", "cell_id", "stuck": true}  # the cell will not open
    POST /_control/scooter_accumulator/race {"cabinet_id"}  # someone else books every free cell at the next
         `book` on that cabinet (after our availability read): that book answers 409
    GET  /_control/scooter_accumulator/state -> {"cabinets": {...}, "bookings": {...}}

Reset state (the demo, near the demo scooter at [37.6200, 55.7530]): store "grocery:demo-1" with cabinet
"demo-cabinet-1" (3 charged) at [37.6170, 55.7550]; store "garage:demo-2" with "demo-cabinet-2" (2 charged)
at [37.6400, 55.7600].
"""
from __future__ import annotations

import itertools

NAME = "scooter_accumulator"
PREFIX = "/scooter-accumulator/v1/cabinet"
DEMO_CABINETS = [
    {"store_id": "grocery:demo-1", "cabinet_id": "demo-cabinet-1", "charged": 3, "position": [37.6170, 55.7550]},
    {"store_id": "garage:demo-2", "cabinet_id": "demo-cabinet-2", "charged": 2, "position": [37.6400, 55.7600]},
]

_cabinets: dict[str, dict] = {}
_by_store: dict[str, str] = {}
_bookings: dict[str, dict] = {}
_tokens: dict[str, str] = {}
_races: set[str] = set()
_ids = itertools.count(1)


def reset() -> None:
    global _ids
    _ids = itertools.count(1)
    for store in (_cabinets, _by_store, _bookings, _tokens):
        store.clear()
    _races.clear()
    for cabinet in DEMO_CABINETS:
        _put_cabinet(dict(cabinet))


def _put_cabinet(body: dict) -> dict:
    cabinet_id = body["cabinet_id"]
    old = _cabinets.pop(cabinet_id, None)
    if old:
        _by_store.pop(old["store_id"], None)
    for store_id, known in list(_by_store.items()):
        if store_id == body["store_id"]:
            _cabinets.pop(known, None)
    for booking in (b for b in _bookings.values() if b["cabinet_id"] == cabinet_id):
        booking["status"] = "unbooked"
    cells = {f"{cabinet_id}-{n}": {"cell_id": f"{cabinet_id}-{n}", "door": "closed", "stuck": False,
                                   "broken": False, "book_id": None, "return_for": None, "expected": None,
                                   "battery": {"id": f"acc-{cabinet_id}-{n}", "charge": 100}}
             for n in range(1, int(body.get("charged", 0)) + 1)}
    cabinet = {"cabinet_id": cabinet_id, "store_id": body["store_id"], "position": body.get("position"),
               "cells": cells}
    _cabinets[cabinet_id] = cabinet
    _by_store[body["store_id"]] = cabinet_id
    return cabinet


def _state(cell: dict) -> str:
    if cell["broken"]:
        return "broken"
    if cell["door"] == "open":
        return "open"
    if cell["battery"] is None:
        return "empty"
    return "charged" if cell["battery"]["charge"] >= 100 else "charging"


def _free(cabinet: dict) -> list[dict]:
    """Cells with a full battery nobody booked: what can be booked."""
    return [c for c in cabinet["cells"].values()
            if _state(c) == "charged" and c["book_id"] is None and c["return_for"] is None]


def _open_cell(cabinet: dict) -> dict | None:
    return next((c for c in cabinet["cells"].values() if c["door"] == "open"), None)


def _body(request) -> dict:
    return request.body if isinstance(request.body, dict) else {}


def _bad(message: str):
    return 400, {"code": "bad_request", "message": message}


def _available(request):
    store_ids = _body(request).get("store_ids")
    if not isinstance(store_ids, list) or not all(isinstance(s, str) for s in store_ids):
        return _bad("store_ids is a list of strings")
    stores = []
    for store_id in store_ids:
        cabinet = _cabinets.get(_by_store.get(store_id, ""))
        if cabinet:
            stores.append({"store_id": store_id, "cabinet_id": cabinet["cabinet_id"],
                           "available": len(_free(cabinet))})
    return 200, {"stores": stores}


def _booking_body(booking: dict) -> dict:
    return {k: booking.get(k) for k in ("book_id", "cabinet_id", "cell_ids", "contractor_id", "status", "taken",
                                        "return_cell")}


def _book(request):
    body = _body(request)
    token = request.headers.get("x-idempotency-token")
    if not token:
        return _bad("X-Idempotency-Token is required")
    if token in _tokens:
        return 200, _booking_body(_bookings[_tokens[token]])
    cabinet = _cabinets.get(body.get("cabinet_id") or "")
    count = body.get("accumulators_count", 1)
    if not isinstance(count, int) or count < 1:
        return _bad("accumulators_count is a positive integer")
    if cabinet is None:
        return 404, {"code": "cabinet_not_found", "message": "no such cabinet"}
    if cabinet["cabinet_id"] in _races:
        _races.discard(cabinet["cabinet_id"])
        _new_booking(cabinet, _free(cabinet), None)  # someone else took every free cell
    free = _free(cabinet)
    if len(free) < count:
        return 409, {"code": "no_accumulators", "message": "not enough charged batteries left"}
    booking = _new_booking(cabinet, free[:count], token)
    _tokens[token] = booking["book_id"]
    return 200, _booking_body(booking)


def _new_booking(cabinet: dict, cells: list[dict], token: str | None) -> dict:
    book_id = f"book-{next(_ids)}"
    for cell in cells:
        cell["book_id"] = book_id
    _bookings[book_id] = {"book_id": book_id, "cabinet_id": cabinet["cabinet_id"], "token": token,
                          "cell_ids": [c["cell_id"] for c in cells], "contractor_id": None, "status": "booked",
                          "taken": [], "return_cell": None}
    return _bookings[book_id]


def _booking_or_404(request):
    booking = _bookings.get(str(_body(request).get("book_id")))
    return booking, (404, {"code": "booking_not_found", "message": "no such booking"})


def _unbook(request):
    booking, missing = _booking_or_404(request)
    if booking is None:
        return missing
    if booking["status"] != "unbooked":
        booking["status"] = "unbooked"
        cabinet = _cabinets.get(booking["cabinet_id"])
        for cell_id in booking["cell_ids"]:
            cell = cabinet["cells"].get(cell_id) if cabinet else None
            if cell and cell["book_id"] == booking["book_id"]:
                cell["book_id"] = None
    return 200, {"book_id": booking["book_id"], "status": "unbooked"}


def _set_contractor(request):
    booking, missing = _booking_or_404(request)
    if booking is None:
        return missing
    contractor_id = _body(request).get("contractor_id")
    if not isinstance(contractor_id, str) or not contractor_id:
        return _bad("contractor_id is required")
    booking["contractor_id"] = contractor_id
    return 200, _booking_body(booking)


def _unset_contractor(request):
    booking, missing = _booking_or_404(request)
    if booking is None:
        return missing
    booking["contractor_id"] = None
    return 200, _booking_body(booking)


def _cells_body(cabinet: dict) -> dict:
    open_cell = _open_cell(cabinet)
    return {"cabinet_id": cabinet["cabinet_id"], "store_id": cabinet["store_id"],
            "open_cell_id": open_cell["cell_id"] if open_cell else None,
            "cells": [{"cell_id": c["cell_id"], "state": _state(c), "has_battery": c["battery"] is not None,
                       "accumulator_id": (c["battery"] or {}).get("id"), "charge": (c["battery"] or {}).get("charge"),
                       "book_id": c["book_id"], "return_for": c["return_for"]} for c in cabinet["cells"].values()]}


def _cells(request, body=_cells_body):
    cabinet = _cabinets.get(request.query.get("cabinet_id", ""))
    if cabinet is None:
        return 404, {"code": "cabinet_not_found", "message": "no such cabinet"}
    return 200, body(cabinet)


def _cell_of(body: dict):
    cabinet = _cabinets.get(body.get("cabinet_id") or "")
    if cabinet is None:
        return None, None, (404, {"code": "cabinet_not_found", "message": "no such cabinet"})
    cell = cabinet["cells"].get(body.get("cell_id") or "")
    if cell is None:
        return cabinet, None, (404, {"code": "cell_not_found", "message": "no such cell"})
    return cabinet, cell, None


def _cell_open(request):
    body = _body(request)
    cabinet, cell, error = _cell_of(body)
    if error:
        return error
    book_id = body.get("book_id")
    if book_id is None or book_id not in (cell["book_id"], cell["return_for"]):
        return 400, {"code": "cell_not_booked", "message": "the cell is not in this booking"}
    already = _open_cell(cabinet)
    if already is cell:
        return 200, {"cell_id": cell["cell_id"], "state": "open"}
    if already is not None:
        return 409, {"code": "cabinet_busy", "message": "another cell of this cabinet is open"}
    if cell["stuck"] or cell["broken"]:
        cell["broken"] = True
        return 422, {"code": "cell_not_opened", "message": "the cell did not open"}
    cell["door"] = "open"
    return 200, {"cell_id": cell["cell_id"], "state": "open"}


def _cell_close(request):
    cabinet, cell, error = _cell_of(_body(request))
    return error or _closed(cell)


def _closed(cell: dict):
    cell["door"] = "closed"
    return 200, {"cell_id": cell["cell_id"], "state": _state(cell)}


def _return(request):
    body = _body(request)
    cabinet, cell, error = _cell_of(body)
    if error:
        return error
    booking = _bookings.get(body.get("book_id") or "")
    if booking is None or booking["cabinet_id"] != cabinet["cabinet_id"]:
        return 404, {"code": "booking_not_found", "message": "no such booking in this cabinet"}
    book_id = booking["book_id"]
    if cell["return_for"] == book_id and _state(cell) != "broken":
        return 200, _returned(booking, cell)
    if (_state(cell) != "empty" or cell["book_id"] not in (None, book_id) or cell["return_for"] is not None):
        return 409, {"code": "cell_not_free", "message": "the cell cannot take a returned battery"}
    previous = cabinet["cells"].get(booking.get("return_cell") or "")
    if previous is not None and previous is not cell and previous["battery"] is None:
        previous["return_for"] = previous["expected"] = None  # moved: that cell did not open
    own = booking["taken"][0] if booking["taken"] else None  # the booking's own battery, unused
    cell["return_for"], cell["expected"] = book_id, body.get("accumulator_id") or own
    booking["return_cell"] = cell["cell_id"]
    return 200, _returned(booking, cell)


def _returned(booking: dict, cell: dict) -> dict:
    return {"book_id": booking["book_id"], "cabinet_id": booking["cabinet_id"], "cell_id": cell["cell_id"],
            "accumulator_id": cell["expected"], "status": "assigned"}


ROUTES = [(method, PREFIX + path, handler) for method, path, handler in (
    ("POST", r"/accumulator/available_for_booking", _available),
    ("POST", r"/accumulator/book", _book),
    ("POST", r"/accumulator/return", _return),
    ("POST", r"/booking/unbook", _unbook),
    ("POST", r"/booking/set_contractor", _set_contractor),
    ("POST", r"/booking/unset_contractor", _unset_contractor),
    ("GET", r"/cells", _cells),
    ("POST", r"/cell/open", _cell_open),
    ("POST", r"/cell/close", _cell_close),
)]


def _control_cabinets(body):
    if not isinstance(body.get("store_id"), str) or not isinstance(body.get("cabinet_id"), str):
        return _bad("store_id and cabinet_id are required")
    if not isinstance(body.get("charged", 0), int) or body.get("charged", 0) < 0:
        return _bad("charged is a count")
    return 200, _cells_body(_put_cabinet(body))


def _target_cell(body):
    cabinet = _cabinets.get(body.get("cabinet_id") or "")
    if cabinet is None:
        return None, (404, {"code": "cabinet_not_found", "message": "no such cabinet"})
    cell = cabinet["cells"].get(body["cell_id"]) if body.get("cell_id") else _open_cell(cabinet)
    if cell is None:
        return None, (404, {"code": "cell_not_found", "message": "no such (open) cell"})
    return cell, None


def _control_take(body):
    cell, error = _target_cell(body)
    if error:
        return error
    booking = _bookings.get(cell["book_id"] or "")
    if booking is not None and cell["battery"] is not None:
        booking["taken"].append(cell["battery"]["id"])
    cell["battery"], cell["door"] = None, "closed"
    return 200, {"cell_id": cell["cell_id"], "state": _state(cell)}


def _control_put(body):
    cell, error = _target_cell(body)
    if error:
        return error
    if cell["battery"] is not None:
        return 409, {"code": "cell_not_empty", "message": "the cell holds a battery"}
    charge = body.get("charge", 20)
    if not isinstance(charge, (int, float)) or not 0 <= charge <= 100:
        return _bad("charge is 0..100")
    battery_id = body.get("accumulator_id") or cell["expected"] or f"acc-unknown-{next(_ids)}"
    cell["battery"], cell["door"] = {"id": str(battery_id), "charge": charge}, "closed"
    return 200, {"cell_id": cell["cell_id"], "state": _state(cell), "battery": dict(cell["battery"])}


def _control_close(body):
    cell, error = _target_cell(body)
    return error or _closed(cell)


def _control_stuck(body):
    cell, error = _target_cell(body)
    if error:
        return error
    cell["stuck"] = bool(body.get("stuck", True))
    if not cell["stuck"]:
        cell["broken"] = False
    return 200, {"cell_id": cell["cell_id"], "stuck": cell["stuck"]}


def _control_race(body):
    if body.get("cabinet_id") not in _cabinets:
        return 404, {"code": "cabinet_not_found", "message": "no such cabinet"}
    _races.add(body["cabinet_id"])
    return 200, {"cabinet_id": body["cabinet_id"], "race": True}


def _batteries_body(cabinet: dict) -> dict:
    return {"cabinet_id": cabinet["cabinet_id"], "cells": [
        {"cell_id": c["cell_id"], "state": _state(c), "battery": dict(c["battery"]) if c["battery"] else None,
         "book_id": c["book_id"], "return_for": c["return_for"]} for c in cabinet["cells"].values()]}


def _control_state(request):
    return 200, {"cabinets": {k: _cells_body(v) for k, v in _cabinets.items()},
                 "bookings": {k: _booking_body(v) for k, v in _bookings.items()}}


CONTROLS = {"cabinets": _control_cabinets, "take": _control_take, "put": _control_put, "close": _control_close,
            "stuck": _control_stuck, "race": _control_race}
CONTROL_ROUTES = [("GET", r"scooter_accumulator/state", _control_state),
                  ("GET", r"scooter_accumulator/cells", lambda request: _cells(request, _batteries_body))]
