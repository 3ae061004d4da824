"""State and history of a graph's threads: `get_state`, `get_state_history`, `update_state`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from tether.checkpoint.base import CheckpointStore, StoredCheckpoint
from tether.config import RunConfig, merge_configs, parse_config
from tether.engine.snapshot import view
from tether.engine.spec import GraphSpec
from tether.engine.subgraph import child_namespace
from tether.engine.update import apply_update, apply_updates
from tether.errors import CheckpointerRequired, CheckpointNotFound, ConfigError
from tether.graph.nodes import graphs_used
from tether.runs import portal
from tether.types import PregelTask, StateSnapshot, StateUpdate


class GraphHistory:
    """The state-inspection half of a compiled graph (a mixin of `CompiledStateGraph`)."""

    spec: GraphSpec
    checkpointer: CheckpointStore | None
    config: dict[str, Any]

    def _thread(self, config: dict[str, Any] | None, what: str) -> tuple[CheckpointStore,
                                                                       RunConfig]:
        if self.checkpointer is None:
            raise CheckpointerRequired(what)
        rc = parse_config(merge_configs(self.config, config))
        if rc.thread_id is None:
            raise ConfigError(f"{what} needs config['configurable']['thread_id']")
        return self.checkpointer, rc

    def _snapshot(self, stored: StoredCheckpoint, *, live: bool,
                  subgraphs: bool = False) -> StateSnapshot:
        return snapshot_of(self.spec, self.checkpointer, stored, live=live, subgraphs=subgraphs)

    def get_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its latest checkpoint (or at `checkpoint_id`).

        A thread with no checkpoint yet gives an empty snapshot, as in LangGraph.

        Raises:
            CheckpointNotFound: `checkpoint_id` is not a checkpoint of the thread.
        """
        store, rc = self._thread(config, "get_state()")
        assert rc.thread_id is not None
        stored = store.get_checkpoint(rc.thread_id, rc.checkpoint_ns, rc.checkpoint_id)
        if stored is None:
            return _no_state(rc, config)
        return self._snapshot(stored, live=rc.checkpoint_id is None, subgraphs=subgraphs)

    async def aget_state(self, config: dict[str, Any], *,
                         subgraphs: bool = False) -> StateSnapshot:
        """Async twin of `get_state`: the store's async reads (a server's loop keeps serving
        while they wait).

        Cancellation:
            Safe: it only reads.
        """
        store, rc = self._thread(config, "get_state()")
        assert rc.thread_id is not None
        stored = await store.aget_checkpoint(rc.thread_id, rc.checkpoint_ns, rc.checkpoint_id)
        if stored is None:
            return _no_state(rc, config)
        snapshot = snapshot_of(self.spec, store, stored, live=rc.checkpoint_id is None,
                               subgraphs=False)
        if not subgraphs:
            return snapshot
        tasks = [await _awith_child(self.spec, store, stored, task) for task in snapshot.tasks]
        return snapshot._replace(tasks=tuple(tasks))

    def get_state_history(self, config: dict[str, Any], *, filter: dict[str, Any] | None = None,
                          before: dict[str, Any] | None = None,
                          limit: int | None = None) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first."""
        store, rc = self._thread(config, "get_state_history()")
        assert rc.thread_id is not None
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        count = 0
        for stored in store.list_checkpoints(rc.thread_id, rc.checkpoint_ns, before=before_id):
            if filter and any(stored.metadata.get(k) != v for k, v in filter.items()):
                continue
            if limit is not None and count >= limit:
                return
            count += 1
            yield self._snapshot(stored, live=False)

    async def aget_state_history(self, config: dict[str, Any], *,
                                 filter: dict[str, Any] | None = None,
                                 before: dict[str, Any] | None = None,
                                 limit: int | None = None) -> AsyncIterator[StateSnapshot]:
        """Async twin of `get_state_history`.

        Cancellation:
            Safe: it only reads (checkpoints are read as the iterator advances).
        """
        store, rc = self._thread(config, "get_state_history()")
        assert rc.thread_id is not None
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        count = 0
        async for stored in store.alist_checkpoints(rc.thread_id, rc.checkpoint_ns,
                                                    before=before_id):
            if filter and any(stored.metadata.get(k) != v for k, v in filter.items()):
                continue
            if limit is not None and count >= limit:
                return
            count += 1
            yield self._snapshot(stored, live=False)

    async def aupdate_state(self, config: dict[str, Any], values: Any,
                            as_node: str | None = None) -> dict[str, Any]:
        """Write `values` to the thread as if `as_node` had returned them; a new checkpoint.

        Returns:
            The config of the new checkpoint.

        Cancellation:
            The new checkpoint is one store transaction: stored whole or not at all;
            a retry applies the update again.
        """
        store, rc = self._thread(config, "update_state()")
        assert rc.thread_id is not None
        new_id = await apply_update(self.spec, store, rc, values, as_node)
        return _config(rc.thread_id, rc.checkpoint_ns, new_id)

    def update_state(self, config: dict[str, Any], values: Any,
                     as_node: str | None = None) -> dict[str, Any]:
        """Sync twin of `aupdate_state`."""
        return portal.run_sync(lambda _private: self.aupdate_state(config, values, as_node))

    async def abulk_update_state(self, config: dict[str, Any],
                                 supersteps: Sequence[Sequence[StateUpdate | Sequence[Any]]],
                                 ) -> dict[str, Any]:
        """Apply supersteps of updates, each a new checkpoint after the one before: a
        superstep's updates (`StateUpdate(values, as_node)`) are written together, as nodes that
        ran side by side (with several, each names its node).

        Returns:
            The config of the last new checkpoint.

        Raises:
            ValueError: no supersteps, or a superstep without updates.
            InvalidUpdateError: as `update_state`; the supersteps before the bad one are kept.

        Cancellation:
            Each superstep's checkpoint is one store transaction: a cancel keeps the supersteps
            stored before it, whole.
        """
        store, rc = self._thread(config, "bulk_update_state()")
        assert rc.thread_id is not None
        if not supersteps:
            raise ValueError("bulk_update_state() was given no supersteps")
        if any(len(updates) == 0 for updates in supersteps):
            raise ValueError("bulk_update_state() was given a superstep without updates")
        at = rc
        for updates in supersteps:
            pairs = [(update[0], update[1] if len(update) > 1 else None) for update in updates]
            at = dataclasses.replace(at, checkpoint_id=await apply_updates(
                self.spec, store, at, pairs))
        assert at.checkpoint_id is not None
        return _config(rc.thread_id, rc.checkpoint_ns, at.checkpoint_id)

    def bulk_update_state(self, config: dict[str, Any],
                          supersteps: Sequence[Sequence[StateUpdate | Sequence[Any]]],
                          ) -> dict[str, Any]:
        """Sync twin of `abulk_update_state`."""
        return portal.run_sync(lambda _private: self.abulk_update_state(config, supersteps))


def snapshot_of(spec: GraphSpec, store: CheckpointStore | None, stored: StoredCheckpoint, *,
                live: bool, subgraphs: bool) -> StateSnapshot:
    """A stored checkpoint as a `StateSnapshot`; with `subgraphs`, each task that runs a
    subgraph carries the subgraph's own snapshot (recursively)."""
    seen = view(spec, stored, live=live)
    tasks = seen.tasks
    if subgraphs and store is not None:
        tasks = tuple(_with_child(spec, store, stored, task) for task in tasks)
    return StateSnapshot(
        values=seen.values,
        next=seen.next,
        config=_config(stored.thread_id, stored.ns, stored.id),
        metadata=dict(stored.metadata),
        created_at=stored.created_at.isoformat(),
        parent_config=(_config(stored.thread_id, stored.ns, stored.parent_id)
                       if stored.parent_id else None),
        tasks=tasks,
        interrupts=seen.interrupts,
    )


