"""The experiments' language: what an experiment stores, and its evaluation against a call's kwargs.
Plain pydantic and hashlib, no storage (core/config.py stores, caches and serves experiments).

An experiment chooses its value per call from the caller's kwargs:

    CALL_PICKER = config.experiment("eats_..._call_picker_enabled", bool, True, "...", kwargs=("user_id",))
    CALL_PICKER.get(user_id="u1", order_nr="o1")  # -> bool

Stored shape (validated at PUT; the clause values and the default against the experiment's value type):
    {"clauses": [{"title": "...", "predicate": <predicate>, "value": <value>}, ...], "default": <value>}
Clauses are checked in order, the first whose predicate matches gives the value, else the default.
Predicates (each an object with exactly one key):
    {"true": {}}                                      always
    {"in": {"area_id": ["zenit", "luzhniki"]}}         the kwarg is one of the values
    {"eq": {"park_id": "park1"}}                       the kwarg equals the value
    {"percent": {"arg": "user_id", "from": 0, "to": 20}}   bucket(kwarg) in [from, to): a stable 0..99
        bucket from sha256(salt + kwarg), salted by the experiment's name (or "salt") so two experiments
        on the same id do not pick the same 20 % of users
    {"all": [<predicate>, ...]}, {"any": [<predicate>, ...]}
A kwarg that is missing (or None) matches nothing: evaluation never raises. Values compare by JSON type
and value ("1" is not 1, true is not 1).
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Annotated, Any, Callable, Generic, TypeVar, Union

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictInt, StrictStr,
    StringConstraints, Tag, TypeAdapter, ValidationError, model_serializer, model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

T = TypeVar("T")

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


class Clause(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    title: Annotated[str, StringConstraints(max_length=200)] = ""
    predicate: Predicate
    value: Any  # of the experiment's value type: checked by with_values()


class ExperimentValue(BaseModel):
    """What an experiment stores: ordered clauses and the value when none matches. One shape for every experiment
    (a generic model per value type cost each experiment's first use ~10 ms of pydantic schema building): the
    clauses' values and the default are checked against the experiment's own value type by with_values()."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    clauses: Annotated[list[Clause], Field(max_length=_MAX_CLAUSES)] = Field(default_factory=list)
    default: Any


def with_values(shape: ExperimentValue, values: TypeAdapter) -> ExperimentValue:
    """`shape` with each clause's value and the default validated by `values` (the experiment's value type).
    Raises one ValidationError that locates every bad value (clauses.<n>.value..., default...)."""
    errors: list[InitErrorDetails] = []

    def checked(raw: Any, loc: tuple) -> Any:
        try:
            return values.validate_python(raw)
        except ValidationError as error:
            errors.extend({"type": PydanticCustomError(e["type"], e["msg"].replace("{", "(").replace("}", ")")),
                           "loc": (*loc, *e["loc"]), "input": e["input"]} for e in error.errors())
            return raw

    clauses = [clause.model_copy(update={"value": checked(clause.value, ("clauses", index, "value"))})
               for index, clause in enumerate(shape.clauses)]
    default = checked(shape.default, ("default",))
    if errors:
        raise ValidationError.from_exception_data("ExperimentValue", errors)
    return ExperimentValue.model_construct(clauses=clauses, default=default)


def dump(value: ExperimentValue, values: TypeAdapter) -> dict:
    """The stored JSON shape, each value dumped by the experiment's value type."""
    return {"clauses": [{**clause.model_dump(mode="json", by_alias=True, include={"title", "predicate"}),
                         "value": values.dump_python(clause.value, mode="json")} for clause in value.clauses],
            "default": values.dump_python(value.default, mode="json")}


def json_schema(values: TypeAdapter) -> dict:
    """The stored shape's JSON schema with the experiment's value type in place of `value` and `default`."""
    schema = TypeAdapter(ExperimentValue).json_schema(by_alias=True)
    value_schema = values.json_schema()
    definitions = {**schema.pop("$defs", {}), **value_schema.pop("$defs", {})}
    definitions["Clause"]["properties"]["value"] = value_schema
    schema["properties"]["default"] = value_schema
    return {**schema, "$defs": definitions}


def percent_bucket(salt: str, value: Any) -> int:
    """A stable bucket 0..99 of `value` under `salt` (the same in every process and every release)."""
    digest = hashlib.sha256(f"{salt}\x1f{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _typed(value: Any) -> tuple:
    return (type(value), value)  # True == 1 in Python; not in an experiment


def _member(value: Any, allowed: frozenset) -> bool:
    try:
        return _typed(value) in allowed
    except TypeError:  # an unhashable kwarg (a list, a dict) equals no JSON scalar
        return False


def compile_predicate(predicate: Any, salt: str) -> Callable[[dict], bool]:
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
        parts = tuple(compile_predicate(p, salt) for p in predicate.all)
        return lambda kwargs: all(part(kwargs) for part in parts)
    if isinstance(predicate, _AnyPredicate):
        parts = tuple(compile_predicate(p, salt) for p in predicate.any)
        return lambda kwargs: any(part(kwargs) for part in parts)
    raise TypeError(f"unknown predicate {type(predicate).__name__}")


def args_of(predicate: Any) -> set[str]:
    if isinstance(predicate, _InPredicate):
        return set(predicate.in_)
    if isinstance(predicate, _EqPredicate):
        return set(predicate.eq)
    if isinstance(predicate, _PercentPredicate):
        return {predicate.percent.arg}
    if isinstance(predicate, (_AllPredicate, _AnyPredicate)):
        return set().union(*(args_of(p) for p in (predicate.all if isinstance(predicate, _AllPredicate)
                                                     else predicate.any)))
    return set()


@dataclasses.dataclass(frozen=True)
class Compiled(Generic[T]):
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
