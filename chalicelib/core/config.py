"""Dynamic configuration and experiments: named values, typed by pydantic, stored in DynamoDB.

    ALLOWED_TARIFFS = define("route_sharing_tariff_classes", list[str], ["express", "courier"], "...")
    ALLOWED_TARIFFS.get()  # -> list[str]
    SWITCH = experiment("code_dispatch", Switch, Switch(enabled=False), "...", kwargs=("area_id", "park_id"))
    SWITCH.get(area_id="zenit", park_id="p1")  # -> Switch, chosen by the stored clauses (see below)

A config is one value; an experiment chooses its value per call (ExperimentDef below; the stored shape and
the predicate language are in core/experiments.py).

Each service defines its configs in its own modules; the config API (chalicelib/platform) serves them all, so in
the platform's own Lambda function, which imports no service, lookup() first imports the modules that define them
(named by the build in its environment: core.settings config_modules; deploy/api_functions.py).

A value not stored yet is the code's default. Reads are cached per process for a short time
(CONFIG_CACHE_SECONDS), so a change reaches every Lambda within that time. A stored value that no
longer validates (the schema changed) falls back to the default and is logged, never crashes a handler.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Generic, Iterable, TypeVar

from pydantic import TypeAdapter, ValidationError
from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import DoesNotExist

from . import clock
from .errors import BadRequest, NotFound, describe, validation_details
from .logs import get_logger
from .settings import get_settings
from .storage import EpochSeconds, Table, TableMeta

if TYPE_CHECKING:
    from .experiments import Compiled, ExperimentValue

log = get_logger(__name__)
T = TypeVar("T")


def _language():
    """The experiments' language (core/experiments.py), imported when the first experiment is used: its pydantic
    classes cost a cold start ~7 ms, which a function that reads plain configs only never needs to pay."""
    from . import experiments

    return experiments


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
    module: str = ""  # where it is defined: the build names these modules to the config API's function
    _cached: tuple[float, Any] | None = None
    kind = "config"

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
        self.prime(self._stored_text())
        return self._cached[1]

    def _stored_text(self) -> str | None:
        try:
            return ConfigValue.get(self.name).value
        except DoesNotExist:
            return None

    def _cacheable(self, text: str | None) -> Any:
        """What get() caches for this stored text (None: nothing stored): the value as parse_stored reads it, or
        default_stored while nothing valid is stored."""
        if text is None:
            return self.default_stored
        try:
            return self.parse_stored(text)
        except ValidationError:
            log.error_event("config.stored_value_invalid", config=self.name)
            return self.default_stored

    def prime(self, text: str | None) -> None:
        """Cache what this stored text means: get() after its own read, warm_up after its one batch read."""
        self._cached = (time.monotonic(), self._cacheable(text))

    def parse_stored(self, text: str) -> Any:
        return self.adapter.validate_json(text)

    @property
    def default_stored(self) -> Any:
        """What read() shows while nothing valid is stored."""
        return self.default

    def validate(self, raw: Any) -> T:
        try:
            return self.adapter.validate_python(raw)
        except ValidationError as error:
            raise BadRequest(f"invalid value for {self.kind} {self.name}", code="invalid_config_value",
                             details=validation_details(error)) from None

    def dump(self, value: T) -> Any:
        return self.adapter.dump_python(value, mode="json")

    def forget_cache(self) -> None:
        self._cached = None

    def json_schema(self) -> dict:
        return self.adapter.json_schema()


REGISTRY: dict[str, ConfigDef] = {}


def _register(definition: ConfigDef) -> ConfigDef:
    if definition.name in REGISTRY:
        raise ValueError(f"config {definition.name} is defined twice")
    REGISTRY[definition.name] = definition
    return definition


def define(name: str, type_: Any, default: Any, description: str = "") -> ConfigDef:
    """Define a config: one value of `type_` for every caller. `default` is raw data, as it would be stored
    (validated on first use): a model instance here would build that model's validator at import."""
    return _register(ConfigDef(name=name, type_=type_, raw_default=default, description=description,
                               module=_caller_module()))


def _caller_module() -> str:
    return sys._getframe(2).f_globals.get("__name__", "")


@functools.cache
def _import_every_definition() -> None:
    """The modules that define configs, as the function's environment names them (none outside the config API's
    function: there every module is imported already, or only the function's own configs are ever read)."""
    for module in get_settings().config_modules:
        importlib.import_module(module)


def lookup(name: str) -> ConfigDef:
    _import_every_definition()
    definition = REGISTRY.get(name)
    if definition is None:
        raise NotFound(f"config {name} is unknown", code="config_not_found")
    return definition


def _answer(definition: ConfigDef, value: Any, is_default: bool) -> dict:
    answer = {"name": definition.name, "kind": definition.kind, "value": definition.dump(value),
              "is_default": is_default, "description": definition.description}
    if isinstance(definition, ExperimentDef):
        answer["kwargs"] = list(definition.kwargs)
    return answer


def read(name: str) -> dict:
    definition = lookup(name)
    try:
        stored = ConfigValue.get(name)
        value, is_default = definition.parse_stored(stored.value), False
    except (DoesNotExist, ValidationError):
        value, is_default = definition.default_stored, True
    return _answer(definition, value, is_default)


def write(name: str, raw: Any) -> dict:
    definition = lookup(name)
    value = definition.validate(raw)
    ConfigValue(name=name, value=json.dumps(definition.dump(value), ensure_ascii=False),
                updated_at=clock.now()).save()
    definition.forget_cache()
    log.event("config.updated", config=name, kind=definition.kind)
    return _answer(definition, value, False)


