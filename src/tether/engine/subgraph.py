"""A compiled graph used as a node: a child loop inside the parent's task.

The child runs under the parent task's cancel scope (so a cancel of the run reaches every node
of the subgraph), shares the parent's thread pool, and routes its `interrupt()` calls through the
parent task, so a resumed parent hands the resume values down in order. With a checkpointer the
child checkpoints in its own namespace (`node:task_id`): when the parent task runs again (a
resume), the child continues from its own last checkpoint instead of starting over.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

import anyio

from tether.engine.stream import Emitter
from tether.engine.task import Task
from tether.errors import GraphInterrupt, GraphRecursionError, ParentCommand
from tether.types import Command

if TYPE_CHECKING:
    from tether.engine.loop import Loop


def _drop(_ns: tuple[str, ...], _mode: str, _payload: Any) -> None:
    return None


def child_namespace(parent_ns: str, node: str, task_id: str) -> str:
    """The checkpoint namespace of a subgraph run by one task (LangGraph's `node:task_id`)."""
    entry = f"{node}:{task_id}"
    return f"{parent_ns}|{entry}" if parent_ns else entry


async def _has_checkpoint(parent: Loop, ns: str) -> bool:
    store, thread_id = parent.opts.store, parent.opts.thread_id
    assert store is not None and thread_id is not None
    return await store.aget_checkpoint(thread_id, ns) is not None


async def _keep(child: Loop, outcome: Any) -> None:
    """Store what the child leaves that its loop did not: writes of an unfinished step and
    checkpoints held back by the durability mode. Shielded: it runs while a cancel unwinds."""
    store, thread_id = child.opts.store, child.opts.thread_id
    assert store is not None and thread_id is not None
    with anyio.CancelScope(shield=True):
        for record in outcome.unsaved:
            await store.aput_checkpoint(record)
        if outcome.final_writes and outcome.checkpoint_id is not None:
            await store.aput_writes(thread_id, child.opts.ns, outcome.checkpoint_id,
                                    outcome.final_writes)


async def run_subgraph(parent: Loop, task: Task, handler: Any) -> Any:
    """Run `task`'s subgraph on the task's input; return its output as the task's result.

    Cancellation:
        The child's tasks are children of this task's scope: cancelling the run stops them with
        the same ladder, and this call then raises `CancelledError`.
    """
    from tether.engine.loop import Loop, LoopOptions

    spec = task.node.subgraph
    assert spec is not None and task.scope is not None
    opts = parent.opts
    ns_entry = child_namespace(opts.ns, task.name, task.id)
    emitter = (opts.emitter.child((*opts.emitter.ns, ns_entry)) if opts.subgraphs
               else Emitter(_drop, ()))
    durable = parent.persist is not None
    child = Loop(spec, LoopOptions(
        config=dataclasses.replace(opts.config, checkpoint_id=None, checkpoint_ns=ns_entry),
        scope=task.scope, emitter=emitter, pool=opts.pool,
        store=opts.store if durable else None, thread_id=opts.thread_id if durable else None,
        ns=ns_entry, run_id=opts.run_id, inline_sync=opts.inline_sync, context=opts.context,
        parent_interrupt=handler, on_stop=opts.on_stop, subgraphs=opts.subgraphs,
        hooks=opts.hooks, stop=opts.stop, meter=opts.meter,
    ))
    started = durable and await _has_checkpoint(parent, ns_entry)
    outcome = await child.run(None if started else task.input)
    if durable:
        await _keep(child, outcome)
    if outcome.status == "done":
        output = outcome.output
        if isinstance(output, dict):
            # What the subgraph leaves behind, as seen by its parent: the parent's keys only.
            return {k: v for k, v in output.items() if k in parent.state_keys}
        return output
    if outcome.status == "interrupted":
        raise GraphInterrupt(outcome.interrupts)
    if outcome.status == "cancelled":
        # The child's stopped tasks clean up with the parent's.
        task.hooks.extend(outcome.hooks)
        raise asyncio.CancelledError
    if outcome.status == "limit":
        raise GraphRecursionError(
            f"Recursion limit of {opts.config.recursion_limit} reached in subgraph "
            f"'{task.name}' without hitting a stop condition."
        )
    error = outcome.error
    if isinstance(error, ParentCommand):
        command = error.command
        return Command(update=command.update, goto=command.goto)
    assert error is not None
    raise error
