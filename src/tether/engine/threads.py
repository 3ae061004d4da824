"""tether's own threads for sync nodes, separate from the event loop's default executor.

A worker stuck in a node that ignores its cancel is *abandoned* after the node's grace: its job
is marked so that whatever it returns is thrown away, and a new worker takes its place so that
other runs never wait for it. The stuck thread exits when (if ever) its node returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

import anyio

from tether.cancel.scope import CancelScope

_STOP = object()


class _Job:
    __slots__ = ("abandoned", "context", "finished_at", "fn", "future", "loop")

    def __init__(self, fn: Callable[[], Any], context: contextvars.Context,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.fn = fn
        self.context = context
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        # Set by the loop thread when the job's worker is given up on.
        self.abandoned = False
        # Monotonic time at which the node returned or raised, measured in the worker.
        self.finished_at: float | None = None

    def _settle(self, ok: bool, value: Any) -> None:
        if self.future.done():
            return
        if ok:
            self.future.set_result(value)
        else:
            self.future.set_exception(value)


class WorkerPool:
    """A pool of daemon threads running sync nodes, one job at a time each.

    Args:
        max_workers: live (non-abandoned) workers at most; jobs beyond wait in a queue.
    """

    def __init__(self, max_workers: int = 64) -> None:
        self.max_workers = max_workers
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._live = 0
        self.abandoned = 0
        self._closed = False

    def _spawn_if_needed(self) -> None:
        with self._lock:
            if self._idle > 0 or self._live >= self.max_workers:
                self._idle -= 1 if self._idle > 0 else 0
                return
            self._live += 1
        thread = threading.Thread(target=self._work, name="tether-worker", daemon=True)
        thread.start()

    def _work(self) -> None:
        queue = self._queue
        while True:
            job = queue.get()
            if job is _STOP:
                with self._lock:
                    self._live -= 1
                return
            if not job.abandoned:
                try:
                    value, ok = job.context.run(job.fn), True
                except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting task
                    value, ok = exc, False
                job.finished_at = time.monotonic()
                if job.abandoned:
                    # A replacement already took this worker's place: leave the pool.
                    return
                loop = job.loop
                if not loop.is_closed():
                    # The loop may close between the check and the call.
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(job._settle, ok, value)
            with self._lock:
                self._idle += 1

    async def run(self, fn: Callable[[], Any], *, scope: CancelScope | None, grace: float,
                  on_stop: Callable[[str, float | None], None] | None = None) -> Any:
        """Run `fn` (with the caller's context variables) on a worker thread.

        Cancellation:
            When the awaiting task is cancelled, the node's scope is already cancelled, so a
            cooperative node sees `cancelled()` at once. The caller then waits, shielded, up to
            `grace` seconds for the thread to return (`on_stop("cooperative", finished_at)`);
            past that the worker is abandoned (`on_stop("abandoned", None)`) and replaced. In
            both cases `CancelledError` is re-raised and the node's result is discarded.
        """
        del scope  # the caller's bound scope delivers the cancel; kept for symmetry
        loop = asyncio.get_running_loop()
        job = _Job(fn, contextvars.copy_context(), loop)
        self._spawn_if_needed()
        self._queue.put(job)
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await asyncio.wait({job.future}, timeout=grace)
            if job.future.done():
                if on_stop is not None:
                    on_stop("cooperative", job.finished_at)
                if not job.future.cancelled():
                    job.future.exception()  # retrieved: the result is discarded on purpose
            else:
                job.abandoned = True
                self.abandoned += 1
                with self._lock:
                    self._live -= 1
                if on_stop is not None:
                    on_stop("abandoned", None)
            raise

    def close(self) -> None:
        """Ask idle workers to exit (stuck ones exit when their node returns)."""
        self._closed = True
        with self._lock:
            live = self._live
        for _ in range(live):
            self._queue.put(_STOP)


_default_pool: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """The process-wide pool shared by all runs."""
    global _default_pool  # noqa: PLW0603 - one pool per process, created on first use
    with _default_lock:
        if _default_pool is None:
            _default_pool = WorkerPool()
        return _default_pool
