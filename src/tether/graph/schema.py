"""State schemas (TypedDict, dataclass, pydantic) turned into channels, readers and updates."""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

from tether.channels.base import BaseChannel
from tether.channels.binop import BinaryOperatorAggregate
from tether.channels.last_value import LastValue
from tether.checkpoint.registry import allow_annotation
from tether.errors import GraphCompileError, InvalidUpdateError, StrictnessWarning
from tether.managed.base import ManagedValueSpec, is_managed_value

SchemaKind = Literal["typeddict", "dataclass", "pydantic", "mapping"]

_ABSTRACT_DEFAULTS: dict[Any, type] = {
    collections.abc.Sequence: list,
    collections.abc.MutableSequence: list,
    collections.abc.Set: set,
    collections.abc.MutableSet: set,
    collections.abc.Mapping: dict,
    collections.abc.MutableMapping: dict,
}


@dataclass(frozen=True, slots=True)
class Schema:
    """One state schema: its keys, how each key takes writes, and how to build an instance."""

    cls: Any
    kind: SchemaKind
    keys: tuple[str, ...]
    channels: dict[str, Callable[[], BaseChannel]]
    managed: dict[str, ManagedValueSpec] = dataclasses.field(default_factory=dict)
    """Keys whose value the engine computes for each task (`RemainingSteps`...): no channel,
    not in `keys`, but given to the nodes that read this schema."""

    def build(self, values: dict[str, Any]) -> Any:
        """The schema's instance for a state dict (a dict of its keys for TypedDicts)."""
        present = {k: values[k] for k in self.keys if k in values}
        for key in self.managed:
            if key in values:
                present[key] = values[key]
        if self.kind in ("typeddict", "mapping"):
            return present
        return self.cls(**present)

    def fields_of(self, obj: Any) -> list[tuple[str, Any]] | None:
        """The (key, value) pairs of an instance of this schema, or None if `obj` is not one."""
        if self.kind == "dataclass" and dataclasses.is_dataclass(obj) and isinstance(obj, self.cls):
            return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
        if self.kind == "pydantic" and isinstance(obj, self.cls):
            fields_set = getattr(obj, "model_fields_set", None)
            keys = [k for k in self.keys if fields_set is None or k in fields_set]
            return [(k, getattr(obj, k)) for k in keys]
        return None


def _initial(typ: Any) -> Callable[[], Any] | None:
    base = get_origin(typ) or typ
    base = _ABSTRACT_DEFAULTS.get(base, base)
    if not isinstance(base, type) or base in (typing.Any,):
        return None
    try:
        base()
    except Exception:  # noqa: BLE001 - a type with required arguments has no empty value
        return None
    return typing.cast("Callable[[], Any]", base)


def _reducer(metadata: tuple[Any, ...], key: str, cls: Any) -> Callable[[Any, Any], Any] | None:
    for item in reversed(metadata):
        if callable(item) and not isinstance(item, type):
            try:
                params = [
                    p for p in inspect.signature(item).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                ]
            except (TypeError, ValueError):
                return typing.cast("Callable[[Any, Any], Any]", item)
            if len(params) != 2:
                name = getattr(cls, "__name__", cls)
                raise GraphCompileError(
                    f"Reducer of key '{key}' in {name} must take two arguments (current, update), "
                    f"but {getattr(item, '__name__', item)} takes {len(params)}"
                )
            return typing.cast("Callable[[Any, Any], Any]", item)
    return None


def _channel(key: str, hint: Any, cls: Any) -> Callable[[], BaseChannel]:
    if get_origin(hint) is typing.Annotated:
        args = get_args(hint)
        base, metadata = args[0], tuple(args[1:])
        reducer = _reducer(metadata, key, cls)
        if reducer is not None:
            initial = _initial(base)
            return functools.partial(BinaryOperatorAggregate, reducer, initial, key)
    return functools.partial(LastValue, key)  # a partial: no frame of its own per run


def _managed(hint: Any) -> ManagedValueSpec | None:
    if get_origin(hint) is typing.Annotated:
        for item in get_args(hint)[1:]:
            if is_managed_value(item):
                return item
    return None