def _with_child(spec: GraphSpec, store: CheckpointStore, stored: StoredCheckpoint,
                task: PregelTask) -> PregelTask:
    node = spec.nodes.get(task.name)
    if node is None:
        return task
    # The node's subgraph, or the graph its code invokes (found as LangGraph finds it).
    child_spec = node.subgraph or next(iter(graphs_used(node.func)), None)
    if child_spec is None:
        return task
    child = store.get_checkpoint(stored.thread_id, child_namespace(stored.ns, task.name, task.id))
    if child is None:
        return task
    state = snapshot_of(child_spec, store, child, live=True, subgraphs=True)
    return task._replace(state=state)


async def _awith_child(spec: GraphSpec, store: CheckpointStore, stored: StoredCheckpoint,
                       task: PregelTask) -> PregelTask:
    """`_with_child` through the store's async reads (each level's own tasks too)."""
    node = spec.nodes.get(task.name)
    child_spec = None if node is None else (
        node.subgraph or next(iter(graphs_used(node.func)), None))
    if child_spec is None:
        return task
    child = await store.aget_checkpoint(stored.thread_id,
                                        child_namespace(stored.ns, task.name, task.id))
    if child is None:
        return task
    state = snapshot_of(child_spec, store, child, live=True, subgraphs=False)
    tasks = [await _awith_child(child_spec, store, child, t) for t in state.tasks]
    return task._replace(state=state._replace(tasks=tuple(tasks)))


def _no_state(rc: RunConfig, config: dict[str, Any]) -> StateSnapshot:
    """What `get_state` answers for a thread without the checkpoint asked for: an empty
    snapshot with no checkpoint yet.

    Raises:
        CheckpointNotFound: a `checkpoint_id` was asked for.
    """
    if rc.checkpoint_id is not None:
        raise CheckpointNotFound(
            f"thread {rc.thread_id!r} has no checkpoint {rc.checkpoint_id!r}"
        )
    return StateSnapshot({}, (), dict(config), None, None, None, (), ())


def _config(thread_id: str, ns: str, checkpoint_id: str | None) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                             "checkpoint_id": checkpoint_id}}
