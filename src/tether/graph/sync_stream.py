"""`stream()` for sync code: a generator pumping the run's loop one batch of chunks at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from tether.runs import portal
from tether.runs.handle import Run
from tether.types import CancelReason


async def _batch(run: Run) -> tuple[list[Any], bool]:
    buffer = run.core.buffer
    ok, chunk = await buffer.get()
    if not ok:
        return [], True
    return [chunk, *buffer.drain()], False


def iterate(start: Callable[[bool], Run]) -> Iterator[Any]:
    """Start a run with `start` and yield its chunks as they come.

    Args:
        start: makes the run; told whether it runs on this thread's private loop (a lone sync
            node may then run inline).

    Leaving the loop early (break, an exception, garbage collection) cancels the run and waits
    for its final checkpoint.
    """
    private = not portal.loop_running()

    async def begin() -> Run:
        return start(private)

    call: Callable[[Coroutine[Any, Any, Any]], Any]
    if private:
        call = portal.run_private
    else:
        loop = portal.background_loop()

        def call(coro: Coroutine[Any, Any, Any]) -> Any:
            return asyncio.run_coroutine_threadsafe(coro, loop).result()

    run: Run = call(begin())
    finished = False
    try:
        while True:
            chunks, closed = call(_batch(run))
            yield from chunks
            if closed:
                finished = True
                break
    finally:
        if not finished:
            try:
                call(run.aclose())
            except RuntimeError:
                # Closed from inside a running loop (garbage collection): cancel by request.
                run.core.request_cancel_sync(CancelReason("user", "stream closed", "gc"))
    error = run.core.exception
    if error is not None:
        raise error
