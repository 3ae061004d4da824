"""Calls: the units of work a running task launches from its own code (a `@task` of the
Functional API, a tool call of a `ToolNode`), each run as a task of its own.

A call has a deterministic id: its parent's path plus the number of calls the parent attempt
made before it, so a parent that runs again (a retry, a resume after a pause or a cancel)
makes the same calls in the same order and finds the results its earlier attempt kept. A call
runs with its own cancel scope (a child of its parent attempt's), retry policy and timeout; its
result is stored at once as a pending write `(call id, "__return__", value)` and kept on its
parent, so the final checkpoint of a stopped run holds every finished call, and only the
unfinished ones run again.

Where a call runs: an async parent starts it at once as an asyncio task (its future). A sync
parent (on a worker thread, or inline on the loop's thread) queues it to tether's threads and,
when it asks for the result before a thread took it, runs it itself; either way the loop only
hears of it afterwards (stream chunks, pending writes). A call with a timeout always runs on
the loop, whose timers enforce it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Generator
from typing import Any, Generic, TypeVar

from tether import node_context
from tether.cancel.scope import anyio_scope
from tether.constants import RETURN
from tether.engine import caching
from tether.engine.call_attempts import Executor, run_here
from tether.engine.call_spec import CALL_ASKED, CallSpec, call_spec, call_writes
from tether.engine.spec import GraphSpec
from tether.engine.task import PUSH, Task
from tether.engine.to_thread import Job
from tether.errors import GraphInterrupt, NodeCancelled
from tether.types import CancelReason

T = TypeVar("T")

CALL_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""Threads at most that run the calls of one sync attempt side by side (a thread pool's usual
size; the attempt's own thread helps too)."""


class CallFuture(concurrent.futures.Future[T], Generic[T]):
    """The result of a call made from sync code: `.result()` (or `await`).

    Asking for a result that nobody started runs the call in the asking thread; waiting for a
    call running elsewhere wakes when the asking node is cancelled (raising `NodeCancelled`).
    """

    __slots__ = ("_call", "_site")

    def __init__(self, site: CallSite, call: Task) -> None:
        super().__init__()
        self._site = site
        self._call = call

    def result(self, timeout: float | None = None) -> T:
        """The call's value (or its exception, raised).

        Raises:
            RuntimeError: waited for on the event loop's thread for a call that needs the loop
                (one with a timeout).
        """
        if not self.done():
            self._site.help(self._call)
        if not self.done():
            self._site.wait(self, timeout)
        return super().result(timeout)

    def __await__(self) -> Generator[Any, None, T]:
        if self.done():
            return super().result()
        return (yield from asyncio.wrap_future(self).__await__())


TaskFuture = CallFuture[Any] | asyncio.Future[Any]
"""What launching a call returns: a `CallFuture` to sync code, an asyncio task (or future) to
async code."""


