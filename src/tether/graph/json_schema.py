"""JSON Schemas of a graph's input, output, state and context, made as LangGraph makes them
(same titles, properties, defaults and required keys). pydantic makes them; it is imported
when a schema is asked for, as tether's core does not depend on it."""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, get_args, get_origin

from tether.graph.schema import Schema

_EXCLUDED_CONFIG_KEYS = ("__pregel_checkpointer", "__pregel_store", "checkpoint_id",
                         "checkpoint_ns", "thread_id")
"""Keys the Agent Server hides from a graph's `config_schema`: the engine's, not the user's."""
_WRAPPERS = frozenset({"Required", "NotRequired", "ReadOnly"})
"""Qualifiers of a TypedDict key (typing's or typing_extensions'), by name."""


def _pydantic() -> types.ModuleType:
    try:
        return importlib.import_module("pydantic")
    except ImportError:
        raise ImportError(
            "a graph's JSON Schemas are made by pydantic, which is not installed: "
            "pip install pydantic (or tether[server])") from None


class Builder(typing.Protocol):
    """What the schemas are read from (implemented by `StateGraph`)."""

    schema: Schema
    input_schema: Schema
    output_schema: Schema
    schemas: dict[Any, Schema]
    context_schema: Any


def titled(name: str, suffix: str) -> str:
    """A graph's name with a suffix, as LangChain names a Runnable's schemas: `LangGraphInput`
    for a capitalised name, `my_graph_input` for another."""
    if name[:1].isupper():
        return name + suffix.title()
    return f"{name}_{suffix.lower()}"


def of_schema(builder: Builder, schema: Schema, title: str) -> dict[str, Any]:
    """The JSON Schema of one of the builder's schemas (its input or output): a pydantic
    model's or a TypedDict's own; a model titled `title` of the keys of a dataclass (or of a
    plain `dict` state: none).

    Raises:
        ImportError: pydantic is not installed.
        pydantic.PydanticUserError: a type pydantic cannot describe (a `typing.TypedDict`
            before Python 3.12, say), as LangGraph raises it.
    """
    pydantic = _pydantic()
    if schema.kind == "pydantic":
        cls: Any = schema.cls
        return dict(cls.model_json_schema())
    if schema.kind == "typeddict":
        return dict(pydantic.TypeAdapter(_typeddict(schema.cls)).json_schema())
    kinds = key_types(builder)
    fields = {key: (kinds[key], _default(key, kinds[key], schema.cls))
              for key in schema.keys if key in kinds}
    return dict(model(title, fields).model_json_schema())


def of_context(builder: Builder) -> dict[str, Any] | None:
    """The JSON Schema of the builder's context schema; None without one.

    Raises:
        ValueError: the context schema is not a pydantic model, a TypedDict or a dataclass.
    """
    context: Any = builder.context_schema
    if context is None:
        return None
    pydantic = _pydantic()
    if isinstance(context, type) and issubclass(context, pydantic.BaseModel):
        return dict(typing.cast(Any, context).model_json_schema())
    if _typing_extensions().is_typeddict(context) or dataclasses.is_dataclass(context):
        return dict(pydantic.TypeAdapter(context).json_schema())
    raise ValueError(f"Invalid context schema {context!r}: it must be a pydantic model, "
                     "a TypedDict or a dataclass")


def of_state(builder: Builder, title: str) -> dict[str, Any]:
    """The Agent Server's `state_schema`: every key of every schema, none required, each of
    the type it takes writes as (`Any` where pydantic cannot describe that type)."""
    pydantic = _pydantic()
    fields: dict[str, tuple[Any, Any]] = {}
    for key, kind in key_types(builder).items():
        try:
            pydantic.TypeAdapter(kind).json_schema()
        except Exception:  # noqa: BLE001 - any type pydantic cannot describe is shown as Any
            fields[key] = (Any, None)
        else:
            fields[key] = (kind, None)
    return dict(model(title, fields).model_json_schema())


def of_config(builder: Builder) -> dict[str, Any]:
    """The Agent Server's `config_schema`: the context schema's JSON Schema without the
    engine's keys (`thread_id`...); `{}` without a context schema.

    Raises:
        KeyError: the context schema's JSON Schema has no properties.
    """
    context = builder.context_schema
    if context is None:
        return {}
    found: dict[str, Any] = dict(_pydantic().TypeAdapter(context).json_schema())
    if found:
        for key in _EXCLUDED_CONFIG_KEYS:
            found["properties"].pop(key, None)
    return found


