"""What the builder records: its nodes and conditional edges (`NodeDef`, `BranchDef`, the whole
as `Wiring`), and what it learns from a node's or path function's callable: async or not, which
engine objects it takes, and where its annotations say it may route."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args, get_origin

from tether.engine.spec import NODE_KWARGS, GraphSpec
from tether.graph.schema import Schema
from tether.types import Command, RetryPolicy

NS_SEP = "|"
"""What joins the node names of a subgraph's namespace (`parent|child`), as in LangGraph."""


@dataclass(frozen=True, slots=True)
class CallableInfo:
    """How to call a user function."""

    func: Callable[..., Any]
    is_async: bool
    kwargs: frozenset[str]
    first_annotation: Any = None
    destinations: tuple[str, ...] | None = None
    opaque: bool = False
    """A Runnable: what it returns (a `Command` perhaps) cannot be read from its code."""


@dataclass(slots=True)
class NodeDef:
    """A node as the builder records it."""

    name: str
    call: CallableInfo
    input_schema: Any = None
    retry: tuple[RetryPolicy, ...] = ()
    timeout: float | None = None
    idle_timeout: float | None = None
    isolation: str | None = None
    cancel_grace: float | None = None
    destinations: tuple[str, ...] | None = None
    subgraph: Any = None
    defer: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    cache_policy: Any = None


@dataclass(slots=True)
class BranchDef:
    """A conditional edge as recorded by `add_conditional_edges`."""

    name: str
    path: Callable[..., Any]
    path_map: dict[Hashable, str] | None


class Wiring(Protocol):
    """What a builder has recorded, as compiling, validating and drawing read it (implemented
    by `StateGraph`).

    Attributes:
        nodes: nodes in the order they were added.
        edges: plain edges (source, target).
        waiting_edges: join edges (sources, target): the target waits for all of them.
        branches: conditional edges by source and name.
        schema, input_schema, output_schema: the state, input and output schemas.
    """

    nodes: dict[str, NodeDef]
    edges: list[tuple[str, str]]
    waiting_edges: list[tuple[tuple[str, ...], str]]
    branches: dict[str, dict[str, BranchDef]]
    schema: Schema
    input_schema: Schema
    output_schema: Schema

    @property
    def channels(self) -> dict[str, Any]:
        """Every state key of every schema, with its channel factory."""

    @property
    def managed(self) -> dict[str, Any]:
        """Every managed-value key of every schema (`RemainingSteps`...), with its class."""