class CallSite:
    """The calls of one attempt of one task (or of one call): launching, running, settling.

    Invariants: every call launched is in `parent.calls`, in launch order. A call run by a
    thread (not the loop) is in `_waiting` until exactly one party claims it: the worker its job
    was queued to, or the sync caller asking for its result first. `_tasks` holds the asyncio
    tasks still running for these calls (calls run on the loop, their pending writes).
    """

    __slots__ = ("_aside", "_drain_due", "_futures", "_jobs", "_lock", "_tasks", "_waiting",
                 "_workers", "count", "executor", "graphs", "loop", "parent", "sync")

    def __init__(self, executor: Executor, parent: Task, loop: asyncio.AbstractEventLoop) -> None:
        self.executor = executor
        self.parent = parent
        self.loop = loop
        self.sync = not parent.node.is_async
        self.count = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, Task] = {}
        self._futures: dict[int, CallFuture[Any]] = {}
        self._jobs: list[Job] = []
        self._workers = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._aside: list[Task] = []
        self._drain_due = False
        self.graphs = 0
        parent.calls = []

    # -- launching ------------------------------------------------------------------------

    def launch(self, spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskFuture:
        """Start a call of `spec` with `args`/`kwargs`; its future.

        Raises:
            RuntimeError: an async function called from a sync node.
        """
        if self.sync and spec.node.is_async:
            raise RuntimeError("In a sync context async tasks cannot be called "
                               f"(task {spec.name!r} is async; make the caller async)")
        parent = self.parent
        with self._lock:
            n = self.count
            self.count += 1
        call = Task(spec.node, (args, kwargs), (PUSH, f"{parent.path_str}~{n}"), parent.step,
                    parent=parent)
        call.id_key = parent.id_key
        call.spec = spec
        assert parent.calls is not None
        parent.calls.append(call)
        kept = self.executor.recall(call)
        if not self.sync:
            if kept:
                done = self.loop.create_future()
                done.set_result(_value(call))
                return done
            return self._start(call)
        future: CallFuture[Any] = CallFuture(self, call)
        if kept:
            _resolve(future, call)
            return future
        with self._lock:
            self._futures[id(call)] = future
            self._waiting[id(call)] = call
            more = not _needs_loop(call) and self._workers < CALL_THREADS
            if more:
                self._workers += 1
        if _needs_loop(call):
            self.loop.call_soon_threadsafe(self._start_waiting, call)
        elif more:
            job = self.executor.pool.submit(self._work, self.loop)
            with self._lock:
                self._jobs.append(job)
        return future

    def _claim(self, call: Task) -> bool:
        with self._lock:
            return self._waiting.pop(id(call), None) is not None

    def _next(self) -> Task | None:
        """The oldest call no one has taken that a thread may run, taken; None if none."""
        with self._lock:
            for key, call in self._waiting.items():
                if not _needs_loop(call):
                    del self._waiting[key]
                    return call
            self._workers -= 1
            return None

    # -- on the loop ----------------------------------------------------------------------

    def _start(self, call: Task) -> asyncio.Task[Any]:
        self._announce(call)
        task = self.loop.create_task(self._run(call))
        self._track(task)
        return task

    def _start_waiting(self, call: Task) -> None:
        if self._claim(call):
            self._start(call)

    async def _run(self, call: Task) -> Any:
        executor = self.executor
        if executor.cache is not None:
            await caching.recall(executor.cache, [call], executor.cache_policy)
        if call.cached:
            executor.emit_call(call)
        else:
            await executor.run_task(call, alone=False)
            if executor.cache is not None:
                await caching.keep(executor.cache, [call], executor.cache_policy)
        self._report(call)
        self.executor.remember(call)
        future = self._futures.pop(id(call), None)
        if future is not None:
            _resolve(future, call)
        return _value(call)

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._untrack)

    def _untrack(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller that awaits it sees it all the same

    def _announce(self, call: Task) -> None:
        emitter = self.executor.emitter
        if emitter.tasks and not getattr(call.spec, "quiet", False):
            emitter.emit_task_start(call, (PUSH,))

    def _report(self, call: Task) -> None:
        emitter = self.executor.emitter
        if emitter.tasks and not getattr(call.spec, "quiet", False):
            result = {RETURN: call.writes[0][1]} if call.writes else {}
            emitter.emit_task_result(call, result)

    def drain(self) -> None:
        """Report the calls threads ran (stream chunks, pending writes)."""
        with self._lock:
            ran, self._aside, self._drain_due = self._aside, [], False
        executor = self.executor
        for call in ran:
            self._announce(call)
            self._report(call)
            if call.outcome == "done":
                executor.emit_call(call)
                executor.remember(call)
                if executor.host.keeps_writes:
                    self._track(self.loop.create_task(executor.host.task_done(call)))

    # -- on a thread ------------------------------------------------------------------------

    def _work(self) -> None:
        """A worker thread's job: run the calls nobody took yet, oldest first, until none is
        left (at most `CALL_THREADS` such jobs per site, as a thread pool's workers)."""
        while (call := self._next()) is not None:
            self._run_here(call)

    def help(self, call: Task) -> None:
        """A sync caller asks for `call`'s result: if nobody started it, run it here."""
        if not _needs_loop(call) and self._claim(call):
            self._run_here(call)

    def _run_here(self, call: Task) -> None:
        run_here(self.executor, call)
        with self._lock:
            self._aside.append(call)
            due, self._drain_due = self._drain_due, True
        if not due:
            self.loop.call_soon_threadsafe(self.drain)
        future = self._futures.pop(id(call), None)
        if future is not None:
            _resolve(future, call)

    def wait(self, future: CallFuture[Any], timeout: float | None) -> None:
        """Block a sync caller until `future` is done or the caller's node is cancelled.

        Raises:
            RuntimeError: on the event loop's thread, for a call that needs the loop.
            NodeCancelled: the caller's node was cancelled meanwhile.
        """
        if _needs_loop(future._call) and _on_loop(self.loop):
            raise RuntimeError("a task with a timeout cannot be waited for on the event loop's "
                               "thread: await it (async code), or run the node on a thread")
        ctx = node_context.current()
        scope = ctx.scope if ctx is not None else None
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if scope is not None:
            scope.add_waiter(done)
        try:
            done.wait(timeout)
        finally:
            if scope is not None:
                scope.remove_waiter(done)
        if not future.done() and scope is not None and scope.cancelled():
            raise NodeCancelled(scope.effective_reason())

    # -- graphs invoked from the attempt's code ------------------------------------------------

    async def run_graph(self, spec: GraphSpec, graph_input: Any) -> Any:
        """Run a compiled graph the attempt's code invokes, under the attempt (on the loop):
        its output, or what it raises (`GraphInterrupt` pauses the attempt's task; a
        `ParentCommand` makes the task answer with that command).

        Cancellation:
            The graph's tasks are children of the attempt's scope: a cancel of the run stops
            them, and this raises `CancelledError`.
        """
        index = self.graphs
        self.graphs += 1
        ctx = node_context.current()
        handler = ctx.interrupt_handler() if ctx is not None else None
        assert handler is not None
        return await self.executor.host.run_graph(self.parent, spec, graph_input, handler,
                                                  index=index)

    def run_graph_sync(self, spec: GraphSpec, graph_input: Any) -> Any:
        """`run_graph` for a sync attempt on a worker thread: the child loop runs on the loop,
        this thread waits (woken by a cancel of its node).

        Raises:
            NodeCancelled: the attempt was cancelled while waiting.
        """
        ctx = node_context.current()
        done = asyncio.run_coroutine_threadsafe(
            _in_context(ctx, self.run_graph(spec, graph_input)), self.loop)
        scope = ctx.scope if ctx is not None else None
        woken = threading.Event()
        done.add_done_callback(lambda _f: woken.set())
        if scope is not None:
            scope.add_waiter(woken)
        try:
            woken.wait()
        finally:
            if scope is not None:
                scope.remove_waiter(woken)
        if not done.done():
            done.cancel()
            raise NodeCancelled(scope.effective_reason() if scope is not None else None)
        return done.result()

    def cancel_calls(self, reason: CancelReason) -> None:
        """Cancel the calls still running (through their scopes: their ladder, a sync call's
        thread sees `cancelled()`), as a failed task stops its siblings: the attempt gives up
        on them (one of them failed). Calls that finished keep their results."""
        scope = self.parent.scope
        if scope is not None:
            scope.cancel_children(reason)

    # -- settling -------------------------------------------------------------------------

    async def settle(self) -> None:
        """After the parent attempt: wait for every call it launched, and report them.

        Cancellation:
            When the run is cancelled meanwhile, the calls get the grace to stop (threads that
            do not are abandoned, as a node's would be), then this returns (the caller reads
            the cancel from the run's scope); a foreign cancellation is re-raised after that.
        """
        while True:
            self.drain()
            waits = [*[t for t in self._tasks if not t.done()],
                     *[_watched(f) for f in list(self._futures.values())]]
            if not waits:
                return
            try:
                await asyncio.wait(waits)
            except asyncio.CancelledError:
                await self._stop()
                if not self.executor.scope.cancel_called:
                    raise
                return

    async def _stop(self) -> None:
        executor = self.executor
        with anyio_scope(shield=True):
            jobs = [j for j in self._jobs if j.finished_at is None]
            if jobs:
                await executor.pool.stop(jobs, executor.grace)
            pending = [t for t in self._tasks if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=executor.grace + 0.05)
        self.drain()

    @property
    def busy(self) -> bool:
        """Whether any call may still need settling."""
        return bool(self._futures or self._aside or self._tasks)

    def settle_here(self) -> None:
        """Sync settling of a call's own calls, in the thread that ran it."""
        for call in list(self.parent.calls or ()):
            future = self._futures.get(id(call))
            if future is not None:
                with contextlib.suppress(BaseException):  # the call's fate is on the call
                    future.result()


def launch(spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskFuture:
    """Launch a call from the running node's code; its future.

    Raises:
        RuntimeError: outside a running node (a task is called only while a graph runs).
    """
    result: TaskFuture = current_site().launch(spec, args, kwargs)
    return result


def current_site() -> CallSite:
    """The launcher of the running attempt's units.

    Raises:
        RuntimeError: outside a running node.
    """
    ctx = node_context.current()
    if ctx is None or ctx.calls is None:
        raise RuntimeError("a task can only be called while a graph runs: from an "
                           "entrypoint, from another task, or from a node")
    site: CallSite = ctx.calls.site_for(ctx.task)
    return site


def _watched(future: CallFuture[Any]) -> asyncio.Future[Any]:
    """`future` as an asyncio future to wait on, whose outcome is for the call's caller (its
    exception is marked as seen here: it is the caller's to raise, not the loop's to log)."""
    wrapped = asyncio.wrap_future(future)
    wrapped.add_done_callback(_seen)
    return wrapped


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _in_context(ctx: Any, work: Any) -> Any:
    """Await `work` with `ctx` as the node context (a sync node's, on the loop's thread)."""
    token = node_context.enter(ctx)
    try:
        return await work
    finally:
        node_context.leave(token)


def _value(call: Task) -> Any:
    """A finished call's value, or what it raises."""
    if call.outcome == "done":
        return call.writes[0][1] if call.writes else None
    if call.outcome == "interrupted":
        raise GraphInterrupt(call.interrupts)
    if call.outcome == "error" and call.error is not None:
        raise call.error
    raise NodeCancelled()


def _resolve(future: CallFuture[Any], call: Task) -> None:
    if future.done():
        return
    try:
        future.set_result(_value(call))
    except BaseException as exc:  # noqa: BLE001 - what the call raised goes to its future
        future.set_exception(exc)


def _needs_loop(call: Task) -> bool:
    """Whether a call must run on the loop (its timeouts are the loop's timers)."""
    return call.node.timeout is not None or call.node.idle_timeout is not None


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


# `CallSpec`, `call_spec`, `call_writes`, `CALL_ASKED` (`call_spec`) and `run_here`
# (`call_attempts`) are re-exported: the callers of calls import them from here.
__all__ = ["CALL_ASKED", "CallFuture", "CallSite", "CallSpec", "Executor", "TaskFuture",
           "call_spec", "call_writes", "current_site", "launch", "run_here"]