@dataclasses.dataclass
class ExperimentDef(ConfigDef[T]):
    """An experiment: `get(**kwargs)` evaluates the stored clauses against the call's kwargs."""

    kwargs: tuple[str, ...] = ()
    kind = "experiment"

    @functools.cached_property
    def value_adapter(self) -> TypeAdapter:
        return TypeAdapter(self.type_)

    @functools.cached_property
    def adapter(self) -> TypeAdapter:
        """The stored shape, the same for every experiment (values are checked by value_adapter)."""
        return _shape_adapter()

    @functools.cached_property
    def default(self) -> T:
        return self.value_adapter.validate_python(self.raw_default)

    @functools.cached_property
    def default_stored(self) -> ExperimentValue:
        """The experiment while nothing valid is stored: no clauses, the code's default."""
        return _language().ExperimentValue.model_construct(clauses=[], default=self.default)

    def get(self, **kwargs: Any) -> T:
        return super().get().match(kwargs)

    def snapshot(self) -> "Compiled[T]":
        """The current experiment (cached like get()), to evaluate many calls against one version of it:
        `.match(kwargs)`, `.possible_values()`."""
        return super().get()

    def compile(self, stored: ExperimentValue) -> Compiled[T]:
        language = _language()
        rules = tuple((language.compile_predicate(clause.predicate, self.name), clause.value)
                      for clause in stored.clauses)
        return language.Compiled(stored=stored, rules=rules)

    def _typed(self, shape: ExperimentValue) -> ExperimentValue:
        return _language().with_values(shape, self.value_adapter)

    def parse_stored(self, text: str) -> ExperimentValue:
        """The stored experiment. A plain value stored before the name became an experiment reads as an
        experiment with that default and no clauses. Raises ValidationError when it is neither."""
        try:
            return self._typed(self.adapter.validate_json(text))
        except ValidationError:
            try:
                plain = self.value_adapter.validate_json(text)
            except ValidationError:
                pass
            else:
                return _language().ExperimentValue.model_construct(clauses=[], default=plain)
            raise

    def _cacheable(self, text: str | None) -> Compiled[T]:
        return self.compile(super()._cacheable(text))

    def validate(self, raw: Any) -> ExperimentValue:
        """The experiment shape, or a plain value (-> that value for everyone: no clauses)."""
        if not (isinstance(raw, dict) and ("clauses" in raw or "default" in raw)):
            try:
                raw = {"clauses": [], "default": self.value_adapter.validate_python(raw)}
            except ValidationError as error:
                raise BadRequest(f"invalid value for experiment {self.name}: give "
                                 '{"clauses": [...], "default": ...} or a plain value',
                                 code="invalid_config_value", details=validation_details(error)) from None
        try:
            experiment = self._typed(self.adapter.validate_python(raw))
        except ValidationError as error:
            raise BadRequest(f"invalid value for experiment {self.name}", code="invalid_config_value",
                             details=validation_details(error)) from None
        unknown = set().union(*(_language().args_of(c.predicate) for c in experiment.clauses)) - set(self.kwargs)
        if unknown:
            # A misspelt kwarg would never match: refuse it rather than silently serve the default.
            raise BadRequest(f"experiment {self.name} is evaluated with kwargs {', '.join(self.kwargs) or '(none)'}"
                             f"; unknown: {', '.join(sorted(unknown))}", code="invalid_config_value",
                             details={"errors": [{"loc": "clauses", "msg": f"unknown kwarg {name}"}
                                                 for name in sorted(unknown)]})
        return experiment

    def dump(self, value: ExperimentValue) -> Any:
        return _language().dump(value, self.value_adapter)

    def json_schema(self) -> dict:
        return _language().json_schema(self.value_adapter)


@functools.cache
def _shape_adapter() -> TypeAdapter:
    return TypeAdapter(_language().ExperimentValue)


def experiment(name: str, type_: Any, default: Any, description: str = "", *,
               kwargs: tuple[str, ...]) -> ExperimentDef:
    """Define an experiment: a value of `type_` chosen per call from `kwargs` (the names the code passes)."""
    return _register(ExperimentDef(name=name, type_=type_, raw_default=default, description=description,
                                   module=_caller_module(), kwargs=tuple(kwargs)))


def warm_up(names: Iterable[str]) -> None:
    """Read these configs and experiments in one batch read and cache each as get() would (its validator built):
    an API function does it in its init phase for the configs its routes declare, so its first request finds them
    cached like the second (for CONFIG_CACHE_SECONDS). Best effort: when the read fails (DynamoDB out of reach)
    nothing is cached and each config is read by the request that needs it, as ever."""
    definitions = [REGISTRY[name] for name in sorted(set(names))]
    if not definitions:
        return
    try:
        # One BatchGetItem (PynamoDB splits it by 100 and asks again for unprocessed keys), not a GetItem each.
        stored = {item.name: item.value for item in ConfigValue.batch_get([d.name for d in definitions])}
    except Exception as error:  # noqa: BLE001 - e.g. DynamoDB unreachable during init
        log.warning_event("config.warm_up_stopped", error=describe(error))
        return
    for definition in definitions:
        try:
            definition.prime(stored.get(definition.name))
        except Exception as error:  # noqa: BLE001 - the request that needs it reads it again and says why
            log.warning_event("config.warm_up_skipped", config=definition.name, error=describe(error))


def forget_all_caches() -> None:
    for definition in REGISTRY.values():
        definition.forget_cache()
