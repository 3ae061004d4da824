"""Stopping a whole process: every live run cancelled with kind `shutdown`, its final
checkpoint written, then exit. A second signal forces.

A *drain* waits for runs at their cancel points (not for them to finish their work): each run
goes through the ordinary cancel path, so its last completed step is kept and it can be resumed
by the next process.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from tether.runs.registry import REGISTRY
from tether.types import CancelReason, RunInfo

_signals_seen = [0]


def shutdown_reason(what: str) -> CancelReason:
    """The reason recorded on runs stopped by a process shutdown."""
    return CancelReason("shutdown", f"process shutting down ({what})", f"pid:{os.getpid()}")


def cancel_all(reason: CancelReason) -> list[RunInfo]:
    """Request a cancel of every run alive in this process; returns the receipts."""
    receipts = []
    for core in REGISTRY.all_live():
        receipts.append(core.request_cancel_sync(reason))
    return receipts


def drain(timeout: float | None = 10.0, reason: CancelReason | None = None) -> list[RunInfo]:
    """Cancel every live run and wait (from a thread that is not running their loops) until
    each has written its final checkpoint, or `timeout` passes. Returns the final records.

    Runs whose event loop is no longer running cannot make progress and are not waited for.
    """
    cores = [c for c in REGISTRY.all_live()
             if c.aloop is not None and c.aloop.is_running() and not c.aloop.is_closed()]
    reason = reason or shutdown_reason("drain")
    for core in cores:
        core.request_cancel_sync(reason)
    deadline = None if timeout is None else time.monotonic() + timeout
    finals = []
    for core in cores:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        core.wait_blocking(left)
        finals.append(core.final or core.info)
    return finals


async def adrain(timeout: float | None = 10.0,  # noqa: ASYNC109 - mirrors drain()
                 reason: CancelReason | None = None) -> list[RunInfo]:
    """`drain` from async code: waits without blocking the event loop.

    Cancellation:
        Only the waiting stops: the cancels are already requested.
    """
    return await asyncio.to_thread(drain, timeout, reason)


def install_signal_handlers(loop: asyncio.AbstractEventLoop,
                            on_first: Callable[[], Any] | None = None) -> None:
    """Make SIGINT and SIGTERM stop the process gracefully: the first signal cancels every live
    run (kind `shutdown`) and calls `on_first`; a second one exits at once (status 130)."""

    def handle(signum: int) -> None:
        _signals_seen[0] += 1
        if _signals_seen[0] > 1:
            os._exit(128 + signum)
        threading.Thread(target=cancel_all, args=(shutdown_reason(signal.Signals(signum).name),),
                         name="tether-shutdown", daemon=True).start()
        if on_first is not None:
            on_first()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, handle, signum)


class SignalGuard:
    """While a sync call runs tether's loop in the main thread: the first SIGINT or SIGTERM
    cancels every live run (kind `shutdown`, final checkpoints written) and then the call
    raises `KeyboardInterrupt` (SIGINT) or `SystemExit(143)` (SIGTERM); a second signal raises
    at once, without waiting."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous: dict[int, Any] = {}
        self.received: int | None = None

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if current in (signal.SIG_DFL, signal.default_int_handler):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        reason = shutdown_reason(signal.Signals(signum).name)
        # Not here: a signal handler may interrupt code holding the store's or the cancel
        # tree's lock, and the loop may be busy with an inline sync node. A thread can wait.
        threading.Thread(target=cancel_all, args=(reason,), name="tether-shutdown",
                         daemon=True).start()

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def raise_if_signalled(self, cause: BaseException | None = None) -> None:
        """After the call: turn a signal that stopped it into the exception a process expects."""
        if self.received is None:
            return
        if self.received == signal.SIGTERM:
            raise SystemExit(128 + signal.SIGTERM) from cause
        raise KeyboardInterrupt from cause


def _at_exit() -> None:
    # Runs left in the background (invoke_async) when the interpreter exits: stop them through
    # the cancel path so that their final checkpoints are written.
    if REGISTRY.all_live():
        drain(timeout=5.0, reason=shutdown_reason("interpreter exit"))


atexit.register(_at_exit)
