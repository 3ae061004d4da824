"""Wiring checks made at `compile()`: every message names the node or edge at fault."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from tether.constants import END, START
from tether.errors import GraphCompileError, StrictnessWarning
from tether.graph.nodes import (
    Wiring,
    has_return_annotation,
    inspect_callable,
    may_return_command,
    mentions_routing,
)

ANY = "*"


def validate(graph: Wiring, interrupt: Iterable[str], *, strict: bool = False) -> None:
    """Check a builder's wiring.

    A node that nothing can reach is refused with `strict`; otherwise it is a
    `StrictnessWarning` (LangGraph compiles such graphs).

    Raises:
        GraphCompileError: no entry point, an edge or path_map naming an unknown node, an
            interrupt naming an unknown node, or (strict) a node that nothing can reach.
    """
    _check_edges(graph)
    _check_routes(graph)
    for name in interrupt:
        if name != ANY and name not in graph.nodes:
            raise GraphCompileError(f"Interrupt node `{name}` not found")
    if not any(s == START for s, _ in graph.edges) and START not in graph.branches:
        raise GraphCompileError(
            "Graph must have an entrypoint: add at least one edge from START to another node"
        )
    _check_reachable(graph, strict)


def _check_edges(graph: Wiring) -> None:
    nodes = set(graph.nodes)
    for source, target in graph.edges:
        if source != START and source not in nodes:
            raise GraphCompileError(f"Found edge starting at unknown node `{source}`")
        if target not in nodes and target != END:
            raise GraphCompileError(f"Found edge ending at unknown node `{target}`")
    for sources, target in graph.waiting_edges:
        for source in sources:
            if source == START or source not in nodes:
                raise GraphCompileError(
                    f"Found waiting edge {list(sources)} -> `{target}` starting at unknown "
                    f"node `{source}`"
                )
        if target not in nodes:
            raise GraphCompileError(f"Found edge ending at unknown node `{target}`")


def _check_routes(graph: Wiring) -> None:
    known = set(graph.nodes) | {END}
    for source, branches in graph.branches.items():
        if source != START and source not in graph.nodes:
            raise GraphCompileError(f"Found conditional edge starting at unknown node `{source}`")
        for branch in branches.values():
            for target in (branch.path_map or {}).values():
                if target not in known:
                    raise GraphCompileError(
                        f"At '{source}' node, '{branch.name}' branch found unknown target "
                        f"'{target}'"
                    )
    for node in graph.nodes.values():
        for target in node.destinations or ():
            if target not in known:
                raise GraphCompileError(
                    f"Node '{node.name}' declares destination '{target}', which is not a node"
                )


def _targets(graph: Wiring, source: str) -> set[str] | None:
    """Where `source` may route; None when it may route anywhere."""
    out = {t for s, t in graph.edges if s == source}
    out |= {t for sources, t in graph.waiting_edges if source in sources}
    for branch in graph.branches.get(source, {}).values():
        if branch.path_map is not None:
            out |= set(branch.path_map.values())
            continue
        info = inspect_callable(branch.path)
        if info.destinations is None:
            return None
        out |= set(info.destinations)
    node = graph.nodes.get(source)
    if node is not None:
        if node.destinations is not None:
            out |= set(node.destinations)
        elif node.subgraph is None and (may_return_command(node.call)
                                         or not has_return_annotation(node.call)
                                         or mentions_routing(node.call)):
            return None
        elif node.subgraph is not None and _may_command_parent(node.subgraph.builder):
            return None  # a node inside may hand off to any node here (Command.PARENT)
    return out


def _may_command_parent(graph: Wiring) -> bool:
    """Whether a node of `graph`, or of a subgraph inside it, may return a `Command` (and so
    `Command(graph=Command.PARENT, goto=...)` to a node of the graph above)."""
    for node in graph.nodes.values():
        if node.subgraph is not None:
            if _may_command_parent(node.subgraph.builder):
                return True
        elif may_return_command(node.call) or mentions_routing(node.call):
            return True
    return False


def _check_reachable(graph: Wiring, strict: bool) -> None:
    seen: set[str] = set()
    frontier = [START]
    while frontier:
        source = frontier.pop()
        targets = _targets(graph, source)
        if targets is None:
            return  # a branch may go anywhere: nothing can be called unreachable
        for target in targets:
            if target in graph.nodes and target not in seen:
                seen.add(target)
                frontier.append(target)
    unreachable = [name for name in graph.nodes if name not in seen]
    for name in unreachable:
        message = (
            f"Node `{name}` is not reachable from START: add an edge to it, or declare how it is "
            "reached (a path_map, a Literal return annotation on the path function, "
            "`destinations=` on add_node, or a Command[Literal[...]] return annotation)"
        )
        if strict:
            raise GraphCompileError(message)
        warnings.warn(message, StrictnessWarning, stacklevel=5)
