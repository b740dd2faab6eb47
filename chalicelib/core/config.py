"""Dynamic configuration and experiments: named values, typed by pydantic, stored in DynamoDB.

    ALLOWED_TARIFFS = define("route_sharing_tariff_classes", list[str], ["express", "courier"], "...")
    ALLOWED_TARIFFS.get()  # -> list[str]
    SWITCH = experiment("code_dispatch", Switch, Switch(enabled=False), "...", kwargs=("area_id", "park_id"))
    SWITCH.get(area_id="zenit", park_id="p1")  # -> Switch, chosen by the stored clauses (see below)

A config is one value; an experiment chooses its value per call (section "experiments" below).

A value not stored yet is the code's default. Reads are cached per process for a short time
(CONFIG_CACHE_SECONDS), so a change reaches every Lambda within that time. A stored value that no
longer validates (the schema changed) falls back to the default and is logged, never crashes a handler.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from typing import Annotated, Any, Callable, Generic, TypeVar, Union

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictInt, StrictStr,
    StringConstraints, Tag, TypeAdapter, ValidationError, model_serializer, model_validator,
)
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
        value = self._load()
        self._cached = (time.monotonic(), value)
        return value

    def _load(self) -> T:
        try:
            stored = ConfigValue.get(self.name)
        except DoesNotExist:
            return self.default
        try:
            return self.parse_stored(stored.value)
        except ValidationError:
            log.error_event("config.stored_value_invalid", config=self.name)
            return self.default

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
    """Define a config: one value of `type_` for every caller."""
    return _register(ConfigDef(name=name, type_=type_, raw_default=default, description=description))


def lookup(name: str) -> ConfigDef:
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


# --- experiments --------------------------------------------------------------------------------------
# An experiment chooses its value per call from the caller's kwargs:
#
#     CALL_PICKER = experiment("eats_..._call_picker_enabled", bool, True, "...", kwargs=("user_id", "order_nr"))
#     CALL_PICKER.get(user_id="u1", order_nr="o1")  # -> bool
#
# Stored shape (validated at PUT; the clause values and the default against the experiment's value type):
#     {"clauses": [{"title": "...", "predicate": <predicate>, "value": <value>}, ...], "default": <value>}
# Clauses are checked in order, the first whose predicate matches gives the value, else the default.
# Predicates (each an object with exactly one key):
#     {"true": {}}                                      always
#     {"in": {"area_id": ["zenit", "luzhniki"]}}         the kwarg is one of the values
#     {"eq": {"park_id": "park1"}}                       the kwarg equals the value
#     {"percent": {"arg": "user_id", "from": 0, "to": 20}}   bucket(kwarg) in [from, to): a stable 0..99
#         bucket from sha256(salt + kwarg), salted by the experiment's name (or "salt") so two experiments
#         on the same id do not pick the same 20 % of users
#     {"all": [<predicate>, ...]}, {"any": [<predicate>, ...]}
# A kwarg that is missing (or None) matches nothing: evaluation never raises. Values compare by JSON type
# and value ("1" is not 1, true is not 1).

_ArgName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_Scalar = Union[StrictBool, StrictInt, Annotated[StrictStr, StringConstraints(max_length=256)]]
_OPERATORS = ("true", "in", "eq", "percent", "all", "any")
_MAX_CLAUSES = 100


class _PredicateModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True, defer_build=True)


def _one_arg(value: dict) -> dict:
    if len(value) != 1:
        raise ValueError("names exactly one kwarg")
    return value


class _TruePredicate(_PredicateModel):
    true: Annotated[dict, Field(max_length=0)]


class _InPredicate(_PredicateModel):
    in_: Annotated[dict[_ArgName, Annotated[list[_Scalar], Field(min_length=1, max_length=10_000)]],
                   AfterValidator(_one_arg)] = Field(alias="in")


class _EqPredicate(_PredicateModel):
    eq: Annotated[dict[_ArgName, _Scalar], AfterValidator(_one_arg)]


class _Percent(_PredicateModel):
    arg: _ArgName
    from_: Annotated[int, Field(ge=0, le=100)] = Field(alias="from")
    to: Annotated[int, Field(ge=0, le=100)]
    # Empty: the experiment's name. Give two experiments the same salt to pick the same users in both.
    salt: Annotated[str, StringConstraints(max_length=64)] = ""

    @model_serializer(mode="wrap")
    def _without_empty_salt(self, handler):
        data = handler(self)
        if not self.salt:
            data.pop("salt", None)
        return data

    @model_validator(mode="after")
    def _ordered(self) -> "_Percent":
        if self.from_ > self.to:
            raise ValueError("`from` must not be greater than `to`")
        return self


class _PercentPredicate(_PredicateModel):
    percent: _Percent


class _AllPredicate(_PredicateModel):
    all: Annotated[list["Predicate"], Field(min_length=1, max_length=100)]


class _AnyPredicate(_PredicateModel):
    any: Annotated[list["Predicate"], Field(min_length=1, max_length=100)]


def _operator(value: Any) -> str | None:
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 and next(iter(value)) in _OPERATORS else None
    return _TAGS.get(type(value))


_TAGS = {_TruePredicate: "true", _InPredicate: "in", _EqPredicate: "eq", _PercentPredicate: "percent",
         _AllPredicate: "all", _AnyPredicate: "any"}

Predicate = Annotated[
    Union[tuple(Annotated[model, Tag(tag)] for model, tag in _TAGS.items())],  # type: ignore[misc]
    Discriminator(_operator, custom_error_type="invalid_predicate",
                  custom_error_message="a predicate is an object with exactly one key of "
                                       "true, in, eq, percent, all, any"),
]


class Clause(BaseModel, Generic[T]):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    title: Annotated[str, StringConstraints(max_length=200)] = ""
    predicate: Predicate
    value: T


class ExperimentValue(BaseModel, Generic[T]):
    """What an experiment stores: ordered clauses and the value when none matches."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    clauses: Annotated[list[Clause[T]], Field(max_length=_MAX_CLAUSES)] = Field(default_factory=list)
    default: T


