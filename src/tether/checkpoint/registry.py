"""The classes a stored value may be rebuilt as: exact classes, named by module and qualified
name, never by a module prefix (a prefix let a database name `tether_canary:Thing`, import a
module nobody had imported, and run its code).

A class is allowed when it is
- one of tether's own value and message classes, or LangChain's messages (`BUILTIN`: their
  modules are imported, by their exact names, the first time one is needed);
- a class this process stored itself (`Serializer.dumps` allows every class it writes);
- named by the state schema of a compiled graph (`allow_annotation`: the graph allows the
  classes its annotations name, so a process that only reads a thread rebuilds them too);
- given to `allow()`, or to one serializer as `Serializer(allowed_types=...)`.

Anything else comes back as an `UnresolvedValue` holding its data, and nothing is imported.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from tether import messages as _messages
from tether import types as _types

_LANGCHAIN_MESSAGES = ("human:HumanMessage", "ai:AIMessage", "system:SystemMessage",
                       "chat:ChatMessage", "tool:ToolMessage", "function:FunctionMessage")
_OWN_TYPES = ("CancelReason", "Command", "Interrupt", "PendingWrite", "PregelTask", "RetryPolicy",
              "RunEvent", "RunInfo", "RunSnapshot", "RunStatus", "StateSnapshot", "TimeoutPolicy",
              "Usage")
_OWN_MESSAGES = ("AIMessage", "BaseMessage", "HumanMessage", "RemoveMessage", "SystemMessage",
                 "ToolMessage")
BUILTIN: frozenset[str] = frozenset({
    # Where each class is defined today (`RunStatus` lives in `tether.status`), and the public
    # module's name too, which values stored before a class moved still carry.
    *(f"{cls.__module__}:{cls.__qualname__}"
      for cls in (*(getattr(_types, name) for name in _OWN_TYPES),
                  *(getattr(_messages, name) for name in _OWN_MESSAGES))),
    *(f"tether.types:{name}" for name in _OWN_TYPES),
    *(f"tether.messages:{name}" for name in _OWN_MESSAGES),
    *(f"langchain_core.messages.{path}" for path in _LANGCHAIN_MESSAGES),
    *(f"langchain_core.messages.{path}Chunk" for path in _LANGCHAIN_MESSAGES),
    "langchain_core.messages.base:BaseMessage", "langchain_core.messages.base:BaseMessageChunk",
    "langchain_core.messages.modifier:RemoveMessage", "langchain_core.documents.base:Document",
})
"""The classes allowed in every process: `module:qualname`."""

# path → class, for every class allowed in this process. Only ever grows; a dict's item
# assignment is atomic, so no lock is needed.
_allowed: dict[str, type] = {}
_paths: dict[type, str] = {}


def path_of(cls: type) -> str:
    """`module:qualname` of a class: how a stored value names it."""
    path = _paths.get(cls)
    if path is None:
        path = _paths[cls] = f"{cls.__module__}:{cls.__qualname__}"
    return path


def allow(*classes: type) -> None:
    """Let stored values of exactly these classes be rebuilt (by every serializer of this
    process). A class a process stores is allowed already; allow the others it reads."""
    for cls in classes:
        _allowed[path_of(cls)] = cls


def stored(cls: type) -> str:
    """Allow a class this process is storing a value of; its path."""
    path = path_of(cls)
    if path not in _allowed:
        _allowed[path] = cls
    return path


def allow_annotation(hint: Any) -> None:
    """Allow every class a value of type `hint` may hold: dataclasses, pydantic models, enums
    and subclasses of builtins, looked for through `list[...]`, `X | None`, `Annotated`,
    TypedDicts and the fields of the classes found."""
    seen: set[int] = set()
    todo = [hint]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        todo.extend(typing.get_args(item))
        if not isinstance(item, type):
            continue
        if _rebuildable(item):
            allow(item)
        todo.extend(_field_types(item))


def resolve(path: str, extra: Mapping[str, type]) -> type | None:
    """The allowed class `path` names (`extra` first: one serializer's own), or None."""
    cls = extra.get(path) or _allowed.get(path)
    if cls is None and path in BUILTIN:
        cls = _import(path)
        if cls is not None:
            _allowed[path] = cls
    return cls


def by_path(classes: Iterable[type]) -> dict[str, type]:
    """`classes` keyed by their paths (a serializer's `allowed_types`)."""
    return {path_of(cls): cls for cls in classes}


def _import(path: str) -> type | None:
    module_name, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found if isinstance(found, type) else None


def _rebuildable(cls: type) -> bool:
    if hasattr(cls, "__total__"):
        return False  # a TypedDict: its values are plain dicts
    return (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum)
            or hasattr(cls, "model_validate")
            or (issubclass(cls, (int, str, float, list, dict, tuple))
                and cls.__module__ != "builtins"))


def _field_types(cls: type) -> list[Any]:
    if hasattr(cls, "__total__") or dataclasses.is_dataclass(cls):
        try:
            return list(typing.get_type_hints(cls, include_extras=True).values())
        except (NameError, TypeError):
            return []  # a forward reference this process cannot see: nothing to allow
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict):
        return [getattr(f, "annotation", None) for f in fields.values()]
    return []


__all__ = ["BUILTIN", "allow", "allow_annotation", "by_path", "path_of", "resolve", "stored"]
