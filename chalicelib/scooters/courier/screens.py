"""The battery_exchange screens as Taximeter constructor items (design doc 003, part 3): pickup mode at A, return
mode at C.

The doc leaves the constructor's format open ("TODO формат конструктора с @einmalfel"); the items here are
the smallest set that says what the doc asks for: `header`, `text`, `counter` {title, value} and `button`
{title, payload}. A button's payload tells the app what to do: {"type": "request", "method", "url"} (then
redraw from the status screen, `then`), or {"type": "close_screen"}.
"""
from __future__ import annotations

import urllib.parse

BASE = "/scooters-misc/taximeter/screens/v1/battery_exchange"
HEADER = "Получение аккумуляторов"
RETURN_HEADER = "Возврат аккумулятора"


def _url(action: str, **query: str) -> str:
    return f"{BASE}/{action}?{urllib.parse.urlencode(query)}"


def storekeeper_text(count: int) -> str:
    # The doc's text, letter by letter (also for N = 1).
    return f"Невозможно открыть {count} ячеек. Обратитесь к кладовщику"


def _counters(taken: int, left: int) -> list[dict]:
    return [{"type": "counter", "title": "Получено", "value": taken},
            {"type": "counter", "title": "Осталось", "value": left}]


def _cell_buttons(claim_id: str, cell_id: str, done_title: str = "Аккумулятор получен") -> list[dict]:
    status = _url("status", cargo_ref_id=claim_id)
    return [
        {"type": "button", "title": done_title,
         "payload": {"type": "request", "method": "GET", "url": status}},
        {"type": "button", "title": "Ячейка не открылась",
         "payload": {"type": "request", "method": "POST", "url": _url("broken", cargo_ref_id=claim_id,
                                                                        cell_id=cell_id), "then": status}},
    ]


def status_items(claim_id: str, cells) -> list[dict]:
    """cells: courier_cabinet.Cells."""
    items = [{"type": "header", "text": HEADER}, *_counters(len(cells.done), cells.left)]
    if cells.open:
        cell_id = cells.open[0]
        items.append({"type": "text", "text": f"Ячейка {cell_id} открыта. Заберите аккумулятор и закройте дверцу"})
        items.extend(_cell_buttons(claim_id, cell_id))
    elif cells.left == 0:
        items.append({"type": "text",
                      "text": "Все аккумуляторы получены. Закройте экран и сдвиньте слайдер «Забрал все аккумуляторы»"})
        items.append({"type": "button", "title": "Закрыть", "payload": {"type": "close_screen"}})
    elif cells.openable:
        items.append({"type": "button", "title": "Получить аккумулятор",
                      "payload": {"type": "request", "method": "POST", "url": _url("open", cargo_ref_id=claim_id)}})
    else:  # only broken cells remain
        items.append({"type": "text", "text": storekeeper_text(len(cells.broken_waiting))})
    return items


def opened_items(claim_id: str, cell_id: str) -> list[dict]:
    return [
        {"type": "header", "text": f"Ячейка {cell_id} открыта"},
        {"type": "text", "text": "Заберите аккумулятор и закройте дверцу ячейки"},
        *_cell_buttons(claim_id, cell_id),
    ]


# --- return mode (C) ----------------------------------------------------------------------------------

def _return_counters(returned: int) -> list[dict]:
    return [{"type": "counter", "title": "Сдано", "value": returned},
            {"type": "counter", "title": "Осталось", "value": 1 - returned}]


def return_start_items(claim_id: str) -> list[dict]:
    return [{"type": "header", "text": RETURN_HEADER}, *_return_counters(0),
            {"type": "button", "title": "Сдать аккумулятор",
             "payload": {"type": "request", "method": "POST", "url": _url("open", cargo_ref_id=claim_id)}}]


def return_opened_items(claim_id: str, cell_id: str, counters: bool = False) -> list[dict]:
    items = [{"type": "header", "text": f"Ячейка {cell_id} открыта"}, *(_return_counters(0) if counters else []),
             {"type": "text", "text": "Положите разряженный аккумулятор в ячейку и закройте дверцу"}]
    return items + _cell_buttons(claim_id, cell_id, done_title="Аккумулятор сдан")


def return_done_items() -> list[dict]:
    return [{"type": "header", "text": RETURN_HEADER}, *_return_counters(1),
            {"type": "text", "text": "Аккумулятор сдан. Закройте экран и сдвиньте слайдер"},
            {"type": "button", "title": "Закрыть", "payload": {"type": "close_screen"}}]


def return_stuck_items(text: str) -> list[dict]:
    return [{"type": "header", "text": RETURN_HEADER}, *_return_counters(0), {"type": "text", "text": text}]
