"""Running the tasks of one superstep together: a lone task awaited inline, several as
asyncio tasks, and a sync fan-out handed to worker threads all at once.

A *batch* is the plain sync tasks of a step, awaited together without an asyncio task and a
cancel scope binding per task. Only tasks that need nothing per-task from the event loop take
that path: no timeout, no idle limit, no retry policy, no process isolation, no subgraph. Their
scopes still carry the cancel (sync code sees `cancelled()` at once) and their hooks; the ladder
is the same as for one task.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from tether import node_context
from tether.cancel.scope import CancelScope, anyio_scope
from tether.engine.execute import Executor
from tether.engine.task import Task
from tether.engine.to_thread import Job
from tether.errors import GraphInterrupt


async def run_step(ex: Executor, tasks: list[Task]) -> None:
    """Run every task of a step concurrently; returns once each has an outcome.

    Cancellation:
        On a cancel of the run, waits (shielded, bounded by the graces) for the tasks to stop,
        then returns; the caller reads the cancel from the run's scope. A foreign cancellation
        is re-raised after the same wait.
    """
    if len(tasks) == 1:
        await ex.run_attempts(tasks[0], alone=True)
        return
    batch = [t for t in tasks if eligible(ex, t)]
    if len(batch) < 2:
        batch, others = [], tasks
    else:
        batched = {id(t) for t in batch}
        others = [t for t in tasks if id(t) not in batched]
    loop = asyncio.get_running_loop()
    children = [loop.create_task(ex.run_beside(task)) for task in others]
    try:
        if batch:
            await run_batch(ex, batch)
        if children:
            await asyncio.wait(children)
    except asyncio.CancelledError:
        await _abandon_stuck(ex, others, children)
        if not ex.scope.cancel_called:
            raise
    for child in children:
        if child.done() and not child.cancelled():
            child.result()


async def _abandon_stuck(ex: Executor, tasks: list[Task],
                         children: list[asyncio.Task[None]]) -> None:
    grace = max((t.node.cancel_grace or ex.grace) for t in tasks)
    with anyio_scope(shield=True):
        _done, pending = await asyncio.wait(children, timeout=grace + 0.05)
    for task, child in zip(tasks, children, strict=True):
        if child in pending:
            # An async node that keeps swallowing the cancel: stop waiting for it. Its
            # result can never be applied (it finishes after the request).
            task.outcome = "cancelled"
            ex.stopped(task, "abandoned")


def eligible(ex: Executor, task: Task) -> bool:
    """Whether a task can run in a batch."""
    node = task.node
    return (not node.is_async and node.subgraph is None and node.isolation in (None, "thread")
            and node.timeout is None and node.idle_timeout is None and ex.idle_timeout is None
            and not node.retry and ex.max_concurrency is None)


async def run_batch(ex: Executor, tasks: list[Task]) -> None:
    """Run sync tasks on worker threads together; each ends with an outcome.

    Cancellation:
        A cancel of the run interrupts the wait; the unfinished tasks then get the node grace to
        return (cooperative) before their workers are abandoned, shielded. A task that failed
        cancels its siblings, which get the same grace.
    """
    jobs = {_submit(ex, task): task for task in tasks}
    by_future = {job.future: job for job in jobs}
    # Jobs seen finished at the same wake-up are settled (and stream) in the order they were
    # submitted, never in the arbitrary order of a set.
    position = {future: i for i, future in enumerate(by_future)}
    pending: set[asyncio.Future[Any]] = set(by_future)
    deadline: float | None = None
    try:
        while pending:
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            done, pending = await asyncio.wait(pending, timeout=timeout,
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break  # the siblings of a failed task ran out of grace
            for future in sorted(done, key=position.__getitem__):
                job = by_future[future]
                failed = await _settle(ex, jobs[job], job)
                if failed and deadline is None:
                    deadline = time.monotonic() + ex.grace
                    ex.cancel_siblings()
    except asyncio.CancelledError:
        await _stop(ex, jobs, [by_future[f] for f in pending])
        if not ex.scope.cancel_called:
            raise
        return
    if pending:
        await _stop(ex, jobs, [by_future[f] for f in pending])


def _submit(ex: Executor, task: Task) -> Job:
    scope = CancelScope(ex.scope, name=task.node.name)
    task.scope = scope
    token = ex.enter(task, scope)
    try:
        kwargs = ex.kwargs(task) if task.node.kwargs else {}
        return ex.pool.submit(functools.partial(task.node.func, task.input, **kwargs))
    finally:
        node_context.leave(token)


async def _settle(ex: Executor, task: Task, job: Job) -> bool:
    """Record a finished job on its task; True when the task failed."""
    scope = task.scope
    assert scope is not None
    task.finished_at = job.finished_at
    error = job.future.exception()
    failed = False
    if isinstance(error, GraphInterrupt):
        task.outcome, task.interrupts = "interrupted", error.interrupts
    elif isinstance(error, asyncio.CancelledError):
        _cancelled(task, scope)
    elif error is not None:
        task.outcome, task.error = "error", error
        if isinstance(error, Exception):
            await ex.host.task_failed(task, error)
        failed = True
    else:
        cancelled_at = ex.scope.cancelled_at
        if cancelled_at is not None and (job.finished_at or 0.0) >= cancelled_at:
            _cancelled(task, scope)
        else:
            await ex.finish(task, job.future.result())
    scope.close()
    if task.outcome == "done" and ex.host.keeps_writes:
        await ex.host.task_done(task)
    return failed


def _cancelled(task: Task, scope: CancelScope) -> None:
    task.outcome = "cancelled"
    task.hooks = [*task.hooks, *((task.name, hook) for hook in scope.take_hooks())]


async def _stop(ex: Executor, jobs: dict[Job, Task], unfinished: list[Job]) -> None:
    hows = await ex.pool.stop(unfinished, ex.grace)
    for job, how in zip(unfinished, hows, strict=True):
        task = jobs[job]
        scope = task.scope
        assert scope is not None
        if how == "cooperative" and job.future.done() and not job.future.cancelled():
            # It returned within the grace: record its fate (its result, if observed after the
            # cancel, is discarded by _settle).
            await _settle(ex, task, job)
        else:
            _cancelled(task, scope)
            scope.close()
        if task.outcome == "cancelled":
            ex.stopped(task, how)
