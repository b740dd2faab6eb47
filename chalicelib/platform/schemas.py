from __future__ import annotations

from typing import Any, Literal

from chalicelib.core.schema import Schema



class PingOut(Schema):
    status: str


class ConfigOut(Schema):
    name: str
    # "config": one value for every caller. "experiment": `value` is {"clauses": [...], "default": ...},
    # evaluated per call against the kwargs listed in `kwargs` (core/config.py has the predicate language).
    kind: Literal["config", "experiment"] = "config"
    value: Any
    is_default: bool
    description: str = ""
    kwargs: list[str] | None = None


class ConfigIn(Schema):
    value: Any
