"""Wiring checks made at `compile()`: every message names the node or edge at fault."""

from __future__ import annotations

from collections.abc import Iterable

from tether.constants import END, START
from tether.errors import GraphCompileError
from tether.graph.nodes import (
    Wiring,
    has_return_annotation,
    inspect_callable,
    may_return_command,
    mentions_routing,
)

ANY = "*"


def validate(graph: Wiring, interrupt: Iterable[str]) -> None:
    """Check a builder's wiring.

    Raises:
        GraphCompileError: no entry point, an edge or path_map naming an unknown node, an
            interrupt naming an unknown node, or a node that nothing can reach.
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
    _check_reachable(graph)


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
    return out


def _check_reachable(graph: Wiring) -> None:
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
    if unreachable:
        name = unreachable[0]
        raise GraphCompileError(
            f"Node `{name}` is not reachable from START: add an edge to it, or declare how it is "
            "reached (a path_map, a Literal return annotation on the path function, "
            "`destinations=` on add_node, or a Command[Literal[...]] return annotation)"
        )
