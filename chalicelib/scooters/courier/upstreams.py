"""The calls the courier screens make: the battery cabinets (scooter-accumulator) and the scooter backend.

Protocols as their simulators document them (local/simulator/upstreams/scooter_accumulator.py,
scooter_backend.py). Timeouts and bounded retries come from core.http. A cabinet call that times out is told
apart from one that fails (CabinetTimeout vs CabinetDown): the courier retries the first; the second means the
manual mode (design doc 003: "если scooter-accumulator пятисотит ... включаем ручной режим").

Returning a battery into a cell (point C): doc 003 names NO call for it ("здесь все совпадает с флоу получения
аккумов"), and the cabinets service has no public reference. It is modelled on the calls the doc does name:
`accumulator/return {"cabinet_id", "book_id", "cell_id", "accumulator_id"}` tells the cabinet which free cell
will hold which battery under the booking (as `accumulator/book` reserves cells), then the usual `cell/open`
opens it; the cabinet reports the battery in that cell afterwards (`cells`).
"""
from __future__ import annotations

import dataclasses

from chalicelib.core import http
from chalicelib.core.errors import AppError, UpstreamRejected, UpstreamUnavailable

from ..recharge.upstreams import ACC as CABINET
from ..recharge.upstreams import ACCUMULATOR, SCOOTER_BACKEND


class CabinetTimeout(Exception):
    """The cabinet did not answer in time: whether the cell opened is unknown."""


class CabinetDown(Exception):
    """The cabinets service failed (5xx after retries, refused, or an answer we cannot read)."""


class CabinetBusy(Exception):
    """Another cell of the cabinet is open."""


class CellNotOpened(Exception):
    """The cabinet says the cell will not open (definite: the cell is broken)."""


class CellNotBooked(Exception):
    """The cabinet says the cell is not in the booking."""


class CellNotFree(Exception):
    """The cabinet will not take a returned battery into that cell (it holds one, is open, broken or reserved)."""


class DoorStuck(Exception):
    """The scooter's battery door does not open."""


class ScooterUnavailable(AppError):
    """The scooter backend failed or answered what we cannot read: the courier tries again (503)."""

    status = 503
    code = "scooter_backend_unavailable"


SCOOTER_DOWN = "the scooter backend is unavailable, try again"


@dataclasses.dataclass(frozen=True)
class Cell:
    cell_id: str
    state: str  # charged | charging | empty | open | broken
    has_battery: bool
    book_id: str | None
    accumulator_id: str | None = None  # the battery in the cell, when the cabinet knows it
    return_for: str | None = None  # the booking whose returned battery this cell is to hold

    def takes_return(self, book_id: str) -> bool:
        """Empty, closed, whole, and free or this booking's own (a cell its charged battery left): the
        booking's returned battery may go in."""
        return (self.state == "empty" and not self.has_battery and self.book_id in (None, book_id)
                and self.return_for in (None, book_id))


@dataclasses.dataclass(frozen=True)
class Cabinet:
    cabinet_id: str
    open_cell_id: str | None
    cells: dict[str, Cell]


def _timed_out(error: UpstreamUnavailable) -> bool:
    import requests
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    cause = error.__cause__
    if isinstance(cause, requests.Timeout):
        return True
    # Timeouts that outlast urllib3's retries reach us as ConnectionError(MaxRetryError(reason=timeout)).
    reason = getattr(cause.args[0], "reason", None) if cause is not None and cause.args else None
    return isinstance(reason, Urllib3Timeout)


def _cabinet_error(error: UpstreamUnavailable) -> Exception:
    return CabinetTimeout() if _timed_out(error) else CabinetDown()


