from __future__ import annotations

from typing import Any

from chalicelib.core.schema import Schema



class PingOut(Schema):
    status: str


class ConfigOut(Schema):
    name: str
    value: Any
    is_default: bool
    description: str = ""


class ConfigIn(Schema):
    value: Any