def percent_bucket(salt: str, value: Any) -> int:
    """A stable bucket 0..99 of `value` under `salt` (the same in every process and every release)."""
    digest = hashlib.sha256(f"{salt}\x1f{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


_MISSING = object()


def _typed(value: Any) -> tuple:
    return (type(value), value)  # True == 1 in Python; not in an experiment


def _member(value: Any, allowed: frozenset) -> bool:
    try:
        return _typed(value) in allowed
    except TypeError:  # an unhashable kwarg (a list, a dict) equals no JSON scalar
        return False


def _compile(predicate: Any, salt: str) -> Callable[[dict], bool]:
    """A predicate as a closure over the kwargs dict: the parsing is done once per cache load."""
    if isinstance(predicate, _TruePredicate):
        return lambda kwargs: True
    if isinstance(predicate, _InPredicate):
        (arg, values), = predicate.in_.items()
        allowed = frozenset(_typed(v) for v in values)
        return lambda kwargs: (value := kwargs.get(arg)) is not None and _member(value, allowed)
    if isinstance(predicate, _EqPredicate):
        (arg, expected), = predicate.eq.items()
        wanted = _typed(expected)
        return lambda kwargs: (value := kwargs.get(arg)) is not None and _typed(value) == wanted
    if isinstance(predicate, _PercentPredicate):
        spec = predicate.percent
        arg, low, high, seed = spec.arg, spec.from_, spec.to, spec.salt or salt
        return lambda kwargs: (value := kwargs.get(arg)) is not None and low <= percent_bucket(seed, value) < high
    if isinstance(predicate, _AllPredicate):
        parts = tuple(_compile(p, salt) for p in predicate.all)
        return lambda kwargs: all(part(kwargs) for part in parts)
    if isinstance(predicate, _AnyPredicate):
        parts = tuple(_compile(p, salt) for p in predicate.any)
        return lambda kwargs: any(part(kwargs) for part in parts)
    raise TypeError(f"unknown predicate {type(predicate).__name__}")


def _args_of(predicate: Any) -> set[str]:
    if isinstance(predicate, _InPredicate):
        return set(predicate.in_)
    if isinstance(predicate, _EqPredicate):
        return set(predicate.eq)
    if isinstance(predicate, _PercentPredicate):
        return {predicate.percent.arg}
    if isinstance(predicate, (_AllPredicate, _AnyPredicate)):
        return set().union(*(_args_of(p) for p in (predicate.all if isinstance(predicate, _AllPredicate)
                                                     else predicate.any)))
    return set()


@dataclasses.dataclass(frozen=True)
class _Compiled(Generic[T]):
    stored: ExperimentValue
    rules: tuple[tuple[Callable[[dict], bool], Any], ...]

    def match(self, kwargs: dict) -> T:
        for matches, value in self.rules:
            if matches(kwargs):
                return value
        return self.stored.default

    def possible_values(self) -> list[T]:
        """Every value it can give (each clause's, then the default): for a caller that must bound a choice
        before it knows the kwargs (e.g. the shortest timeout any order can get)."""
        return [value for _, value in self.rules] + [self.stored.default]


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
        return TypeAdapter(ExperimentValue[self.type_])

    @functools.cached_property
    def default(self) -> T:
        return self.value_adapter.validate_python(self.raw_default)

    @functools.cached_property
    def default_experiment(self) -> ExperimentValue:
        return ExperimentValue[self.type_](clauses=[], default=self.default)

    def get(self, **kwargs: Any) -> T:
        return super().get().match(kwargs)

    def snapshot(self) -> "_Compiled[T]":
        """The current experiment (cached like get()), to evaluate many calls against one version of it:
        `.match(kwargs)`, `.possible_values()`."""
        return super().get()

    def compile(self, stored: ExperimentValue) -> _Compiled[T]:
        return _Compiled(stored=stored, rules=tuple((_compile(clause.predicate, self.name), clause.value)
                                                    for clause in stored.clauses))

    def parse_stored(self, text: str) -> ExperimentValue:
        """The stored experiment. A plain value stored before the name became an experiment reads as an
        experiment with that default and no clauses. Raises ValidationError when it is neither."""
        try:
            return self.adapter.validate_json(text)
        except ValidationError:
            try:
                plain = self.value_adapter.validate_json(text)
            except ValidationError:
                pass
            else:
                return self.adapter.validate_python({"clauses": [], "default": plain})
            raise

    @property
    def default_stored(self) -> ExperimentValue:
        return self.default_experiment

    def _load(self) -> _Compiled[T]:
        try:
            stored = ConfigValue.get(self.name)
        except DoesNotExist:
            return self.compile(self.default_experiment)
        try:
            return self.compile(self.parse_stored(stored.value))
        except ValidationError:
            log.error_event("config.stored_value_invalid", config=self.name)
            return self.compile(self.default_experiment)

    def validate(self, raw: Any) -> ExperimentValue:
        """The experiment shape, or a plain value (-> that value for everyone: no clauses)."""
        if not (isinstance(raw, dict) and ("clauses" in raw or "default" in raw)):
            try:
                raw = {"clauses": [], "default": self.value_adapter.validate_python(raw)}
            except ValidationError as error:
                raise BadRequest(f"invalid value for experiment {self.name}: give "
                                 '{"clauses": [...], "default": ...} or a plain value',
                                 code="invalid_config_value", details=validation_details(error)) from None
        experiment = super().validate(raw)
        unknown = set().union(*(_args_of(c.predicate) for c in experiment.clauses)) - set(self.kwargs)
        if unknown:
            # A misspelt kwarg would never match: refuse it rather than silently serve the default.
            raise BadRequest(f"experiment {self.name} is evaluated with kwargs {', '.join(self.kwargs) or '(none)'}"
                             f"; unknown: {', '.join(sorted(unknown))}", code="invalid_config_value",
                             details={"errors": [{"loc": "clauses", "msg": f"unknown kwarg {name}"}
                                                 for name in sorted(unknown)]})
        return experiment

    def dump(self, value: ExperimentValue) -> Any:
        return self.adapter.dump_python(value, mode="json", by_alias=True)

    def json_schema(self) -> dict:
        return self.adapter.json_schema(by_alias=True)


def experiment(name: str, type_: Any, default: Any, description: str = "", *,
               kwargs: tuple[str, ...]) -> ExperimentDef:
    """Define an experiment: a value of `type_` chosen per call from `kwargs` (the names the code passes)."""
    return _register(ExperimentDef(name=name, type_=type_, raw_default=default, description=description,
                                   kwargs=tuple(kwargs)))


def forget_all_caches() -> None:
    for definition in REGISTRY.values():
        definition.forget_cache()
