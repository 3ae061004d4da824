"""Calls: the units of work a running task launches from its own code (a `@task` of the
Functional API, a tool call of a `ToolNode`), each run as a task of its own.

A call has a deterministic id: its parent's path plus the number of calls the parent attempt
made before it, so a parent that runs again (a retry, a resume after a pause or a cancel)
makes the same calls in the same order and finds the results its earlier attempt kept. A call
runs with its own cancel scope (a child of its parent attempt's), retry policy and timeout; its
result is stored at once as a pending write `(call id, "__return__", value)` and kept on its
parent, so the final checkpoint of a stopped run holds every finished call, and only the
unfinished ones run again.

Where a call runs: an async parent starts it at once as an asyncio task. A sync parent (on a
worker thread, or inline on the loop's thread) queues it for the loop and, when it asks for the
result first, runs it itself in its own thread (a call with a timeout always runs on the loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from tether import node_context
from tether.cancel.scope import CancelScope
from tether.checkpoint.base import WriteRecord
from tether.constants import INTERRUPT, RESUME, RETURN
from tether.engine.spec import NodeSpec
from tether.engine.task import PUSH, Task
from tether.errors import GraphInterrupt, NodeCancelled
from tether.types import RetryPolicy

if TYPE_CHECKING:
    from tether.engine.execute import Executor

T = TypeVar("T")

CALL_ASKED = -6
"""The `idx` of a call's own interrupt record: who asked, so that an answer reaches it (the
parent task's record, idx -1, lists the same interrupts for display)."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """What a call runs.

    Attributes:
        node: the call as a node: its name, the function (taking `(args, kwargs)`), whether it
            is async, the engine objects it takes, its retry policies and timeouts.
        cache: its `CachePolicy`, or None.
        cache_ns: the namespace its cached results are filed under (the function's path).
    """

    node: NodeSpec
    cache: Any = None
    cache_ns: str = "__dynamic__"

    @property
    def name(self) -> str:
        """The call's name (in streams and ids)."""
        return self.node.name


def call_spec(name: str, func: Callable[..., Any], *, is_async: bool,
              kwargs: frozenset[str] = frozenset(), retry: Sequence[RetryPolicy] = (),
              timeout: float | None = None, idle_timeout: float | None = None,
              cache: Any = None, cache_ns: str = "__dynamic__") -> CallSpec:
    """Describe a function to be launched as calls.

    Args:
        kwargs: the engine objects (`config`, `runtime`, `writer`, `store`) it takes by keyword.
    """
    def run(given: tuple[tuple[Any, ...], dict[str, Any]], **engine: Any) -> Any:
        args, keywords = given
        return func(*args, **keywords, **engine)

    async def arun(given: tuple[tuple[Any, ...], dict[str, Any]], **engine: Any) -> Any:
        args, keywords = given
        return await func(*args, **keywords, **engine)

    node = NodeSpec(name=name, func=arun if is_async else run, is_async=is_async,
                    kwargs=kwargs, retry=tuple(retry), timeout=timeout,
                    idle_timeout=idle_timeout, isolation="thread")
    return CallSpec(node, cache, cache_ns)


class CallFuture(concurrent.futures.Future[T], Generic[T]):
    """The result of a call: `.result()` from sync code, `await` from async code.

    A sync caller asking for a result not yet started runs the call itself; one waiting for a
    call running elsewhere wakes when its own node is cancelled (raising `NodeCancelled`).
    """

    __slots__ = ("_call", "_site")

    def __init__(self, site: CallSite, call: Task) -> None:
        super().__init__()
        self._site = site
        self._call = call

    def result(self, timeout: float | None = None) -> T:
        """The call's value (or its exception, raised).

        Raises:
            RuntimeError: asked on the event loop's thread for a call still running there
                (await it instead).
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


class CallSite:
    """The calls of one attempt of one task (or of one call): launching, running, settling.

    Invariant: every call launched is in `parent.calls`, in launch order; one launched and not
    yet started is in `_waiting` until exactly one party claims it (the loop, or the sync caller
    asking for its result).
    """

    __slots__ = ("_aside", "_futures", "_lock", "_running", "_waiting", "count", "executor",
                 "loop", "parent", "sync")

    def __init__(self, executor: Executor, parent: Task, loop: asyncio.AbstractEventLoop) -> None:
        self.executor = executor
        self.parent = parent
        self.loop = loop
        self.sync = not parent.node.is_async
        self.count = 0
        self._lock = threading.Lock()
        self._waiting: set[int] = set()
        self._futures: dict[int, CallFuture[Any]] = {}
        self._running: set[asyncio.Future[Any]] = set()
        self._aside: list[Task] = []
        parent.calls = []

    # -- launching ------------------------------------------------------------------------

    def launch(self, spec: CallSpec, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> CallFuture[Any]:
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
        future: CallFuture[Any] = CallFuture(self, call)
        assert parent.calls is not None
        parent.calls.append(call)
        if self.executor.recall(call):
            _resolve(future, call)
            return future
        with self._lock:
            self._futures[id(call)] = future
        if not self.sync and _on_loop(self.loop):
            self._start(call)
        else:
            with self._lock:
                self._waiting.add(id(call))
            self.loop.call_soon_threadsafe(self._start_waiting, call)
        return future

    def _claim(self, call: Task) -> bool:
        with self._lock:
            if id(call) in self._waiting:
                self._waiting.discard(id(call))
                return True
            return False

    def _start_waiting(self, call: Task) -> None:
        if self._claim(call):
            self._start(call)

    def _start(self, call: Task) -> None:
        """On the loop: run `call` as an asyncio task."""
        self._announce(call)
        task = self.loop.create_task(self._run(call))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, call: Task) -> None:
        await self.executor.run_task(call, alone=False)
        self._report(call)
        _resolve(self._futures.pop(id(call)), call)

    def _announce(self, call: Task) -> None:
        emitter = self.executor.emitter
        if emitter.tasks:
            emitter.emit_task_start(call, (PUSH,))

    def _report(self, call: Task) -> None:
        emitter = self.executor.emitter
        if emitter.tasks:
            result = {RETURN: call.writes[0][1]} if call.writes else {}
            emitter.emit_task_result(call, result)

    # -- a sync caller helping --------------------------------------------------------------

    def help(self, call: Task) -> None:
        """A sync caller asks for `call`'s result: if nobody started it, run it here."""
        if call.node.timeout is not None or call.node.idle_timeout is not None:
            return
        if not self._claim(call):
            return
        if _on_loop(self.loop):
            self._announce(call)
        else:
            self.loop.call_soon_threadsafe(self._announce, call)
        run_here(self.executor, call)
        with self._lock:
            self._aside.append(call)
        self.loop.call_soon_threadsafe(self.drain)
        _resolve(self._futures.pop(id(call)), call)

    def wait(self, future: CallFuture[Any], timeout: float | None) -> None:
        """Block a sync caller until `future` is done or the caller's node is cancelled.

        Raises:
            RuntimeError: on the event loop's thread, which the call needs to make progress.
            NodeCancelled: the caller's node was cancelled meanwhile.
        """
        if _on_loop(self.loop):
            raise RuntimeError("a task's future cannot be waited for on the event loop's "
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

    # -- settling -------------------------------------------------------------------------

    def drain(self) -> None:
        """On the loop: report the calls a sync caller ran itself (stream, pending writes)."""
        with self._lock:
            ran, self._aside = self._aside, []
        executor = self.executor
        for call in ran:
            self._report(call)
            if call.outcome == "done":
                executor.emit_call(call)
                if executor.host.keeps_writes:
                    task = self.loop.create_task(executor.host.task_done(call))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)

    async def settle(self) -> None:
        """After the parent attempt: start what nobody started, and wait for every call.

        Cancellation:
            When the run is cancelled meanwhile, waits (shielded, bounded by the grace) for the
            calls to stop and returns (the caller reads the cancel from the run's scope); a
            foreign cancellation is re-raised after the same wait.
        """
        while True:
            with self._lock:
                waiting, self._waiting = self._waiting, set()
            for call in self.parent.calls or ():
                if id(call) in waiting:
                    self._start(call)
            self.drain()
            pending = [t for t in self._running if not t.done()]
            if not pending:
                return
            try:
                await asyncio.wait(pending)
            except asyncio.CancelledError:
                with anyio.CancelScope(shield=True):
                    await asyncio.wait(pending, timeout=self.executor.grace + 0.05)
                self.drain()
                if not self.executor.scope.cancel_called:
                    raise
                return

    @property
    def busy(self) -> bool:
        """Whether any call may still need settling."""
        return bool(self._futures or self._aside or self._running)


def run_here(executor: Executor, call: Task) -> None:
    """Run a sync call in the calling thread, with its own scope and retries, to an outcome."""
    parent_scope = call.parent.scope if call.parent is not None else executor.scope
    node = call.node
    attempt = 0
    while True:
        attempt += 1
        scope = CancelScope(parent_scope, name=node.name)
        call.scope = scope
        token = executor.enter(call, scope)
        try:
            value = node.func(call.input, **executor.kwargs(call)) if node.kwargs \
                else node.func(call.input)
            if call.site is not None and call.site.busy:
                _settle_here(call.site)
        except GraphInterrupt as exc:
            call.outcome, call.interrupts = "interrupted", exc.interrupts
            return
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            return
        except Exception as exc:  # noqa: BLE001 - recorded on the call, maybe retried
            policy = _policy(node.retry, exc)
            if policy is None or attempt >= policy.max_attempts or scope.cancelled():
                call.outcome, call.error = "error", exc
                return
            done = threading.Event()
            scope.add_waiter(done)
            done.wait(policy.interval(attempt))
            scope.remove_waiter(done)
            continue
        finally:
            node_context.leave(token)
            scope.close()
        call.finished_at = finished = time.monotonic()
        cancelled_at = executor.scope.cancelled_at
        if cancelled_at is not None and finished >= cancelled_at:
            call.outcome = "cancelled"
        else:
            call.writes, call.outcome = [(RETURN, value)], "done"
        return


def _settle_here(site: CallSite) -> None:
    """Sync settling of a call's own calls, in the thread that ran it."""
    for call in list(site.parent.calls or ()):
        future = site._futures.get(id(call))
        if future is not None:
            with contextlib.suppress(BaseException):  # the call's fate is on the call
                future.result()


def launch(spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallFuture[Any]:
    """Launch a call from the running node's code; its future.

    Raises:
        RuntimeError: outside a running node (a task is called only while a graph runs).
    """
    ctx = node_context.current()
    site = ctx.calls if ctx is not None else None
    if site is None:
        raise RuntimeError("a task can only be called while a graph runs: from an "
                           "entrypoint, from another task, or from a node")
    result: CallFuture[Any] = site.launch(spec, args, kwargs)
    return result


def call_writes(task: Task) -> list[WriteRecord]:
    """What the calls of an unfinished task leave for a resume: the results of the finished
    ones and the questions the paused ones asked (recursively)."""
    out: list[WriteRecord] = []
    for call in task.calls or ():
        if call.outcome == "done" and not call.cached and call.writes:
            out.append(WriteRecord(call.id, call.name, 0, RETURN, call.writes[0][1]))
        elif call.outcome == "interrupted":
            out.append(WriteRecord(call.id, call.name, CALL_ASKED, INTERRUPT,
                                   list(call.interrupts)))
            start = len(call.resume) - len(call.claimed)
            out.extend(WriteRecord(call.id, call.name, -10 - (start + i), RESUME, answer)
                       for i, answer in enumerate(call.claimed))
        out.extend(call_writes(call))
    return out


def _resolve(future: CallFuture[Any], call: Task) -> None:
    if future.done():
        return
    if call.outcome == "done":
        future.set_result(call.writes[0][1] if call.writes else None)
    elif call.outcome == "interrupted":
        future.set_exception(GraphInterrupt(call.interrupts))
    elif call.outcome == "error" and call.error is not None:
        future.set_exception(call.error)
    else:
        future.set_exception(NodeCancelled())


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _policy(policies: tuple[RetryPolicy, ...], exc: Exception) -> RetryPolicy | None:
    return next((p for p in policies if p.should_retry(exc)), None)


__all__ = ["CALL_ASKED", "CallFuture", "CallSite", "CallSpec", "call_spec", "call_writes",
           "launch", "run_here"]
