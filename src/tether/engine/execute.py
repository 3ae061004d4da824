"""Running one task of a superstep: attempts, retries, timeouts, and where each node runs.

A task never raises out of `run_task` except for a foreign cancellation: its fate is recorded
on the task (`outcome`, `writes`, `error`, `interrupts`), and the loop decides what the step
means. Writes are computed only for a task that finished before any cancel of its run; a node
that returns after the request (having swallowed the cancel, or from a late thread) has its
result thrown away.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

from tether import node_context
from tether.cancel.scope import CancelScope
from tether.checkpoint.base import WriteRecord
from tether.constants import RESUME, RETURN
from tether.engine import interrupts
from tether.engine.attempt import (
    cancelled_error,
    open_scope,
    refuse_own_cancel,
    retry_policy,
    watchdog,
)
from tether.engine.attempt import end as end_attempt
from tether.engine.calls import CallSite
from tether.engine.host import TaskHost
from tether.engine.liveness import Liveness
from tether.engine.observe import AttemptWatch, MessageOut, TaskObserver
from tether.engine.routing import Router
from tether.engine.spec import NodeSpec
from tether.engine.stream import CustomWriter, Emitter, LoopRelay
from tether.engine.task import StopMode, Task
from tether.engine.to_thread import ThreadPool
from tether.errors import (
    GraphInterrupt,
    ParentCommand,
)
from tether.node_context import Meter, NodeContext, StreamWriter
from tether.runtime import Runtime, touch
from tether.types import CancelReason, Command

_CANCELLED = object()
_SIBLING_FAILED = "another task of the same step failed"
"""Why a failed task's running siblings are cancelled (its reason is made at the failure)."""


