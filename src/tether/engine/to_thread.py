"""tether's own threads for sync nodes, separate from the event loop's default executor
(anyio's name: work handed *to a thread*).

A thread stuck in a node that ignores its cancel is *abandoned* after the node's grace: its job
is marked so that whatever it returns is thrown away, and a new thread takes its place so that
other runs never wait for it. The stuck thread exits when (if ever) its node returns.

The pool grows with the sync nodes running at once (up to `max_threads`) and shrinks back: a
thread beyond the first `keep_threads` that has had nothing to do for `idle_seconds` exits, so
a long-lived process that once ran many sync nodes together does not keep their threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
import weakref
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

from tether.cancel.scope import CancelScope, anyio_scope
from tether.engine.task import StopMode

_STOP = object()


class _Sink:
    """Where threads hand finished jobs back to one event loop.

    Wake-ups are coalesced: however many jobs finish while the loop is busy, it is woken once
    and settles them all, which matters for wide fan-outs of sync nodes.
    """

    __slots__ = ("_lock", "_pending", "_ready", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[Job, bool, Any]] = []
        self._pending = False

    def push(self, job: Job, ok: bool, value: Any) -> None:
        """From a pool thread: a job finished."""
        with self._lock:
            self._ready.append((job, ok, value))
            wake = not self._pending
            self._pending = True
        if wake and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may close meanwhile
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
            self._pending = False
        for job, ok, value in ready:
            job.settle(ok, value)


class Job:
    """A call handed to a pool thread: its future resolves on the loop that submitted it."""

    __slots__ = ("abandoned", "context", "finished_at", "fn", "future", "sink", "waiters")

    def __init__(self, fn: Callable[[], Any], context: contextvars.Context, sink: _Sink) -> None:
        self.fn = fn
        self.context = context
        self.sink = sink
        self.future: asyncio.Future[Any] = sink.loop.create_future()
        # Set by the loop thread when the job's thread is given up on.
        self.abandoned = False
        # Monotonic time at which the node returned or raised, measured in its thread.
        self.finished_at: float | None = None
        self.waiters: list[asyncio.Future[None]] = []

    def settle(self, ok: bool, value: Any) -> None:
        """On the loop: deliver the outcome (to the awaiting task, and to the ladder)."""
        future = self.future
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()


class ThreadPool:
    """A pool of daemon threads running sync nodes, one job at a time each.

    Args:
        max_threads: live (non-abandoned) threads at most; jobs beyond wait in a queue.
        keep_threads: idle threads kept however long they wait (ready for the next node).
        idle_seconds: how long a thread beyond those waits for a job before it exits.
    """

    def __init__(self, max_threads: int = 64, *, keep_threads: int = 4,
                 idle_seconds: float = 30.0) -> None:
        if max_threads < 1 or keep_threads < 0 or idle_seconds <= 0:
            raise ValueError("ThreadPool needs max_threads >= 1, keep_threads >= 0 and "
                             "idle_seconds > 0")
        self.max_threads = max_threads
        self.keep_threads = keep_threads
        self.idle_seconds = idle_seconds
        self._sinks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sink] = (
            weakref.WeakKeyDictionary())
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._lock = threading.Lock()
        # Under `_lock`. `_idle`: threads waiting for a job, or about to (born, or done with
        # one), none of them holding one. `_queued`: jobs queued that no thread has taken yet
        # (counted before they are put, so never fewer than there are). A thread may retire
        # only while `_idle > _queued`: the idle ones left are enough for every queued job.
        self._idle = 0
        self._queued = 0
        self._live = 0
        self.abandoned = 0
        self._closed = False

    def _sink(self, loop: asyncio.AbstractEventLoop | None = None) -> _Sink:
        loop = loop or asyncio.get_running_loop()
        with self._lock:
            sink = self._sinks.get(loop)
            if sink is None:
                sink = self._sinks[loop] = _Sink(loop)
            return sink

    def _grow(self) -> bool:
        """Under `_lock`: True when a thread must be started for the queued jobs (counted
        live and idle from now)."""
        if self._queued > self._idle and self._live < self.max_threads:
            self._live += 1
            self._idle += 1
            return True
        return False

    def _start_thread(self) -> None:
        threading.Thread(target=self._work, name="tether-thread", daemon=True).start()

    @property
    def threads(self) -> int:
        """Live (non-abandoned) threads, busy or idle."""
        with self._lock:
            return self._live

    def _retire(self) -> bool:
        """After `idle_seconds` with no job: True when this thread may exit (it is one of the
        idle threads beyond `keep_threads`, and the idle ones left suffice for every job
        queued)."""
        with self._lock:
            if self._idle <= self._queued or self._live <= self.keep_threads:
                return False
            self._idle -= 1
            self._live -= 1
            return True

    def _work(self) -> None:
        queue = self._queue
        wait = self.idle_seconds
        while True:
            try:
                job = queue.get(timeout=wait)
            except Empty:
                if self._retire():
                    return
                continue
            with self._lock:
                self._idle -= 1
                if job is _STOP:
                    self._live -= 1
                    return
                self._queued -= 1
            if not job.abandoned:
                try:
                    value, ok = job.context.run(job.fn), True
                except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting task
                    value, ok = exc, False
                job.finished_at = time.monotonic()
                if job.abandoned:
                    # A replacement already took this thread's place: leave the pool.
                    return
                job.sink.push(job, ok, value)
            with self._lock:
                self._idle += 1

    def submit(self, fn: Callable[[], Any],
               loop: asyncio.AbstractEventLoop | None = None) -> Job:
        """Queue `fn` (with the caller's context variables) for a pool thread; `job.future`
        resolves with its result on the calling loop (or `loop`, for a caller on another
        thread)."""
        job = Job(fn, contextvars.copy_context(), self._sink(loop))
        with self._lock:
            self._queued += 1
            grow = self._grow()
        if grow:
            self._start_thread()
        self._queue.put(job)
        return job

    async def stop(self, jobs: list[Job], grace: float) -> list[StopMode]:
        """After a cancel: wait, shielded, up to `grace` for each job's thread to return; give
        up on the rest. Returns how each stopped: `cooperative` or `abandoned`.

        Cancellation:
            Shielded and bounded by `grace`.
        """
        waiters = []
        for job in jobs:
            if job.finished_at is None:
                waiter = job.future.get_loop().create_future()
                job.waiters.append(waiter)
                waiters.append(waiter)
        if waiters:
            with anyio_scope(shield=True):
                await asyncio.wait(waiters, timeout=grace)
        hows: list[StopMode] = []
        for job in jobs:
            if job.finished_at is not None:
                hows.append("cooperative")
                continue
            job.abandoned = True
            self.abandoned += 1
            with self._lock:
                self._live -= 1
                grow = self._grow()  # its place, for jobs that queued behind it
            if grow:
                self._start_thread()
            hows.append("abandoned")
        return hows

    async def run(self, fn: Callable[[], Any], *, scope: CancelScope | None, grace: float,
                  on_stop: Callable[[StopMode, float | None], None] | None = None) -> Any:
        """Run `fn` (with the caller's context variables) on a pool thread.

        Cancellation:
            When the awaiting task is cancelled, the node's scope is already cancelled, so a
            cooperative node sees `cancelled()` at once. The caller then waits, shielded, up to
            `grace` seconds for the thread to return (`on_stop("cooperative", finished_at)`);
            past that the thread is abandoned (`on_stop("abandoned", None)`) and replaced. In
            both cases `CancelledError` is re-raised and the node's result is discarded.
        """
        del scope  # the caller's bound scope delivers the cancel; kept for symmetry
        job = self.submit(fn)
        try:
            return await job.future
        except asyncio.CancelledError:
            (how,) = await self.stop([job], grace)
            if on_stop is not None:
                on_stop(how, job.finished_at)
            raise

    def close(self) -> None:
        """Ask idle threads to exit (stuck ones exit when their node returns)."""
        self._closed = True
        with self._lock:
            live = self._live
        for _ in range(live):
            self._queue.put(_STOP)


_default_pool: ThreadPool | None = None
_default_lock = threading.Lock()


def default_pool() -> ThreadPool:
    """The process-wide pool shared by all runs."""
    global _default_pool  # noqa: PLW0603 - one pool per process, created on first use
    with _default_lock:
        if _default_pool is None:
            _default_pool = ThreadPool()
        return _default_pool
