from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class PingOut(BaseModel):
    status: str


class ConfigOut(BaseModel):
    name: str
    value: Any
    is_default: bool
    description: str = ""


class ConfigIn(BaseModel):
    value: Any
