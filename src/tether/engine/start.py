"""How a loop run begins: loading the thread's checkpoint, the input step, a `Command` applied
to a paused thread, and the fork made when an older checkpoint is replayed."""

from __future__ import annotations

from typing import Any

from tether.checkpoint.base import StoredCheckpoint, WriteRecord
from tether.constants import END, NULL_TASK_ID, START
from tether.engine.apply import group_one
from tether.engine.execute import Executor
from tether.engine.interrupts import InputPlan
from tether.engine.persist import Persistence
from tether.engine.routing import Router
from tether.engine.spec import Write
from tether.engine.state import ChannelState
from tether.engine.task import Task
from tether.errors import CheckpointNotFound


async def load(state: ChannelState, persist: Persistence | None,
               checkpoint_id: str | None) -> StoredCheckpoint | None:
    """Restore `state` from the thread's checkpoint (its latest, or `checkpoint_id`); None when
    there is none (or no store).

    Raises:
        CheckpointNotFound: the thread has no checkpoint `checkpoint_id`.

    Cancellation:
        Safe: it only reads.
    """
    if persist is None:
        return None
    stored = await persist.store.aget_checkpoint(persist.thread_id, persist.ns, checkpoint_id)
    if stored is None:
        if checkpoint_id is not None:
            raise CheckpointNotFound(
                f"thread {persist.thread_id!r} has no checkpoint {checkpoint_id!r}")
        return None
    persist.restore(stored)
    # Writes given from outside (a Command) belong to this checkpoint's state.
    persist.mark(state.restore(stored))
    return stored


async def input_step(state: ChannelState, persist: Persistence | None, executor: Executor,
                     graph_input: Any, plan: InputPlan, *,
                     loaded: StoredCheckpoint | None) -> list[Task]:
    """Apply the run's input as the writes of the virtual START node: the input checkpoint,
    then the first step's (routed by `executor.router` when the input routes). Returns the
    tasks of the first step.

    Cancellation:
        With durability `sync` the two checkpoints are one store transaction, unless a
        conditional edge from START runs between them (a router may await: then each is one,
        and cancelled between them, the run resumes from the input checkpoint).
    """
    state.move_to(loaded.step + 1 if loaded is not None else -1)
    state.refresh_all()
    start = state.spec.start
    if start is None:
        return await _input_triggers(state, persist, graph_input)
    if persist is not None:
        if state.start_input(START, graph_input):
            persist.mark((START,))
        # Nothing of the user's can wait before the first step's checkpoint unless a router
        # runs: then the input checkpoint goes with that one, in its transaction.
        await persist.take(state, "input", (), (), names=(START,), hold=not start.branches)
    writes: list[Write] = list(plan.writes or ())
    writes.extend(start.edges)
    if start.branches:
        seen = state.preview(writes)
        for branch in start.branches:
            writes.extend(await executor.router.branch_writes(branch, seen, START))
    writes.extend(executor.router.goto_write(t, START) for t in plan.goto if t != END)
    # The virtual START node's writes, committed as its task's would be (a lone task: no order
    # to settle, and no `Task` to make for it).
    updated = state.commit(group_one(writes))
    tasks = state.plan(updated)
    if persist is not None:
        await persist.take(state, "loop", updated, tasks)
    return tasks


async def _input_triggers(state: ChannelState, persist: Persistence | None,
                          graph_input: Any) -> list[Task]:
    """The input of a graph without a START node: written to the START channel, it triggers
    the first step's tasks; the input checkpoint names them."""
    if state.start_input(START, graph_input):
        state.refresh_all()
        if persist is not None:
            persist.mark((START,))
    tasks = state.plan({START})
    if persist is not None:
        await persist.take(state, "input", (), tasks)
    return tasks


async def replaying_older(persist: Persistence | None, loaded: StoredCheckpoint | None,
                          checkpoint_id: str | None) -> bool:
    """True when the run continues from a checkpoint (`checkpoint_id`, asked for by the
    config) that is not its thread's latest.

    Cancellation:
        Safe: it only reads.
    """
    if loaded is None or checkpoint_id is None or persist is None:
        return False
    latest = await persist.store.aget_checkpoint(persist.thread_id, persist.ns)
    return latest is not None and latest.id != loaded.id


async def fork(state: ChannelState, persist: Persistence | None) -> None:
    """Replaying an older checkpoint starts a new branch of history from a copy of it.

    Cancellation:
        One store transaction: the fork checkpoint is stored whole or not at all.
    """
    state.move_to(state.step + 1)
    if persist is not None:
        await persist.take(state, "fork", (), state.plan(None))


async def apply_command(state: ChannelState, persist: Persistence | None, router: Router,
                        plan: InputPlan) -> None:
    """A `Command(update=..., goto=...)` for a thread that has a checkpoint: its writes are
    applied at once (and kept on the checkpoint), then the pending tasks run.

    Cancellation:
        The writes are stored in one transaction before they are applied.
    """
    writes: list[Write] = list(plan.command_writes or ())
    writes.extend(router.goto_write(t, START) for t in plan.goto if t != END)
    if persist is not None:
        await persist.put_writes([WriteRecord(NULL_TASK_ID, "__input__", i, ch, v)
                                  for i, (ch, v) in enumerate(writes)])
    grouped: dict[str, list[Any]] = {}
    for channel, value in writes:
        grouped.setdefault(channel, []).append(value)
    updated = state.put(grouped)
    if persist is not None:
        persist.mark(updated)


__all__ = ["apply_command", "fork", "input_step", "load", "replaying_older"]
