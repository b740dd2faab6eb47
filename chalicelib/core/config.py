"""Dynamic configuration and experiments: named values, typed by pydantic, stored in DynamoDB.

    ALLOWED_TARIFFS = define("route_sharing_tariff_classes", list[str], ["express", "courier"], "...")
    ALLOWED_TARIFFS.get()  # -> list[str]

A value not stored yet is the code's default. Reads are cached per process for a short time
(CONFIG_CACHE_SECONDS), so a change reaches every Lambda within that time. A stored value that no
longer validates (the schema changed) falls back to the default and is logged, never crashes a handler.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import time
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError
from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import DoesNotExist

from . import clock
from .errors import BadRequest, NotFound, validation_details
from .logs import get_logger
from .settings import get_settings
from .storage import EpochSeconds, Table, TableMeta

log = get_logger(__name__)
T = TypeVar("T")


class ConfigValue(Table):
    class Meta(TableMeta):
        table_name = "configs"

    name = UnicodeAttribute(hash_key=True)
    value = UnicodeAttribute()  # JSON text
    updated_at = EpochSeconds()


@dataclasses.dataclass
class ConfigDef(Generic[T]):
    name: str
    type_: Any
    raw_default: Any
    description: str
    _cached: tuple[float, T] | None = None

    # Built on first use, not at import: a cold start pays only for the configs its request reads.
    @functools.cached_property
    def adapter(self) -> TypeAdapter:
        return TypeAdapter(self.type_)

    @functools.cached_property
    def default(self) -> T:
        return self.adapter.validate_python(self.raw_default)

    def get(self) -> T:
        ttl = get_settings().config_cache_seconds
        if self._cached and time.monotonic() - self._cached[0] < ttl:
            return self._cached[1]
        value = self._load()
        self._cached = (time.monotonic(), value)
        return value

    def _load(self) -> T:
        try:
            stored = ConfigValue.get(self.name)
        except DoesNotExist:
            return self.default
        try:
            return self.adapter.validate_json(stored.value)
        except ValidationError:
            log.error_event("config.stored_value_invalid", config=self.name)
            return self.default

    def validate(self, raw: Any) -> T:
        try:
            return self.adapter.validate_python(raw)
        except ValidationError as error:
            raise BadRequest(f"invalid value for config {self.name}", code="invalid_config_value",
                             details=validation_details(error)) from None

    def dump(self, value: T) -> Any:
        return self.adapter.dump_python(value, mode="json")

    def forget_cache(self) -> None:
        self._cached = None

    def json_schema(self) -> dict:
        return self.adapter.json_schema()


REGISTRY: dict[str, ConfigDef] = {}


def define(name: str, type_: Any, default: Any, description: str = "") -> ConfigDef:
    if name in REGISTRY:
        raise ValueError(f"config {name} is defined twice")
    definition = ConfigDef(name=name, type_=type_, raw_default=default, description=description)
    REGISTRY[name] = definition
    return definition


def lookup(name: str) -> ConfigDef:
    definition = REGISTRY.get(name)
    if definition is None:
        raise NotFound(f"config {name} is unknown", code="config_not_found")
    return definition


def read(name: str) -> dict:
    definition = lookup(name)
    try:
        stored = ConfigValue.get(name)
        value, is_default = definition.adapter.validate_json(stored.value), False
    except (DoesNotExist, ValidationError):
        value, is_default = definition.default, True
    return {"name": name, "value": definition.dump(value), "is_default": is_default,
            "description": definition.description}


def write(name: str, raw: Any) -> dict:
    definition = lookup(name)
    value = definition.validate(raw)
    ConfigValue(name=name, value=json.dumps(definition.dump(value), ensure_ascii=False),
                updated_at=clock.now()).save()
    definition.forget_cache()
    log.event("config.updated", config=name)
    return {"name": name, "value": definition.dump(value), "is_default": False,
            "description": definition.description}


def forget_all_caches() -> None:
    for definition in REGISTRY.values():
        definition.forget_cache()
