"""How sync code reaches the async runtime: one implementation, two doors.

- From a thread with no running event loop (the usual `graph.invoke`), the coroutine runs on a
  private loop kept per thread, in that thread: no thread hop, and the run has the loop to itself,
  so a lone sync node may run inline.
- From a thread that is already running a loop, or for runs meant to outlive the call
  (`invoke_async`, `start` from sync code), the coroutine goes to one background loop thread.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tether.checkpoint import loops

T = TypeVar("T")


class _PrivateLoop:
    """A per-thread `asyncio.Runner`, closed when its thread's locals are dropped."""

    __slots__ = ("runner",)

    def __init__(self) -> None:
        self.runner = asyncio.Runner()

    def __del__(self) -> None:
        if sys.is_finalizing():
            # The interpreter is exiting (the locals of threads still alive are dropped now):
            # closing would start a thread to shut the loop's executor down, and no thread
            # starts any more — the process would hang on its way out.
            return
        with contextlib.suppress(Exception):  # best effort during thread teardown
            self.runner.close()


_local = threading.local()


def private_runner() -> asyncio.Runner:
    """The calling thread's private loop runner (created on first use)."""
    return _private()


def _private() -> asyncio.Runner:
    holder: _PrivateLoop | None = getattr(_local, "holder", None)
    if holder is None:
        holder = _PrivateLoop()
        _local.holder = holder
        # Only this thread's sync call runs on the loop: a store may block it (no hop to a
        # writer thread per checkpoint).
        loops.dedicate(holder.runner.get_loop())
        if threading.current_thread() is threading.main_thread():
            atexit.register(holder.runner.close)
    return holder.runner


def loop_running() -> bool:
    """True when the calling thread is running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(factory: Callable[[bool], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code and return its result.

    Args:
        factory: builds the coroutine; receives True when it will run on a private loop (so a
            run may execute lone sync nodes inline).
    """
    if not loop_running():
        return run_private(factory(True))
    future = asyncio.run_coroutine_threadsafe(factory(False), background_loop())
    return future.result()


def run_private(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on the calling thread's private loop (no loop may be running
    in this thread).

    In the main thread, SIGINT and SIGTERM are guarded meanwhile (`SignalGuard`): the first
    cancels every live run with its final checkpoint, then the call raises. The guard also
    keeps `asyncio.Runner` from installing its own SIGINT handler, which formats the `repr()`
    of the coroutine's result on the way out (a streamed batch of chat messages: most of a
    batch's cost).
    """
    from tether.runs.shutdown import SignalGuard

    runner = _private()
    with SignalGuard(runner.get_loop()) as guard:
        try:
            result = runner.run(coro)
        except BaseException as exc:
            guard.raise_if_signalled(exc)
            raise
        guard.raise_if_signalled()
        return result


class _Background:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name="tether-background", daemon=True)
                thread.start()
                ready.wait()
                self.loop, self.thread = loop, thread
            return self.loop


_background = _Background()


def background_loop() -> asyncio.AbstractEventLoop:
    """The loop of the background thread (started on first use)."""
    return _background.get()


def submit(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T] | Any:
    """Schedule a coroutine on the background loop; returns a `concurrent.futures.Future`."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


__all__ = ["background_loop", "loop_running", "private_runner", "run_private", "run_sync", "submit"]