def cabinet_cells(cabinet_id: str) -> Cabinet:
    try:
        body = http.call_json(ACCUMULATOR, "GET", f"{CABINET}/cells", params={"cabinet_id": cabinet_id})
    except UpstreamUnavailable as error:
        raise _cabinet_error(error) from None
    except UpstreamRejected:
        raise CabinetDown() from None  # our cabinet id unknown there: nothing a retry fixes
    try:
        cells = {
            str(cell["cell_id"]): Cell(cell_id=str(cell["cell_id"]), state=str(cell["state"]),
                                       has_battery=bool(cell["has_battery"]), book_id=cell.get("book_id"),
                                       accumulator_id=cell.get("accumulator_id"), return_for=cell.get("return_for"))
            for cell in body["cells"]
        }
        open_cell = body.get("open_cell_id")
    except (KeyError, TypeError):
        raise CabinetDown() from None
    return Cabinet(cabinet_id=cabinet_id, open_cell_id=str(open_cell) if open_cell else None, cells=cells)


def open_cell(cabinet_id: str, book_id: str, cell_id: str) -> None:
    """Open the cell; returns when the cabinet says it is open. Not retried as a POST: a cell is opened once
    per courier press, and the cabinet answers an open cell of the same booking the same on the next press."""
    try:
        http.call_json(ACCUMULATOR, "POST", f"{CABINET}/cell/open",
                       json={"cabinet_id": cabinet_id, "book_id": book_id, "cell_id": cell_id})
    except UpstreamUnavailable as error:
        raise _cabinet_error(error) from None
    except UpstreamRejected as error:
        if error.upstream_status == 409:
            raise CabinetBusy() from None
        if error.upstream_status == 422:
            raise CellNotOpened() from None
        if error.upstream_status == 400:
            raise CellNotBooked() from None
        raise CabinetDown() from None


def assign_return_cell(cabinet_id: str, book_id: str, cell_id: str, accumulator_id: str | None) -> None:
    """Tell the cabinet that `cell_id` is to hold the battery the booking's courier brings back (`accumulator_id`:
    the discharged one; None: the booking's own charged battery, unused). Idempotent: the same booking naming the
    same cell answers the same; naming another moves the return there (a cell that would not open)."""
    try:
        http.call_json(ACCUMULATOR, "POST", f"{CABINET}/accumulator/return", idempotency_key=http.fresh_key(),
                       json={"cabinet_id": cabinet_id, "book_id": book_id, "cell_id": cell_id,
                             "accumulator_id": accumulator_id})
    except UpstreamUnavailable as error:
        raise _cabinet_error(error) from None
    except UpstreamRejected as error:
        if error.upstream_status == 409:
            raise CellNotFree() from None
        raise CabinetDown() from None


@dataclasses.dataclass(frozen=True)
class Battery:
    battery_id: str
    level: float


def car_battery(car_id: str) -> Battery:
    try:
        body = http.call_json(SCOOTER_BACKEND, "GET", "/car/info", params={"car_id": car_id})
        return Battery(battery_id=str(body["battery"]["id"]), level=float(body["battery"]["level"]))
    except (UpstreamUnavailable, UpstreamRejected, KeyError, TypeError, ValueError):
        raise ScooterUnavailable(SCOOTER_DOWN) from None


def signal(car_id: str) -> None:
    # Not retried as a POST: each press is one beep, and the courier presses again if needed.
    try:
        http.call_json(SCOOTER_BACKEND, "POST", "/car/signal", json={"car_id": car_id})
    except (UpstreamUnavailable, UpstreamRejected):
        raise ScooterUnavailable(SCOOTER_DOWN) from None


def add_tag(car_id: str, tag: str) -> None:
    # tag/add is idempotent upstream (an existing tag of that name is returned as it is): safe to retry.
    try:
        http.call_json(SCOOTER_BACKEND, "POST", "/tag/add", json={"car_id": car_id, "tag": tag},
                       idempotency_key=http.fresh_key())
    except (UpstreamUnavailable, UpstreamRejected):
        raise ScooterUnavailable(SCOOTER_DOWN) from None


def open_battery_door(car_id: str) -> None:
    try:
        http.call_json(SCOOTER_BACKEND, "POST", "/car/battery_door/open", json={"car_id": car_id})
    except UpstreamRejected as error:
        if error.upstream_status == 409:
            raise DoorStuck() from None
        raise ScooterUnavailable(SCOOTER_DOWN) from None
    except UpstreamUnavailable:
        raise ScooterUnavailable(SCOOTER_DOWN) from None
