"""What a tool receives besides the model's arguments: the graph state (`InjectedState`), the
long-term store (`InjectedStore`) and the whole `ToolRuntime`, found once per tool from its
annotations and filled in for each call. The model never sees, and cannot forge, these."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_args, get_origin

from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool, InjectedToolArg

try:  # a `runtime: ToolRuntime` parameter is left out of the tool's schema by this base
    from langchain_core.tools.base import _DirectlyInjectedToolArg as _DirectlyInjected
except ImportError:  # pragma: no cover - langchain-core before direct injection
    class _DirectlyInjected:  # type: ignore[no-redef]
        """Stand-in base on langchain-core versions without direct injection."""

from tether.types import StreamWriter

ContextT = TypeVar("ContextT")
StateT = TypeVar("StateT")


class InjectedState(InjectedToolArg):
    """Marks a tool parameter that receives the graph state (or one key of it).

    `Annotated[dict, InjectedState]` gets the whole state, `Annotated[str,
    InjectedState("key")]` the value of `key`.
    """

    def __init__(self, field: str | None = None) -> None:
        self.field = field


class InjectedStore(InjectedToolArg):
    """Marks a tool parameter that receives the graph's long-term store."""


def _no_op_writer(_chunk: Any) -> None:
    return None


@dataclass
class ToolRuntime(_DirectlyInjected, Generic[ContextT, StateT]):
    """Everything a tool may reach, given to a parameter annotated `ToolRuntime` (or named
    `runtime`).

    Attributes:
        state: the graph state the tool node was given.
        context: the run's static context.
        config: the config of this tool call.
        stream_writer: writes `custom` stream chunks.
        tool_call_id: the id of the call being answered.
        store: the long-term store, when the graph has one.
        tools: every tool of the node.
    """

    state: StateT
    context: ContextT
    config: dict[str, Any]
    stream_writer: StreamWriter = _no_op_writer
    tool_call_id: str | None = None
    store: Any = None
    tools: list[BaseTool] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InjectedArgs:
    """Which parameters of one tool are filled in by the node.

    Attributes:
        state: parameter -> state key it takes (None: the whole state).
        store: the parameter that takes the store, if any.
        runtime: the parameter that takes the `ToolRuntime`, if any.
        hidden: every injected parameter (the model's values for them are dropped).
        optional_state: state parameters with a default, left out when the key is absent.
    """

    state: dict[str, str | None]
    store: str | None
    runtime: str | None
    hidden: frozenset[str]
    optional_state: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.hidden or self.state or self.store or self.runtime)


def injected_args(tool: BaseTool) -> InjectedArgs:
    """Read a tool's annotations (its schema's and its function's) for injected parameters."""
    schema = tool.get_input_schema()
    annotations: dict[str, Any] = {}
    func = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
    if func is not None:
        try:
            annotations.update(typing.get_type_hints(func, include_extras=True))
        except (NameError, TypeError):
            annotations.update(getattr(func, "__annotations__", {}))
    fields = getattr(schema, "model_fields", {})
    for name, info in fields.items():
        annotations[name] = _field_annotation(info)
    state: dict[str, str | None] = {}
    optional: set[str] = set()
    hidden: set[str] = set()
    store = runtime = None
    for name, hint in annotations.items():
        if name == "return":
            continue
        if _marker(hint, InjectedToolArg) is not None or _is_runtime(hint):
            hidden.add(name)
        if name == "runtime" or _is_runtime(hint):
            runtime = name
        marker = _marker(hint, InjectedState)
        if marker is not None:
            state[name] = marker.field if isinstance(marker, InjectedState) else None
            info = fields.get(name)
            if state[name] and info is not None and not info.is_required():
                optional.add(name)
        if _marker(hint, InjectedStore) is not None:
            store = name
    return InjectedArgs(state, store, runtime, frozenset(hidden), frozenset(optional))


def _field_annotation(info: Any) -> Any:
    # pydantic keeps `Annotated` metadata apart from the type: put them back together.
    metadata = tuple(getattr(info, "metadata", ()) or ())
    hint = info.annotation
    return typing.Annotated[(hint, *metadata)] if metadata else hint


def _marker(hint: Any, kind: type[InjectedToolArg]) -> Any:
    """The `kind` marker in an annotation (an instance, or the class itself), else None."""
    if isinstance(hint, kind) or (isinstance(hint, type) and issubclass(hint, kind)):
        return hint
    origin = get_origin(hint)
    if origin is typing.Annotated or origin is typing.Union or str(origin) == "types.UnionType":
        for arg in get_args(hint):
            found = _marker(arg, kind)
            if found is not None:
                return found
    return None


def _is_runtime(hint: Any) -> bool:
    target = get_origin(hint) or hint
    if isinstance(target, type) and issubclass(target, ToolRuntime):
        return True
    if get_origin(hint) is typing.Annotated:
        return _is_runtime(get_args(hint)[0])
    return False


def inject(call: ToolCall, runtime: ToolRuntime[Any, Any], wanted: InjectedArgs,
           messages_key: str) -> ToolCall:
    """`call` with its injected arguments filled in (and the model's values for them dropped).

    Raises:
        ValueError: the tool wants the store and the graph has none, or wants state keys from
            a node given only a list of messages.
        KeyError: a state key the tool wants is missing from the state.
    """
    if not wanted:
        return call
    values: dict[str, Any] = {}
    if wanted.state:
        values.update(_state_values(call, runtime.state, wanted, messages_key))
    if wanted.store is not None:
        if runtime.store is None:
            raise ValueError("Cannot inject store into tools with InjectedStore annotations - "
                             "please compile your graph with a store.")
        values[wanted.store] = runtime.store
    if wanted.runtime is not None:
        values[wanted.runtime] = runtime
    args = {k: v for k, v in call["args"].items() if k not in wanted.hidden}
    return {**call, "args": {**args, **values}}


def _state_values(call: ToolCall, state: Any, wanted: InjectedArgs,
                  messages_key: str) -> dict[str, Any]:
    if isinstance(state, list):
        keys = list(wanted.state.values())
        if keys[0] is None or keys == [messages_key]:
            state = {messages_key: state}
        else:
            named = ", ".join(k for k in keys if k)
            raise ValueError(f"Invalid input to ToolNode. Tool {call['name']} requires graph "
                             f"state dict as input. State should contain fields {named}.")
    out: dict[str, Any] = {}
    for param, key in wanted.state.items():
        if key is None:
            out[param] = state
        elif isinstance(state, Mapping):
            if key in state:
                out[param] = state[key]
            elif param not in wanted.optional_state:
                raise KeyError(key)
        elif hasattr(state, key):
            out[param] = getattr(state, key)
        elif param not in wanted.optional_state:
            raise AttributeError(key)
    return out


__all__ = ["InjectedArgs", "InjectedState", "InjectedStore", "ToolRuntime", "inject",
           "injected_args"]