@dataclass(slots=True)
class Executor:
    """Runs the tasks of a loop's steps; one per graph run (and per subgraph run).

    Attributes:
        scope: the scope of the run (or of the parent task, for a subgraph).
        host: the loop the tasks belong to.
        inline_sync: sync nodes alone in their step may run on the loop's thread.
        grace: seconds a node has to stop after a cancel, unless the node sets its own.
        idle_timeout: the run's idle limit per attempt, unless the node sets its own.
        meter: counts the usage nodes report (`tether.charge()`).
        parent_interrupt: for a subgraph, the parent task's `interrupt()` handler.
        null_resume: an answer not addressed to any task (`InputPlan.null_resume`), taken by
            the first `interrupt()` asked without one (None: there is none, as in most runs).
        kept: for the step the run resumes, what its calls left (pending writes by call id,
            with the new answers to their questions); None (nothing) once the step commits,
            and in the steps of most runs.
        cache, cache_policy: where results of nodes and calls are cached (`LoopOptions`).
        event_loop: the loop the run runs on, when the executor is made inside it (None: found
            on first use, which must then be on the loop's thread).
        observer: watches each attempt of the graph's tasks (None: nothing is watched).
    """

    scope: CancelScope
    emitter: Emitter
    pool: ThreadPool
    nodes: Mapping[str, NodeSpec]
    host: TaskHost
    inline_sync: bool
    grace: float
    run_id: str | None = None
    max_concurrency: int | None = None
    idle_timeout: float | None = None
    meter: Meter | None = None
    parent_interrupt: Callable[[Any], Any] | None = None
    null_resume: list[Any] | None = None
    kept: dict[str, list[WriteRecord]] | None = None
    cache: Any = None
    cache_policy: Any = None
    observer: TaskObserver | None = None
    _writer: StreamWriter | None = field(default=None)
    _runtime: Runtime[Any] | None = field(default=None)
    _out: MessageOut | None = field(default=None)
    _semaphore: asyncio.Semaphore | None = field(default=None)
    _router: Router | None = field(default=None)
    event_loop: asyncio.AbstractEventLoop | None = None

    @property
    def router(self) -> Router:
        """Turns this graph's node answers into writes."""
        if self._router is None:
            host = self.host  # called through the (weak) host: a bound method holds the loop
            self._router = Router(self.nodes, lambda writes: host.preview(writes))  # noqa: PLW0108
        return self._router

    # -- one task -------------------------------------------------------------------------

    async def run_task(self, task: Task, *, alone: bool) -> None:
        """Run one task to an outcome, retrying per its policies.

        Cancellation:
            A cancel of the run is recorded on the task (`cancelled`), not raised; the
            node's grace bounds the wait for it to stop. A foreign cancellation propagates.
        """
        if self._semaphore is None and self.max_concurrency is not None and not alone:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        if self._semaphore is not None and not alone:
            async with self._semaphore:
                await self.run_attempts(task, alone)
        else:
            await self.run_attempts(task, alone)
        if not alone and task.outcome == "done" and self.host.keeps_writes:
            await self.host.task_done(task)

    def run_beside(self, task: Task) -> Coroutine[Any, Any, None]:
        """The coroutine that runs `task` beside others of its step: its attempts alone when
        there is no concurrency limit and no writes to keep (one coroutine less per task of a
        fan-out), else `run_task`."""
        if self.max_concurrency is None and not self.host.keeps_writes:
            return self.run_attempts(task, False)
        return self.run_task(task, alone=False)

    async def run_attempts(self, task: Task, alone: bool) -> None:
        """Run `task`'s attempts until one counts or its retry policy gives up: `run_task`
        without the concurrency limit and the kept writes, all a task alone in its step needs
        (the loop awaits it directly: one coroutine frame less per run in flight).

        Cancellation:
            As `run_task`: a cancel of the run is recorded on the task, not raised.
        """
        # An attempt of a node that needs no binding of its scope (no timeout, no watchdog,
        # no thread) is awaited from this very frame: a run parked in such a node holds no
        # frame between its loop and its node.
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            scope = open_scope(task, self.scope, started)
            try:
                watch = watchdog(task, scope, self.idle_timeout)
                token = self.enter(task, scope, watch)
                seen = self._watch(task) if self.observer is not None and task.parent is None \
                    else None
                try:
                    call = self._call_for(task, scope, watch, alone)
                    # None: a sync node inline, called right here.
                    result = self._observe(
                        task, await call if call is not None else self._call_sync(task), seen
                    ) if seen is None else await self._watched(task, call, seen)
                except asyncio.CancelledError:
                    if not self._cancelled_by_tether(scope):
                        refuse_own_cancel(task)
                        raise  # a cancel from outside tether: let it through
                    result = _CANCELLED
                finally:
                    end_attempt(task, watch, seen, token)
                if task.site is not None:
                    await self.settle_calls(task)
            except GraphInterrupt as exc:
                await self._interrupted(task, exc)
                return
            except Exception as exc:  # noqa: BLE001 - recorded on the task, maybe retried
                error: BaseException = exc
                await self.settle_calls(task)
                await self.host.task_failed(task, exc)
            else:
                if result is not _CANCELLED:
                    await self.finish(task, result)
                    return
                stopped = cancelled_error(task, scope, self.scope, started, self.idle_timeout)
                if task.outcome == "cancelled":
                    return
                assert stopped is not None  # a cancel leaves the task `cancelled`
                error = stopped
            finally:
                scope.close()
            if not await self._retrying(task, error, attempt, alone):
                return

    def _call_for(self, task: Task, scope: CancelScope, watch: Liveness | None,
                  alone: bool) -> Awaitable[Any] | None:
        """What an attempt of `task` awaits: its call with its scope bound to the running task
        where it needs that (a deadline, a watchdog, siblings that may cancel it, a sync node
        on a thread, abandoned through it), else its bare call (an async node alone in its
        step: the run's scope delivers its cancel). None: a sync node run inline."""
        node = task.node
        if (not alone or node.timeout is not None or watch is not None
                or (not node.is_async and not self._runs_inline(node, alone))):
            return self._bound(task, scope, watch, alone)
        if node.is_async or node.subgraph is not None:
            return self._call_of(task, scope, alone)
        return None

    async def _bound(self, task: Task, scope: CancelScope, watch: Liveness | None,
                     alone: bool) -> Any:
        """Call `task`'s node with its attempt's scope bound to the running task: the node's
        answer, or `_CANCELLED` when the scope's own cancel stopped it.

        Cancellation:
            The scope's own cancel (its deadline, a failed sibling) is absorbed here; any
            other cancel propagates.
        """
        with scope:
            if scope.own_deadline is not None:
                scope.arm()
            if watch is not None:
                watch.start()
            return await self._call_of(task, scope, alone)
        return _CANCELLED

    async def _interrupted(self, task: Task, exc: GraphInterrupt) -> None:
        """The attempt paused for input: the task is `interrupted` with its questions.

        Cancellation:
            As `settle_calls`.
        """
        await self.settle_calls(task)
        task.outcome = "interrupted"
        task.interrupts = interrupts.asked(task, exc.interrupts)
        task.finished_at = time.monotonic()

    async def _retrying(self, task: Task, error: BaseException, attempt: int,
                        alone: bool) -> bool:
        """After a failed attempt: True when another is due (after its policy's interval);
        else the task has its outcome (an answer, for a command from a graph its code invoked;
        its error otherwise).

        Cancellation:
            A cancel during the interval between attempts propagates.
        """
        if isinstance(error, ParentCommand) and task.parent is None:
            # A graph the node's code invoked went to this graph: the node answers with that
            # command.
            command = error.command
            await self.finish(task, Command(update=command.update, goto=command.goto))
            return False
        policy = retry_policy(task.node.retry, error)
        if policy is None or attempt >= policy.max_attempts or self.scope.cancel_called:
            task.outcome, task.error = "error", error
            task.finished_at = time.monotonic()
            if not alone and task.parent is None:
                self.cancel_siblings()
            return False
        await asyncio.sleep(policy.interval(attempt))
        return True

    def cancel_siblings(self) -> None:
        """A task of the step failed: cancel the attempts of the others still running."""
        self.scope.cancel_children(CancelReason("parent", _SIBLING_FAILED, "engine"))

    def _cancelled_by_tether(self, scope: CancelScope) -> bool:
        if scope.cancel_called or self.scope.cancel_called:
            return True
        if scope.cancelled():
            # A deadline passed and the node noticed before its timer ran: fire it now.
            scope.expire_due()
            return scope.cancel_called or self.scope.cancel_called
        return False

    def _observe(self, task: Task, result: Any, seen: AttemptWatch | None = None) -> Any:
        # The instant the engine sees the node's answer decides whether it counts.
        if result is _CANCELLED:
            return result
        task.finished_at = finished = time.monotonic()
        cancelled_at = self.scope.cancelled_at
        if cancelled_at is not None and finished >= cancelled_at:
            return _CANCELLED
        if seen is not None:
            seen.finished(result)
        return result

    async def _watched(self, task: Task, call: Awaitable[Any] | None,
                       seen: AttemptWatch) -> Any:
        """The answer of a watched attempt's call (`_observe`); a failure is told to its
        watch before it propagates.

        Cancellation:
            As the call's: a cancel propagates (the watch's `close` tells of the stop).
        """
        try:
            return self._observe(
                task, await call if call is not None else self._call_sync(task), seen)
        except Exception as exc:
            seen.failed(exc)
            raise

    def _watch(self, task: Task) -> AttemptWatch:
        assert self.observer is not None
        return self.observer.watch(functools.partial(self._config_of, task), task.input,
                                   self.message_out)

    def _config_of(self, task: Task) -> dict[str, Any]:
        # A watched attempt's node sees the config its observer saw (and may have added
        # to), the one its node context holds.
        ctx = node_context.current()
        if self.observer is not None and ctx is not None and ctx.task is task:
            return ctx.config
        return self.host.task_config(task)

    def _runs_inline(self, node: NodeSpec, alone: bool) -> bool:
        if node.isolation is not None:
            return node.isolation == "inline"
        # Inline, a sync node blocks the loop: no timer (a deadline, an idle watchdog) could
        # fire, and its thread could not be abandoned.
        return (self.inline_sync and alone and node.timeout is None
                and node.idle_timeout is None and self.idle_timeout is None
                and self.scope.deadline is None)

    def _call_of(self, task: Task, scope: CancelScope, alone: bool) -> Awaitable[Any]:
        # A plain async node's own coroutine, awaited by the attempt itself: no `_call` frame
        # in between while it runs (a run in flight, each task of a fan-out).
        node = task.node
        if node.is_async and not node.kwargs and node.subgraph is None:
            call: Awaitable[Any] = node.func(task.input)  # typed so, not `cast`: a call less
            return call
        return self._call(task, scope, alone)

    async def _call(self, task: Task, scope: CancelScope, alone: bool) -> Any:
        node = task.node
        if node.subgraph is not None:
            return await self.host.run_subgraph(task, self._interrupt_handler(task))
        kwargs = self.kwargs(task) if node.kwargs else None
        if node.is_async:
            if kwargs:
                return await node.func(task.input, **kwargs)
            return await node.func(task.input)
        if self._runs_inline(node, alone):
            return self._call_sync(task)
        fn = functools.partial(node.func, task.input, **(kwargs or {}))
        grace = node.cancel_grace or self.grace
        if node.isolation == "process":
            from tether.engine.to_process import run_in_process

            return await run_in_process(fn, node=node.name, grace=grace,
                                        on_stop=lambda how: self.stopped(task, how))
        return await self.pool.run(fn, scope=scope, grace=grace,
                                   on_stop=lambda how, _at: self.stopped(task, how))

    def _call_sync(self, task: Task) -> Any:
        node = task.node
        if node.kwargs:
            return node.func(task.input, **self.kwargs(task))
        return node.func(task.input)

    def stopped(self, task: Task, how: StopMode) -> None:
        """Record how a node stopped after the run's cancel."""
        task.stop_mode = how
        self.host.node_stopped(task, how)

    def kwargs(self, task: Task) -> dict[str, Any]:
        """The engine objects `task`'s node takes as keyword arguments."""
        wanted = task.node.kwargs
        out: dict[str, Any] = {}
        if "config" in wanted:
            out["config"] = self._config_of(task)
        if "runtime" in wanted:
            out["runtime"] = self.runtime
        if "writer" in wanted:
            out["writer"] = self.writer
        if "store" in wanted:
            out["store"] = self.runtime.store
        return out

    # -- context --------------------------------------------------------------------------

    @property
    def writer(self) -> StreamWriter:
        """The `custom` stream writer (made when a node first asks: most never do); safe to
        call, and to ask for, from worker threads."""
        if self._writer is None:
            self._writer = CustomWriter(self.emitter.emit_custom, self.loop)
        return self._writer

    @property
    def runtime(self) -> Runtime[Any]:
        """The `Runtime` every node of the run sees (made when a node first asks: most never
        do); safe to ask for from worker threads."""
        if self._runtime is None:
            self._runtime = self.host.make_runtime()
        return self._runtime

    @property
    def message_out(self) -> MessageOut | None:
        """Sends a `messages` chunk of this graph's tasks (a sign of life too); safe to call
        from worker threads. None when they are not streamed."""
        if self._out is None and self.emitter.messages:
            self._out = LoopRelay(self.emitter.emit_message, self.loop, before=touch)
        return self._out

    def enter(self, task: Task, scope: CancelScope,
              watch: Liveness | None = None) -> Token[NodeContext | None]:
        """Make `task`'s attempt under `scope` the node context of the calling code; the
        token undoes it (`node_context.leave`)."""
        task.site = None
        task.interrupt_count = 0
        # The config and the interrupt handler come from this executor on demand (`host`):
        # no closures per attempt for what most nodes never ask for.
        return node_context.enter(NodeContext(
            task.name, task.step, self.run_id, scope, None, None, None,
            self.meter, None, watch.touch if watch is not None else None, self, task, self))

    def node_config(self, task: Task) -> dict[str, Any]:
        """The config dict `task`'s node sees (built when its node first asks)."""
        return self.host.task_config(task)

    def node_interrupt(self, task: Task, value: Any) -> Any:
        """`interrupt(value)` inside `task`: the resume value, or a pause."""
        if self.parent_interrupt is not None:
            return self.parent_interrupt(value)
        return interrupts.answer(task, self.null_resume, value)

    def _interrupt_handler(self, task: Task) -> Callable[[Any], Any]:
        if self.parent_interrupt is not None:
            return self.parent_interrupt
        task.interrupt_count = 0
        return functools.partial(interrupts.answer, task, self.null_resume)

    # -- writes ---------------------------------------------------------------------------

    async def finish(self, task: Task, result: Any) -> None:
        """Record a task's result: its writes (and `updates` chunk), or why it has none.

        Cancellation:
            Conditional edges may await; a cancel there fails the task like any error.
        """
        if task.parent is not None:
            task.writes, task.outcome = [(RETURN, result)], "done"
            self.emit_call(task)
            return
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
        if self.emitter.updates:
            self.emitter.emit_update(task, task.state_update())


    # -- calls ----------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the run's tasks and calls are scheduled on (given when the executor
        is made inside one; else the running loop, asked on the loop's thread)."""
        if self.event_loop is None:
            self.event_loop = asyncio.get_running_loop()
        return self.event_loop

    def site_for(self, task: Task) -> CallSite:
        """The launcher of the units `task`'s current attempt starts (made on first use)."""
        site = task.site
        if site is None:
            site = task.site = CallSite(self, task, self.loop)
        result: CallSite = site
        return result

    async def settle_calls(self, task: Task) -> None:
        """Wait for the calls `task`'s attempt launched (before the attempt's scope closes).

        Cancellation:
            The calls are children of the attempt's scope: a cancel stops them with the
            node's ladder; this waits for them to settle.
        """
        site = task.site
        if site is not None and site.busy:
            await site.settle()

    def recall(self, call: Task) -> bool:
        """Give a call what an earlier attempt of its step kept: its result (True: it does not
        run again) or the answers to its questions."""
        kept = self.kept.get(call.id) if self.kept is not None else None
        if not kept:
            return False
        for record in kept:
            if record.channel == RETURN:
                call.writes, call.outcome, call.cached = [(RETURN, record.value)], "done", True
                return True
        call.resume = [r.value for r in sorted(kept, key=lambda r: -r.idx)
                       if r.channel == RESUME]
        return False

    def remember(self, call: Task) -> None:
        """A call finished: a retry of its parent in this step finds its result (as a resume
        would find it in the checkpoint)."""
        if call.outcome == "done" and call.writes and not call.cached:
            if self.kept is None:
                self.kept = {}
            self.kept.setdefault(call.id, []).append(
                WriteRecord(call.id, call.name, 0, RETURN, call.writes[0][1]))

    def emit_call(self, call: Task) -> None:
        """The `updates` chunk of a finished call: its name and its value (none for a quiet
        call)."""
        if call.writes and not getattr(call.spec, "quiet", False):
            self.emitter.emit_update(call, call.writes[0][1])