def _unwrap(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def is_async_callable(fn: Any) -> bool:
    """True for coroutine functions, partials of them, and objects with an async `__call__`."""
    target = _unwrap(fn)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004 - objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _runnable(fn: Any) -> CallableInfo | None:
    # A LangChain Runnable (or anything shaped like one): call its ainvoke with the config.
    if callable(fn) and not hasattr(fn, "ainvoke"):
        return None
    ainvoke = getattr(fn, "ainvoke", None)
    if ainvoke is None:
        return None

    async def call(value: Any, config: dict[str, Any]) -> Any:
        return await ainvoke(value, config)

    return CallableInfo(call, True, frozenset({"config"}), opaque=True)


def inspect_callable(fn: Any) -> CallableInfo:
    """Describe a node or path function.

    Raises:
        TypeError: `fn` is not callable.
    """
    runnable = _runnable(fn)
    if runnable is not None:
        return runnable
    if not callable(fn):
        raise TypeError(f"expected a callable, got {type(fn).__name__}")
    kwargs: set[str] = set()
    first: Any = None
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        params = list(signature.parameters.values())
        for param in params[1:]:
            if param.name in NODE_KWARGS and param.kind in (
                param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY
            ):
                kwargs.add(param.name)
        if params:
            first = params[0].annotation
    return CallableInfo(fn, is_async_callable(fn), frozenset(kwargs), first,
                        _return_destinations(fn))


def _return_destinations(fn: Any) -> tuple[str, ...] | None:
    target = _unwrap(fn)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolved annotations say nothing
        return None
    ret = hints.get("return")
    if ret is None:
        return None
    return literal_values(ret)


def literal_values(annotation: Any) -> tuple[str, ...] | None:
    """Node names named by `Literal[...]` or `Command[Literal[...]]`; None when unknown."""
    origin = get_origin(annotation)
    if origin is Literal:
        return tuple(str(a) for a in get_args(annotation))
    if origin is Command or annotation is Command:
        args = get_args(annotation)
        if args and get_origin(args[0]) is Literal:
            return tuple(str(a) for a in get_args(args[0]))
        return None
    if origin is typing.Union or str(origin) == "types.UnionType":
        names: list[str] = []
        for arg in get_args(annotation):
            found = literal_values(arg)
            if found is None and arg is not type(None):
                return None
            names.extend(found or ())
        return tuple(names)
    return None


def may_return_command(info: CallableInfo) -> bool:
    """Whether a node's annotation says it may return a `Command` without naming targets."""
    target = _unwrap(info.func)
    try:
        ret = typing.get_type_hints(target).get("return")
    except Exception:  # noqa: BLE001 - unresolved annotations say nothing
        return False
    if ret is None:
        return False
    if ret is Command or get_origin(ret) is Command:
        return info.destinations is None
    return False


def has_return_annotation(info: CallableInfo) -> bool:
    """Whether a node declares what it returns (an unannotated node might return a Command)."""
    target = _unwrap(info.func)
    annotations = getattr(target, "__annotations__", None)
    if annotations is None:
        annotations = getattr(getattr(target, "__call__", None), "__annotations__", {})  # noqa: B004
    return "return" in (annotations or {})


def mentions_routing(info: CallableInfo) -> bool:
    """Whether a node's code names `Command` or `Send`, so it may route where no edge says.

    Used only to avoid calling a node unreachable when its function might send to it.
    """
    if info.opaque:
        return True
    # A graph the node invokes may answer with `Command.PARENT`, which routes this graph.
    return _mentions(info.func, {"Command", "Send", *GRAPH_CALLS}, unknown=True)


GRAPH_CALLS = frozenset({"invoke", "ainvoke", "stream", "astream"})
"""The methods a node's code calls to run a compiled graph under it."""


def mentions_graph_calls(info: CallableInfo) -> bool:
    """Whether a sync node's code calls a graph's `invoke`/`stream` (so it is run on a thread,
    where a graph it invokes can run under it on the loop)."""
    return not info.is_async and not info.opaque and _mentions(info.func, GRAPH_CALLS,
                                                               unknown=False)


def graphs_used(fn: Any) -> list[GraphSpec]:
    """The compiled graphs a node's code refers to (by a global or a closure variable), as
    LangGraph finds the subgraphs a node invokes: their specs, in the order found."""
    return [graph.spec for graph in graphs_referenced(fn)]


def graphs_referenced(fn: Any) -> list[Any]:
    """The compiled graphs (objects with a `GraphSpec` as `spec`) a node's code refers to by a
    global or a closure variable, in the order found."""
    target = _unwrap(fn)
    code = getattr(target, "__code__", None)
    if code is None:
        return []
    found: list[Any] = [cell.cell_contents for cell in getattr(target, "__closure__", None) or ()
                        if _has_contents(cell)]
    scope = getattr(target, "__globals__", {})
    found.extend(scope[name] for name in code.co_names if name in scope)
    return [obj for obj in found if isinstance(getattr(obj, "spec", None), GraphSpec)]


def subgraphs_of(nodes: Mapping[str, NodeDef], namespace: str | None,
                 recurse: bool) -> Iterator[tuple[str, Any]]:
    """`(namespace, compiled graph)` for each node that runs a subgraph (added as the node, or
    the first one its code invokes), in the order the nodes were added; LangGraph's
    `get_subgraphs`: with `namespace` (`parent|child`, matched whole), only the subgraph
    there; with `recurse`, the subgraphs of the subgraphs too (`parent|child` namespaces)."""
    for name, node in nodes.items():
        if namespace is not None and namespace != name \
                and not namespace.startswith(name + NS_SEP):
            continue
        graph = node.subgraph
        if graph is None:
            graph = next(iter(graphs_referenced(node.call.func)), None)
        if graph is None:
            continue
        if name == namespace:
            yield name, graph
            return
        if namespace is None:
            yield name, graph
        deeper = getattr(graph, "get_subgraphs", None)
        if recurse and deeper is not None:
            rest = None if namespace is None else namespace[len(name) + 1:]
            for child, found in deeper(namespace=rest, recurse=True):
                yield f"{name}{NS_SEP}{child}", found


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _mentions(fn: Any, names: set[str] | frozenset[str], *, unknown: bool) -> bool:
    """Whether `fn`'s code (or code nested in it) names any of `names` (`unknown` when it has
    no code to read)."""
    target = _unwrap(fn)
    code = getattr(target, "__code__", None)
    if code is None:
        code = getattr(getattr(target, "__call__", None), "__code__", None)  # noqa: B004
    if code is None:
        return unknown
    stack = [code]
    while stack:
        current = stack.pop()
        if names & set(current.co_names):
            return True
        stack.extend(c for c in current.co_consts if hasattr(c, "co_names"))
    return False


def node_name(fn: Any) -> str:
    """The default name of a node added without one (LangGraph's rule: the function's name)."""
    target = _unwrap(fn)
    name = getattr(target, "name", None) or getattr(target, "__name__", None)
    if not isinstance(name, str):
        name = type(target).__name__
    return name
