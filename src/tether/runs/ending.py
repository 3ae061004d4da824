"""A run's end as its callers see it: the final record, the result or the exception, and
everyone waiting for them (`RunEnd`, the base of `RunCore`).

The end is published once (`settle`), from the run's loop; it is read and waited for from any
thread. Only this module writes `final`, `result`, the exception and the waiters.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Self, cast

from tether.runs.buffer import ChunkBuffer
from tether.runs.finalize import CancelVerdict
from tether.types import RunInfo

RUN_LOCK = threading.Lock()
"""One lock for every run's few cross-thread fields (`final`, the exception, the blocking
waiter; and `RunCore`'s request instant and record flag): the sections it guards are a handful
of assignments, and a lock per run is memory per run."""


class RunEnd:
    """The published end of one run, and its waiters.

    Attributes:
        final: the run's final record, once it has ended (None until then).
        result: what the run returned (None for a run that ended otherwise).
        info: the run's latest record (the final one, once ended).
        buffer: the run's stream, closed at the end.
    """

    # Slots: a thousand runs in flight are a thousand of these (`RunCore` adds its own).
    __slots__ = ("_done_event", "_exception", "_on_final", "_waiters", "buffer", "final", "info",
                 "result")

    def __init__(self, info: RunInfo, buffer: ChunkBuffer) -> None:
        self.info = info
        self.buffer = buffer
        self.final: RunInfo | None = None
        self.result: Any = None
        self._exception: BaseException | CancelVerdict | None = None
        # Waiters, made only when someone waits: most runs are awaited once, on their loop.
        self._done_event: threading.Event | None = None
        self._waiters: list[asyncio.Future[Any]] | None = None
        self._on_final: list[Callable[[Self], None]] = []

    def settle(self, info: RunInfo, result: Any,
               exception: BaseException | CancelVerdict | None) -> None:
        """Publish the run's end: wake waiters, close the stream, call `when_done` callbacks.
        `exception` is what the caller is given instead of `result` (a verdict: made later)."""
        with RUN_LOCK:
            self.final = self.info = info
            self.result = result
            self._exception = exception
            event = self._done_event
        self.buffer.close()
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(info)
        if event is not None:
            event.set()
        me = cast("Self", self)  # the run: what `when_done` callbacks were promised
        for callback in self._on_final:
            callback(me)

    @property
    def exception(self) -> BaseException | None:
        """What the run's caller is given instead of a result (None: a result, or no end yet).
        A cancelled run's is made on first read (`finalize.CancelVerdict`), the same object
        on every read."""
        error = self._exception
        if not isinstance(error, CancelVerdict):
            return error
        made = error.error()
        with RUN_LOCK:  # two threads reading at once: one exception, the first made
            if self._exception is error:
                self._exception = made
            kept = self._exception
        assert not isinstance(kept, CancelVerdict)
        return kept

    def when_done(self, callback: Callable[[Self], None]) -> None:
        """Call `callback(self)` once the run has ended (on the run's loop)."""
        self._on_final.append(callback)

    def resolve_at_end(self, future: asyncio.Future[RunInfo]) -> None:
        """Give `future` the run's final record once the run has ended (now, if it has);
        on the run's loop."""
        if self.final is not None:
            future.set_result(self.final)
            return
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(future)

    async def wait(self) -> RunInfo:
        """Wait (on the run's own loop) until the run has ended.

        Cancellation:
            Only the waiting stops; the run goes on.
        """
        if self.final is None:
            waiter: asyncio.Future[RunInfo] = asyncio.get_running_loop().create_future()
            self.resolve_at_end(waiter)
            await waiter
        assert self.final is not None
        return self.final

    def wait_blocking(self, timeout: float | None) -> bool:
        """Block (another thread than the run's loop) until the run has ended; False on
        timeout."""
        with RUN_LOCK:
            if self.final is not None:
                return True
            if self._done_event is None:
                self._done_event = threading.Event()
            event = self._done_event
        return event.wait(timeout)


__all__ = ["RUN_LOCK", "RunEnd"]
