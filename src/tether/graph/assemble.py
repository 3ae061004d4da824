"""From a validated builder to the `GraphSpec` the engine runs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tether.channels.after_finish import LastValueAfterFinish, NamedBarrierValueAfterFinish
from tether.channels.base import BaseChannel
from tether.channels.ephemeral_value import EphemeralValue
from tether.channels.named_barrier_value import NamedBarrierValue
from tether.channels.topic import Topic
from tether.constants import BRANCH_PREFIX, END, JOIN_PREFIX, START, TASKS
from tether.engine.caching import identifier
from tether.engine.spec import BranchSpec, GraphSpec, NodeSpec, Write
from tether.engine.task import shown
from tether.graph.nodes import NodeDef, Wiring, inspect_callable, mentions_graph_calls
from tether.graph.schema import input_writes, reader, update_writes


def join_channel(sources: tuple[str, ...], target: str) -> str:
    """The barrier channel of `add_edge([a, b], c)`."""
    return f"{JOIN_PREFIX}{'+'.join(sources)}:{target}"


def _edge_writes(graph: Wiring, source: str) -> tuple[Write, ...]:
    writes: list[Write] = []
    for start, end in graph.edges:
        if start == source and end != END:
            writes.append((BRANCH_PREFIX + end, None))
    for sources, end in graph.waiting_edges:
        if source in sources:
            writes.append((join_channel(sources, end), source))
    return tuple(writes)


def _branches(graph: Wiring, source: str,
              state_reader: Callable[[dict[str, Any]], Any] | None) -> tuple[BranchSpec, ...]:
    out: list[BranchSpec] = []
    for branch in graph.branches.get(source, {}).values():
        info = inspect_callable(branch.path)
        out.append(BranchSpec(name=branch.name, path=info.func, is_async=info.is_async,
                              kwargs=info.kwargs, path_map=branch.path_map, reader=state_reader))
    return tuple(out)


def assemble(graph: Wiring, interrupt_before: tuple[str, ...],
             interrupt_after: tuple[str, ...], name: str, *, strict: bool = False) -> GraphSpec:
    """Build the engine's view of a validated graph (`strict`: a node returning a key the
    state lacks fails instead of warning)."""
    channels: dict[str, Callable[[], BaseChannel]] = dict(graph.channels)
    state_keys = tuple(channels)
    known = frozenset(state_keys)
    state_reader = reader(graph.schema, known)
    triggers: dict[str, tuple[str, ...]] = {}
    barriers: dict[str, tuple[str, ...]] = {}
    deferred: list[str] = []
    for node_id, node in graph.nodes.items():
        channel = BRANCH_PREFIX + node_id
        channels[channel] = _after_finish(channel) if node.defer else _ephemeral(channel)
        triggers[channel] = (node_id,)
        if node.defer:
            # A deferred node's trigger stays until the run is about to end, then fires once.
            deferred.append(channel)
            barriers[node_id] = (channel,)
    for sources, target in graph.waiting_edges:
        channel = join_channel(sources, target)
        later = graph.nodes[target].defer
        channels[channel] = (_barrier_after_finish if later else _barrier)(frozenset(sources),
                                                                            channel)
        triggers[channel] = (target,)
        barriers[target] = (*barriers.get(target, ()), channel)
        if later:
            deferred.append(channel)
    channels[TASKS] = functools.partial(Topic, TASKS)
    channels[START] = _ephemeral(START)
    nodes: dict[str, NodeSpec] = {}
    # Whether a node's `updates` chunk is the head of its writes (every state key is shown).
    writes_shown = all(shown(key) for key in state_keys)
    for node_name, node in graph.nodes.items():
        node_reader = reader(node.input_schema, known) if node.input_schema else state_reader
        subgraph = node.subgraph.spec if node.subgraph is not None else None
        nodes[node_name] = NodeSpec(
            name=node_name,
            func=node.call.func,
            is_async=node.call.is_async or subgraph is not None,
            kwargs=node.call.kwargs if subgraph is None else frozenset(),
            reader=node_reader,
            updates=update_writes(known, node_name, unknown="drop" if subgraph is not None
                                  else "raise" if strict else "warn"),
            edges=_edge_writes(graph, node_name),
            branches=_branches(graph, node_name, state_reader),
            retry=node.retry,
            timeout=node.timeout,
            idle_timeout=node.idle_timeout,
            isolation=_isolation(node),  # type: ignore[arg-type]
            subgraph=subgraph,
            cancel_grace=node.cancel_grace,
            metadata=node.metadata,
            cache=node.cache_policy,
            cache_ns=(identifier(node.call.func), node_name),
            writes_shown=writes_shown,
        )
    start = NodeSpec(name=START, func=_noop, is_async=False, edges=_edge_writes(graph, START),
                     branches=_branches(graph, START, state_reader))
    output_keys = tuple(k for k in graph.output_schema.keys if k in known)
    return GraphSpec(
        name=name, nodes=nodes, channels=channels, state_keys=state_keys,
        output_keys=output_keys, input_keys=graph.input_schema.keys,
        input_writes=input_writes(graph.input_schema, START), start=start, triggers=triggers,
        output=_output(output_keys),
        values=_output(state_keys),
        interrupt_before=frozenset(interrupt_before),
        interrupt_after=frozenset(interrupt_after),
        order={n: i for i, n in enumerate(nodes)}, barriers=barriers,
        managed=graph.managed, deferred=tuple(deferred),
    )


def _isolation(node: NodeDef) -> str | None:
    """Where a node runs: as asked, or on a thread when it is sync and invokes a graph (which
    then runs under it on the event loop: a node inline on the loop's thread could not wait)."""
    if node.isolation is None and node.subgraph is None and mentions_graph_calls(node.call):
        return "thread"
    return node.isolation


# Channel factories are partials, not lambdas: each run calls them all, and a partial adds no
# frame of its own.


def _ephemeral(key: str) -> Callable[[], BaseChannel]:
    return functools.partial(EphemeralValue, key)


def _barrier(names: frozenset[str], key: str) -> Callable[[], BaseChannel]:
    return functools.partial(NamedBarrierValue, names, key)


def _after_finish(key: str) -> Callable[[], BaseChannel]:
    return functools.partial(LastValueAfterFinish, key)


def _barrier_after_finish(names: frozenset[str], key: str) -> Callable[[], BaseChannel]:
    return functools.partial(NamedBarrierValueAfterFinish, names, key)


def _output(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    def output(values: dict[str, Any]) -> Any:
        out = {k: values[k] for k in keys if k in values}
        return out or None

    return output


def _noop(_value: Any) -> None:
    return None
