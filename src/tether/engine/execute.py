"""Running the tasks of a superstep: attempts, retries, timeouts, and where each node runs.

A task never raises out of `run_task` except for a foreign cancellation: its fate is recorded
on the task (`outcome`, `writes`, `error`, `interrupts`), and the loop decides what the step
means. Writes are computed only for a task that finished before any cancel of its run; a node
that returns after the request (having swallowed the cancel, or from a late thread) has its
result thrown away.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

from tether import node_context
from tether.cancel.deadlines import deadline_after
from tether.cancel.scope import CancelScope
from tether.engine.batch import eligible, run_batch
from tether.engine.liveness import Liveness
from tether.engine.routing import Router
from tether.engine.spec import NodeSpec, Write
from tether.engine.stream import Emitter
from tether.engine.task import Task
from tether.engine.threads import WorkerPool
from tether.errors import (
    GraphInterrupt,
    NodeError,
    NodeTimeoutError,
    ParentCommand,
)
from tether.node_context import Meter, NodeContext
from tether.runtime import touch
from tether.types import CancelReason, Interrupt, RetryPolicy

_CANCELLED = object()
_SIBLING_FAILED = CancelReason("parent", "another task of the same step failed", "engine")


@dataclass(slots=True)
class Executor:
    """What running a task needs from its loop; one per graph run (and per subgraph run).

    Attributes:
        scope: the scope of the run (or of the parent task, for a subgraph).
        inline_sync: sync nodes alone in their step may run on the loop's thread.
        grace: seconds a node has to stop after a cancel, unless the node sets its own.
        preview: the state with only some writes applied (for conditional edges).
        make_config: builds a task's config dict.
        on_stop: records how a node stopped after a cancel (`terminate_node`).
        on_done: called when a task of a multi-task step finishes (pending writes).
        run_subgraph: runs a compiled-graph node.
        parent_interrupt: for a subgraph, the parent task's `interrupt()` handler.
    """

    scope: CancelScope
    emitter: Emitter
    pool: WorkerPool
    nodes: Any
    inline_sync: bool
    grace: float
    preview: Callable[[list[Write]], dict[str, Any]]
    make_config: Callable[[Task], dict[str, Any]]
    runtime: Callable[[Task], Any]
    run_id: str | None = None
    max_concurrency: int | None = None
    on_stop: Callable[[Task, str], None] | None = None
    on_done: Callable[[Task], Awaitable[None]] | None = None
    run_subgraph: Callable[[Task, Callable[[Any], Any]], Awaitable[Any]] | None = None
    parent_interrupt: Callable[[Any], Any] | None = None
    on_failure: Callable[[Task, BaseException], None] | None = None
    idle_timeout: float | None = None
    meter: Meter | None = None
    _writer: Callable[[Any], None] | None = field(default=None)
    _semaphore: asyncio.Semaphore | None = field(default=None)
    _router: Router | None = field(default=None)

    @property
    def router(self) -> Router:
        """Turns this graph's node answers into writes."""
        if self._router is None:
            self._router = Router(self.nodes, self.preview)
        return self._router

    # -- a whole step ---------------------------------------------------------------------

    async def run_step(self, tasks: list[Task]) -> None:
        """Run every task of a step concurrently; returns once each has an outcome.

        Cancellation:
            On a cancel of the run, waits (shielded, bounded by the graces) for the tasks to
            stop, then returns; the caller reads the cancel from the run's scope. A foreign
            cancellation is re-raised after the same wait.
        """
        if len(tasks) == 1:
            await self.run_task(tasks[0], alone=True)
            return
        batch = [t for t in tasks if eligible(self, t)]
        if len(batch) < 2:
            batch = []
        others = [t for t in tasks if all(t is not b for b in batch)]
        loop = asyncio.get_running_loop()
        children = [loop.create_task(self.run_task(task, alone=False)) for task in others]
        try:
            if batch:
                await run_batch(self, batch)
            if children:
                await asyncio.wait(children)
        except asyncio.CancelledError:
            await self._settle(others, children)
            if not self.scope.cancel_called:
                raise
        for child in children:
            if child.done() and not child.cancelled():
                child.result()

    async def _settle(self, tasks: list[Task], children: list[asyncio.Task[None]]) -> None:
        import anyio

        grace = max((t.node.cancel_grace or self.grace) for t in tasks)
        with anyio.CancelScope(shield=True):
            _done, pending = await asyncio.wait(children, timeout=grace + 0.05)
        for task, child in zip(tasks, children, strict=True):
            if child in pending:
                # An async node that keeps swallowing the cancel: stop waiting for it. Its
                # result can never be applied (it finishes after the request).
                task.outcome = "cancelled"
                self._stopped(task, "abandoned")

    # -- one task -------------------------------------------------------------------------

    async def run_task(self, task: Task, *, alone: bool) -> None:
        """Run one task to an outcome, retrying per its policies."""
        if self._semaphore is None and self.max_concurrency is not None and not alone:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        if self._semaphore is not None and not alone:
            async with self._semaphore:
                await self._run_with_retry(task, alone)
        else:
            await self._run_with_retry(task, alone)
        if not alone and self.on_done is not None and task.outcome == "done":
            await self.on_done(task)

    async def _run_with_retry(self, task: Task, alone: bool) -> None:
        node = task.node
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            scope = CancelScope(self.scope, deadline=deadline_after(node.timeout, started),
                                name=node.name)
            task.scope = scope
            try:
                result = await self._attempt(task, scope, alone)
            except GraphInterrupt as exc:
                task.outcome, task.interrupts = "interrupted", exc.interrupts
                task.finished_at = time.monotonic()
                return
            except Exception as exc:  # noqa: BLE001 - recorded on the task, maybe retried
                error: BaseException = exc
                if self.on_failure is not None:
                    self.on_failure(task, exc)
            else:
                if result is not _CANCELLED:
                    await self._finish(task, result)
                    return
                error = self._cancelled_error(task, scope, started)
                if task.outcome == "cancelled":
                    return
            finally:
                scope.close()
            if isinstance(error, ParentCommand):
                task.outcome, task.error = "error", error
                return
            policy = _matching_policy(node.retry, error)
            if policy is None or attempt >= policy.max_attempts or self.scope.cancel_called:
                task.outcome, task.error = "error", error
                task.finished_at = time.monotonic()
                self._fail_siblings(task, alone)
                return
            await asyncio.sleep(policy.interval(attempt))

    def _cancelled_error(self, task: Task, scope: CancelScope, started: float) -> BaseException:
        # The attempt was cancelled: by the run, by a failed sibling, or by its own timeout.
        task.hooks.extend((task.name, hook) for hook in scope.take_hooks())
        if self.scope.cancel_called:
            task.outcome = "cancelled"
            return asyncio.CancelledError()
        reason = scope.reason
        if reason is not None and reason.kind == "timeout":
            elapsed = time.monotonic() - started
            if reason.requested_by == "idle":
                limit = task.node.idle_timeout or self.idle_timeout or 0.0
                return NodeTimeoutError(task.name, limit, elapsed, kind="idle")
            if task.node.timeout is not None:
                return NodeTimeoutError(task.name, task.node.timeout, elapsed)
        task.outcome = "cancelled"
        return asyncio.CancelledError()

    def _fail_siblings(self, task: Task, alone: bool) -> None:
        del task
        if alone:
            return
        for child in list(self.scope._children or ()):
            if child.reason is None and child is not self.scope:
                child.cancel(_SIBLING_FAILED)

    async def _attempt(self, task: Task, scope: CancelScope, alone: bool) -> Any:
        node = task.node
        idle = node.idle_timeout or self.idle_timeout
        watch = Liveness(scope, idle) if idle is not None else None
        tokens = self._enter(task, scope, watch)
        try:
            bind = (not alone or node.timeout is not None or watch is not None
                    or (not node.is_async and not self._runs_inline(node, alone)))
            if not bind:
                if node.is_async or node.subgraph is not None:
                    result = await self._call(task, scope, alone)
                else:
                    result = self._call_sync(task)
                return self._observe(task, result)
            with scope:
                scope.arm()
                if watch is not None:
                    watch.start()
                result = await self._call(task, scope, alone)
                return self._observe(task, result)
            return _CANCELLED
        except asyncio.CancelledError:
            if _called(scope, self.scope):
                return _CANCELLED
            if scope.cancelled():
                # A deadline passed and the node noticed before its timer ran: fire it now.
                scope.expire_due()
                if _called(scope, self.scope):
                    return _CANCELLED
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # a cancel from outside tether: let it through
            raise NodeError(node.name, "raised CancelledError without being cancelled "
                                       "(raise another exception to fail the node)") from None
        finally:
            if watch is not None:
                watch.stop()
            self._leave(tokens)

    def _observe(self, task: Task, result: Any) -> Any:
        # The instant the engine sees the node's answer decides whether it counts.
        task.finished_at = finished = time.monotonic()
        cancelled_at = self.scope.cancelled_at
        if cancelled_at is not None and finished >= cancelled_at:
            return _CANCELLED
        return result

    def _runs_inline(self, node: NodeSpec, alone: bool) -> bool:
        if node.isolation is not None:
            return node.isolation == "inline"
        return self.inline_sync and alone and node.timeout is None and self.scope.deadline is None

    async def _call(self, task: Task, scope: CancelScope, alone: bool) -> Any:
        node = task.node
        if node.subgraph is not None and self.run_subgraph is not None:
            return await self.run_subgraph(task, self._interrupt_handler(task))
        kwargs = self._kwargs(task) if node.kwargs else None
        if node.is_async:
            if kwargs:
                return await node.func(task.input, **kwargs)
            return await node.func(task.input)
        if self._runs_inline(node, alone):
            return self._call_sync(task)
        fn = functools.partial(node.func, task.input, **(kwargs or {}))
        grace = node.cancel_grace or self.grace
        if node.isolation == "process":
            from tether.engine.process import run_in_process

            return await run_in_process(fn, node=node.name, grace=grace,
                                        on_stop=lambda how: self._stopped(task, how))
        return await self.pool.run(fn, scope=scope, grace=grace,
                                   on_stop=lambda how, _at: self._stopped(task, how))

    def _call_sync(self, task: Task) -> Any:
        node = task.node
        if node.kwargs:
            return node.func(task.input, **self._kwargs(task))
        return node.func(task.input)

    def _stopped(self, task: Task, how: str) -> None:
        task.stop_mode = how  # type: ignore[assignment]
        if self.on_stop is not None:
            self.on_stop(task, how)

    def _kwargs(self, task: Task) -> dict[str, Any]:
        wanted = task.node.kwargs
        out: dict[str, Any] = {}
        if "config" in wanted:
            out["config"] = self.make_config(task)
        if "runtime" in wanted:
            out["runtime"] = self.runtime(task)
        if "writer" in wanted:
            out["writer"] = self.writer
        if "store" in wanted:
            out["store"] = None
        return out

    # -- context --------------------------------------------------------------------------

    @property
    def writer(self) -> Callable[[Any], None]:
        """The `custom` stream writer; safe to call from worker threads."""
        if self._writer is None:
            loop = asyncio.get_running_loop()
            owner = threading.get_ident()
            emit = self.emitter.emit_custom

            def write(chunk: Any) -> None:
                touch()
                if threading.get_ident() == owner:
                    emit(chunk)
                elif not loop.is_closed():
                    loop.call_soon_threadsafe(emit, chunk)

            self._writer = write
        return self._writer

    def _enter(self, task: Task, scope: CancelScope,
               watch: Liveness | None) -> Token[NodeContext | None]:
        return node_context.enter(NodeContext(
            task.name, task.step, self.run_id, scope, self.writer,
            functools.partial(self.make_config, task), self.runtime(task), self.meter,
            self._interrupt_handler(task), watch.touch if watch is not None else None))

    @staticmethod
    def _leave(token: Token[NodeContext | None]) -> None:
        node_context.leave(token)

    def _interrupt_handler(self, task: Task) -> Callable[[Any], Any]:
        if self.parent_interrupt is not None:
            return self.parent_interrupt
        task.interrupt_count = 0
        return functools.partial(_interrupt, task)

    # -- writes ---------------------------------------------------------------------------

    async def _finish(self, task: Task, result: Any) -> None:
        try:
            writes = await self.router.writes_for(task, result)
        except GraphInterrupt as exc:
            task.outcome, task.interrupts = "interrupted", exc.interrupts
            return
        except Exception as exc:  # noqa: BLE001 - a bad update fails the task
            task.outcome, task.error = "error", exc
            return
        task.writes = writes
        task.outcome = "done"
        self.emitter.emit_update(task, task.state_update())

def _called(*scopes: CancelScope) -> bool:
    return any(scope.cancel_called for scope in scopes)


def _interrupt(task: Task, value: Any) -> Any:
    """`interrupt(value)` inside `task`: the next resume value, or a pause."""
    idx = task.interrupt_count
    task.interrupt_count += 1
    if idx < len(task.resume):
        return task.resume[idx]
    raise GraphInterrupt((Interrupt(value, interrupt_id(task.id or task.name, idx)),))


def _matching_policy(policies: tuple[RetryPolicy, ...], exc: BaseException) -> RetryPolicy | None:
    if not isinstance(exc, Exception):
        return None
    for policy in policies:
        if policy.should_retry(exc):
            return policy
    return None


def interrupt_id(task_id: str, idx: int) -> str:
    """A stable id for the `idx`-th interrupt of a task (what `Command(resume={id: v})` uses)."""
    return hashlib.blake2b(f"{task_id}:{idx}".encode(), digest_size=16).hexdigest()