def _is_typeddict(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__annotations__") \
        and hasattr(cls, "__total__")


def _is_pydantic(cls: Any) -> bool:
    return isinstance(cls, type) and hasattr(cls, "model_fields") and hasattr(cls, "model_validate")


def schema_of(cls: Any) -> Schema:
    """Read a state schema class.

    Raises:
        GraphCompileError: the class is not a TypedDict, dataclass or pydantic model, or a
            reducer has the wrong shape.
    """
    if _is_typeddict(cls):
        kind: SchemaKind = "typeddict"
    elif dataclasses.is_dataclass(cls) and isinstance(cls, type):
        kind = "dataclass"
    elif _is_pydantic(cls):
        kind = "pydantic"
    elif cls is dict:
        return Schema(dict, "mapping", (), {})
    else:
        raise GraphCompileError(
            f"State schema {getattr(cls, '__name__', cls)!r} must be a TypedDict, a dataclass or "
            "a pydantic model"
        )
    try:
        hints = get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise GraphCompileError(
            f"cannot read the annotations of state schema {cls.__name__}: {exc} (define the "
            "types and reducers it uses at module level)"
        ) from None
    if kind == "pydantic":
        hints = {k: hints.get(k, typing.Any) for k in cls.model_fields}
    elif kind == "dataclass":
        hints = {f.name: hints.get(f.name, typing.Any) for f in dataclasses.fields(cls)}
    hints = {k: v for k, v in hints.items() if not k.startswith("__")}
    managed = {key: spec for key, hint in hints.items() if (spec := _managed(hint)) is not None}
    hints = {k: v for k, v in hints.items() if k not in managed}
    channels = {key: _channel(key, hint, cls) for key, hint in hints.items()}
    # The classes the state may hold are the ones a store may rebuild it as, in any process.
    allow_annotation(cls)
    return Schema(cls, kind, tuple(hints), channels, managed)


def input_writes(schema: Schema, node: str) -> Callable[[Any], list[tuple[str, Any]]]:
    """Turns a caller's input into writes to the keys of `schema` (other keys are ignored)."""
    keys = frozenset(schema.keys)

    def writes(value: Any) -> list[tuple[str, Any]]:
        if value is None:
            return []
        if isinstance(value, dict):
            return [(k, v) for k, v in value.items() if k in keys]
        fields = schema.fields_of(value)
        if fields is not None:
            return [(k, v) for k, v in fields if k in keys]
        fields = _object_fields(value)
        if fields is not None:
            return [(k, v) for k, v in fields if k in keys]
        raise InvalidUpdateError(
            f"Invalid input for {node}: expected a dict with keys of "
            f"{getattr(schema.cls, '__name__', 'the state')}, got {type(value).__name__}"
        )

    return writes


UnknownKeys = Literal["drop", "warn", "raise"]
"""What a node's update does with a key the state lacks: drop it silently (a subgraph's output,
of which the parent takes its own keys), drop it with a `StrictnessWarning` once per key (the
default, as LangGraph drops it), or raise `InvalidUpdateError` (`compile(strict=True)`)."""


def update_writes(known: frozenset[str], node: str, *,
                  unknown: UnknownKeys = "raise") -> Callable[[Any], list[tuple[str, Any]]]:
    """Validates a node's return value and turns it into writes.

    Args:
        known: every state key of the graph.
        node: the node's name, for messages.
        unknown: what to do with a key the state lacks (see `UnknownKeys`).
    """
    warned: set[str] = set()

    def reject(key: str) -> None:
        message = (f"Node '{node}' returned unknown state key {key!r}; "
                   f"the state has keys {sorted(known)}")
        if unknown == "raise":
            raise InvalidUpdateError(message)
        if unknown == "warn" and key not in warned:
            warned.add(key)
            warnings.warn(f"{message}. The key is dropped (compile(strict=True) refuses it)",
                          StrictnessWarning, stacklevel=2)

    def writes(value: Any) -> list[tuple[str, Any]]:
        if value is None:
            return []
        if isinstance(value, dict):
            items = list(value.items())
        else:
            fields = _object_fields(value)
            if fields is None:
                raise InvalidUpdateError(
                    f"Node '{node}' returned {type(value).__name__} {_short(value)}; expected a "
                    "dict of state updates, a Command, or None"
                )
            items = fields
        out: list[tuple[str, Any]] = []
        for key, item in items:
            if key in known:
                out.append((key, item))
            else:
                reject(key)
        return out

    return writes


def _object_fields(value: Any) -> list[tuple[str, Any]] | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    if _is_pydantic(type(value)):
        fields_set = value.model_fields_set
        return [(k, getattr(value, k)) for k in type(value).model_fields if k in fields_set]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def reader(schema: Schema, state_keys: frozenset[str]) -> Callable[[dict[str, Any]], Any] | None:
    """Builds a node's input from the state dict (None when a plain copy of it is right)."""
    if (schema.kind in ("typeddict", "mapping") and state_keys <= set(schema.keys)
            and not schema.managed):
        return None
    return schema.build
