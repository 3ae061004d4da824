"""A compiled graph used as a node: a child loop inside the parent's task.

The child runs under the parent task's cancel scope (so a cancel of the run reaches every node
of the subgraph), shares the parent's thread pool and run, and routes its `interrupt()` calls
through the parent task, so a resumed parent hands the resume values down in order. With a
checkpointer the child checkpoints in its own namespace (`node:task_id`): when the parent task
runs again (a resume), the child continues from its own last checkpoint instead of starting over.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from tether.cancel.scope import anyio_scope
from tether.engine.options import LoopOptions
from tether.engine.outcome import LoopOutcome
from tether.engine.stream import Emitter, drop
from tether.engine.task import Task
from tether.errors import GraphInterrupt, GraphRecursionError, ParentCommand
from tether.types import Command


def child_namespace(parent_ns: str, node: str, task_id: str, index: int = 0) -> str:
    """The checkpoint namespace of a subgraph run by one task (LangGraph's `node:task_id`; the
    `index`-th graph a task's code invokes after its first gets `|index` appended)."""
    entry = f"{node}:{task_id}" if not index else f"{node}:{task_id}|{index}"
    return f"{parent_ns}|{entry}" if parent_ns else entry


def child_options(opts: LoopOptions, task: Task, handler: Callable[[Any], Any], *,
                  durable: bool, index: int = 0) -> LoopOptions:
    """The options of the loop that runs a subgraph of `task` (its node's, or the `index`-th
    one its code invokes), under `task`'s scope."""
    assert task.scope is not None
    ns = child_namespace(opts.ns, task.name, task.id, index)
    # A chunk's namespace has one entry per level, as LangGraph's (the checkpoint namespace
    # joins them with "|").
    entry = ns[len(opts.ns) + 1:] if opts.ns else ns
    emitter = (opts.emitter.child((*opts.emitter.ns, entry)) if opts.subgraphs
               else Emitter(drop, ()))
    return dataclasses.replace(
        opts, config=dataclasses.replace(opts.config, checkpoint_id=None, checkpoint_ns=ns),
        scope=task.scope, emitter=emitter, store=opts.store if durable else None,
        thread_id=opts.thread_id if durable else None, ns=ns, interrupt_before=None,
        interrupt_after=None, parent_interrupt=handler, nested=True, closer=None)


async def resumes(opts: LoopOptions) -> bool:
    """Whether the child loop of `opts` continues from a checkpoint of its own.

    Cancellation:
        Safe: it only reads.
    """
    if opts.store is None or opts.thread_id is None:
        return False
    return await opts.store.aget_checkpoint(opts.thread_id, opts.ns) is not None


async def keep(opts: LoopOptions, outcome: LoopOutcome) -> None:
    """Store what the child leaves that its loop did not: writes of an unfinished step and
    checkpoints held back by the durability mode. Shielded: it runs while a cancel unwinds.

    Cancellation:
        Shielded; each write is one store transaction.
    """
    store, thread_id = opts.store, opts.thread_id
    assert store is not None and thread_id is not None
    with anyio_scope(shield=True):
        for record in outcome.unsaved:
            await store.aput_checkpoint(record)
        if outcome.final_writes and outcome.checkpoint_id is not None:
            await store.aput_writes(thread_id, opts.ns, outcome.checkpoint_id,
                                    outcome.final_writes)


def result(outcome: LoopOutcome, parent_keys: frozenset[str] | None, task: Task,
           limit: int) -> Any:
    """What the child's end means for the parent task: its result, or what it raises.

    Args:
        parent_keys: the parent's state keys, that a subgraph node's output is cut to; None for
            a graph invoked from a node's code, whose caller gets its whole output and sees its
            `Command.PARENT` raised (as `ParentCommand`, which makes the caller's task answer
            with that command).

    Raises:
        GraphInterrupt: the child paused for input.
        asyncio.CancelledError: the child was cancelled (its stopped tasks' cleanup hooks move
            to the parent task).
        GraphRecursionError: the child ran out of supersteps.
        Exception: the error of the child's failed task.
    """
    if outcome.status == "done":
        output = outcome.output
        if isinstance(output, dict) and parent_keys is not None:
            # What the subgraph leaves behind, as seen by its parent: the parent's keys only.
            return {k: v for k, v in output.items() if k in parent_keys}
        return output
    if outcome.status == "interrupted":
        raise GraphInterrupt(outcome.interrupts)
    if outcome.status == "cancelled":
        task.hooks = [*task.hooks, *outcome.hooks]
        raise asyncio.CancelledError
    if outcome.status == "limit":
        raise GraphRecursionError(
            f"Recursion limit of {limit} reached in subgraph '{task.name}' without hitting a "
            "stop condition."
        )
    error = outcome.error
    if isinstance(error, ParentCommand):
        if parent_keys is None:
            raise error
        command = error.command
        return Command(update=command.update, goto=command.goto)
    assert error is not None
    if outcome.error_node is not None:
        task.failed_node = f"{task.name}/{outcome.error_node}"
    raise error


__all__ = ["child_namespace", "child_options", "keep", "result", "resumes"]
