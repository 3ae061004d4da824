"""`update_state`: a write made from outside the graph, as if a node had made it."""

from __future__ import annotations

from typing import Any

from tether.cancel.scope import CancelScope
from tether.constants import START
from tether.engine.apply import apply_grouped, group_writes, refresh_values
from tether.engine.loop import Loop, LoopOptions
from tether.engine.resume import is_paused_before, paused_before_marker
from tether.engine.spec import GraphSpec
from tether.engine.stream import Emitter
from tether.engine.task import PULL, Task
from tether.engine.threads import WorkerPool
from tether.errors import InvalidUpdateError


def _drop(_ns: tuple[str, ...], _mode: str, _payload: Any) -> None:
    return None


async def apply_update(spec: GraphSpec, options: LoopOptions, values: Any,
                       as_node: str | None) -> str:
    """Store a new checkpoint with `values` applied as the writes of `as_node`.

    The node's edges and conditional edges fire as if it had just run, so the next tasks are
    the ones it would have triggered.

    Returns:
        The new checkpoint's id.

    Raises:
        InvalidUpdateError: `as_node` is unknown, or ambiguous when not given.
    """
    loop = Loop(spec, options)
    await loop._load()
    loop._refresh_all()
    node_name = as_node or _default_node(spec, loop)
    if node_name == START:
        writes = spec.input_writes(values)
        node = spec.start
        writes.extend(node.edges)
    elif node_name in spec.nodes:
        node = spec.nodes[node_name]
        task = Task(node, None, (PULL, node_name), loop.step + 1)
        writes = await loop.executor.router.writes_for(task, values)
    else:
        raise InvalidUpdateError(f"update_state: as_node={node_name!r} is not a node of the graph")
    done = Task(node, None, (PULL, node_name), loop.step + 1, outcome="done", writes=writes)
    updated = apply_grouped(loop.channels, group_writes([done]), loop.live)
    loop.step += 1
    refresh_values(loop.channels, loop.values, loop.state_keys, updated)
    loop.tasks = loop._plan(updated)
    assert loop.persist is not None
    loop.persist.mark(updated)
    record = await loop.persist.checkpoint(
        loop.channels, loop.step, "update", tuple(t.name for t in loop.tasks),
        {"source": "update", "step": loop.step, "parents": {}, "as_node": node_name},
    )
    if is_paused_before(loop.loaded):
        # The pause still stands: continuing runs the node it paused before.
        await loop.persist.put_writes([paused_before_marker(list(record.next))])
    await loop.persist.flush()
    for pending in loop.persist.unsaved():
        await options.store.aput_checkpoint(pending)  # type: ignore[union-attr]
    return record.id


def _default_node(spec: GraphSpec, loop: Loop) -> str:
    if loop.loaded is None:
        return START
    if len(spec.nodes) == 1:
        return next(iter(spec.nodes))
    ran = loop.loaded.metadata.get("tasks")
    if isinstance(ran, list) and len(ran) == 1:
        return str(ran[0])
    if loop.loaded.metadata.get("source") == "input":
        return START
    raise InvalidUpdateError("Ambiguous update, specify as_node")


def update_options(store: Any, thread_id: str, ns: str, config: Any,
                   pool: WorkerPool) -> LoopOptions:
    """Loop options for an update: a scope nobody cancels, a stream nobody reads."""
    return LoopOptions(config=config, scope=CancelScope(name="update_state"),
                       emitter=Emitter(_drop, ()), pool=pool, store=store, thread_id=thread_id,
                       ns=ns)
