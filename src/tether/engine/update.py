"""`update_state`: a write made from outside the graph, as if a node had made it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.checkpoint.base import CheckpointStore, StoredCheckpoint
from tether.config import RunConfig
from tether.constants import START
from tether.engine.apply import group_writes
from tether.engine.interrupts import is_paused_before, paused_before_marker
from tether.engine.persist import Persistence
from tether.engine.routing import Router
from tether.engine.spec import GraphSpec
from tether.engine.start import load
from tether.engine.state import ChannelState
from tether.engine.stream import Emitter, drop
from tether.engine.task import PULL, Task
from tether.errors import InvalidUpdateError


async def apply_update(spec: GraphSpec, store: CheckpointStore, config: RunConfig, values: Any,
                       as_node: str | None) -> str:
    """Store a new checkpoint of `config`'s thread with `values` applied as the writes of
    `as_node`.

    The node's edges and conditional edges fire as if it had just run, so the next tasks are
    the ones it would have triggered.

    Returns:
        The new checkpoint's id.

    Raises:
        InvalidUpdateError: `as_node` is unknown, or ambiguous when not given.

    Cancellation:
        Each store call is one transaction; cancelled midway, the thread keeps its previous
        checkpoint or gets the new one whole. Safe to retry (it then applies the update again).
    """
    return await apply_updates(spec, store, config, [(values, as_node)])


async def apply_updates(spec: GraphSpec, store: CheckpointStore, config: RunConfig,
                        updates: Sequence[tuple[Any, str | None]]) -> str:
    """`apply_update` of several updates as one superstep: each `(values, as_node)` the
    writes of its node, all committed together in one new checkpoint (as nodes that ran side
    by side). With more than one, each names its node (a node of the graph).

    Returns:
        The new checkpoint's id.

    Raises:
        InvalidUpdateError: a node is unknown, or not named where several updates are given
            (or, alone, ambiguous).

    Cancellation:
        As `apply_update`.
    """
    assert config.thread_id is not None and updates
    state = ChannelState(spec)
    persist = Persistence(store, config.thread_id, config.checkpoint_ns, None,
                          config.durability, emitter=Emitter(drop, ()))
    loaded = await load(state, persist, config.checkpoint_id)
    state.refresh_all()
    if len(updates) > 1 and any(as_node is None for _values, as_node in updates):
        raise InvalidUpdateError("as_node is required when applying several updates in one "
                                 "superstep")
    done: list[Task] = []
    for values, as_node in updates:
        node_name = as_node or await _default_node(spec, store, loaded)
        if node_name == START and spec.start is not None and len(updates) == 1:
            writes = spec.input_writes(values)
            node = spec.start
            writes.extend(node.edges)
        elif node_name in spec.nodes:
            node = spec.nodes[node_name]
            task = Task(node, None, (PULL, node_name), state.step + 1)
            writes = await Router(spec.nodes, state.preview).writes_for(task, values)
        else:
            raise InvalidUpdateError(f"update_state: as_node={node_name!r} is not a node of "
                                     "the graph")
        done.append(Task(node, None, (PULL, node_name), state.step + 1, outcome="done",
                         writes=writes))
    updated = state.commit(group_writes(done))
    persist.mark(updated)
    metadata: dict[str, Any] = {"source": "update", "step": state.step, "parents": {}}
    if len(done) == 1:
        metadata["as_node"] = done[0].name
    record = await persist.checkpoint(
        state.channels, state.step, "update", tuple(t.name for t in state.plan(updated)),
        metadata)
    if is_paused_before(loaded):
        # The pause still stands: continuing runs the node it paused before.
        await persist.put_writes([paused_before_marker(list(record.next))])
    await persist.flush()
    for pending in persist.unsaved():
        await store.aput_checkpoint(pending)
    return record.id


async def _default_node(spec: GraphSpec, store: CheckpointStore,
                        loaded: StoredCheckpoint | None) -> str:
    """The node an update without `as_node` is made as, as LangGraph infers it: the node that
    ran last. Updates and forks did not run a node: the checkpoints before them tell; a step
    that ran several nodes makes it ambiguous; before any node ran, it is the input (START).

    Raises:
        InvalidUpdateError: several nodes ran last.
    """
    if len(spec.nodes) == 1:
        return next(iter(spec.nodes))
    seen = loaded
    while seen is not None and seen.source in ("update", "fork"):
        if seen.parent_id is None:
            return START
        seen = await store.aget_checkpoint(seen.thread_id, seen.ns, seen.parent_id)
    if seen is None or seen.source == "input":
        return START
    ran = seen.metadata.get("tasks")
    if not ran:
        return START
    if isinstance(ran, list) and len(ran) == 1:
        return str(ran[0])
    raise InvalidUpdateError("Ambiguous update, specify as_node")


__all__ = ["apply_update"]