def key_types(builder: Builder) -> dict[str, Any]:
    """The type each state key takes writes as, from the first schema that declares it (the
    state's, then the input's, the output's and the nodes'), as LangGraph's channels keep it:
    `Required`/`NotRequired` taken off, a reducer's `Annotated` kept."""
    out: dict[str, Any] = {}
    for schema in builder.schemas.values():
        if not schema.keys:
            continue
        hints = typing.get_type_hints(schema.cls, include_extras=True)
        for key in schema.keys:
            if key not in out:
                out[key] = _messages(_unwrapped(hints.get(key, Any)))
    return out


def model(title: str, fields: Mapping[str, tuple[Any, Any]]) -> Any:
    """A pydantic model titled `title` with `fields` (name → (type, default; `...` for a
    required one)). A name pydantic keeps for itself (`_x`, `schema`, `copy`...) is given
    through an alias, so the JSON Schema shows it as it is."""
    pydantic = _pydantic()
    reserved = {name for name in dir(pydantic.BaseModel) if not name.startswith("_")}
    given: dict[str, Any] = {}
    for name, (kind, default) in fields.items():
        if name.startswith("_") or name in reserved:
            title_of = name.lstrip("_").replace("_", " ").title()
            given[f"private_{name}"] = (kind, pydantic.Field(
                default=default, alias=name, serialization_alias=name, title=title_of))
        else:
            given[name] = (kind, default)
    config = pydantic.ConfigDict(arbitrary_types_allowed=True, frozen=True,
                                 protected_namespaces=())
    return pydantic.create_model(title, __config__=config, **given)


def _unwrapped(hint: Any) -> Any:
    while getattr(get_origin(hint), "_name", None) in _WRAPPERS:
        hint = get_args(hint)[0]
    return hint


def _messages(hint: Any) -> Any:
    # tether's `MessagesState` holds `list[Any]` so that `import tether` needs no LangChain;
    # it stands for LangGraph's, whose messages are LangChain's `AnyMessage` (when installed).
    from tether.graph.message import MessagesState

    if hint != typing.get_type_hints(MessagesState, include_extras=True)["messages"]:
        return hint
    try:
        messages = importlib.import_module("langchain_core.messages")
    except ImportError:
        return hint
    annotated: Any = Annotated  # built at run time from a type found at run time
    return annotated[(types.GenericAlias(list, (messages.AnyMessage,)), *get_args(hint)[1:])]


def _typeddict(cls: Any) -> Any:
    """`cls`, or, when it holds tether's `MessagesState` key, a `typing_extensions` TypedDict
    with the same name, keys and documentation whose messages are LangChain's (as LangGraph's
    `MessagesState`, which has no documentation of its own)."""
    from tether.graph.message import MessagesState

    hints = typing.get_type_hints(cls, include_extras=True)
    swapped = {key: _messages(hint) for key, hint in hints.items()}
    if cls is not MessagesState and all(swapped[k] is hints[k] for k in hints):
        return cls
    extensions = _typing_extensions()
    required = getattr(cls, "__required_keys__", frozenset(hints))
    marked = {key: (extensions.Required if key in required else extensions.NotRequired)[
        _unwrapped(hint)] for key, hint in swapped.items()}
    made = extensions.TypedDict(cls.__name__, marked)
    made.__doc__ = None if cls is MessagesState else cls.__doc__
    made.__module__, made.__qualname__ = cls.__module__, cls.__qualname__
    return made


def _typing_extensions() -> types.ModuleType:
    # pydantic's own dependency: present whenever a schema can be made.
    return importlib.import_module("typing_extensions")


def _default(key: str, kind: Any, cls: Any) -> Any:
    """A dataclass key's default in its model, as LangGraph gives it: the field's default
    (its factory's value), else None for an optional type, else `...` (required)."""
    if dataclasses.is_dataclass(cls):
        for field in dataclasses.fields(cls):
            if field.name != key:
                continue
            if field.default is not dataclasses.MISSING and field.default is not ...:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
    return None if _optional(kind) else ...


def _optional(kind: Any) -> bool:
    if kind is None or kind is type(None):
        return True
    origin = get_origin(kind)
    if origin is Annotated:
        return _optional(get_args(kind)[0])
    if origin is typing.Union or isinstance(kind, types.UnionType):
        return any(_optional(arg) for arg in get_args(kind))
    return False


__all__ = ["Builder", "key_types", "model", "of_config", "of_context", "of_schema", "of_state",
           "titled"]
