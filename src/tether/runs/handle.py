"""`Run`: the handle a caller holds on a run that has started.

A run starts at once and owns its driver; the handle is an async iterator over its stream
chunks, and the way to cancel it, close it, or await its result. A stream handle that is closed,
or dropped and garbage-collected, cancels its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import anyio

from tether.runs import driver
from tether.runs.admission import ADMISSION
from tether.runs.core import RunCore
from tether.runs.multitask import predecessors
from tether.runs.registry import REGISTRY
from tether.runs.request import RunRequest
from tether.types import CancelReason, RunInfo, RunStatus

_RECORD_ASYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("tether_record_async",
                                                                     default=False)


@contextlib.contextmanager
def records_async() -> Iterator[None]:
    """Runs started in this block make their record in their own task, through the store's
    async API, instead of before `start` returns: a loop that serves many callers (the server)
    is never blocked on the store's write lock. Whoever starts them awaits `Run.recorded()`
    before telling anyone the run exists; until then a cancel by id is kept, as for any run
    whose record is not made yet, and applied first.
    """
    token = _RECORD_ASYNC.set(True)
    try:
        yield
    finally:
        _RECORD_ASYNC.reset(token)


async def _record_then_drive(core: RunCore) -> None:
    # The driver of a run started under `records_async`: its record first, then the usual
    # drive (whose first step applies a cancel kept meanwhile).
    try:
        await core.create_record()
    except Exception:  # noqa: BLE001 - reported to `recorded()` and the run's waiters
        ADMISSION.leave(core)
        return
    except BaseException:
        ADMISSION.leave(core)
        raise
    await driver.drive(core)


def _cancel_dropped(ref: weakref.ref[RunCore]) -> None:
    # Runs in whatever thread collected the handle: hand the cancel to the run's own loop.
    core = ref()
    if core is None:
        return  # nothing kept the run alive: it had ended (or never started)
    loop = core.aloop
    if core.final is not None or loop is None or loop.is_closed():
        return
    reason = CancelReason("user", "stream dropped by its consumer", "gc")
    with contextlib.suppress(RuntimeError):  # the loop may have closed meanwhile
        loop.call_soon_threadsafe(lambda: loop.create_task(core.request_cancel(reason)))


class Run:
    """A run in flight (or ended), as returned by `astream`, `start` and `resume`.

    Attributes:
        run_id: the run's id (`config["run_id"]` when the caller gave one).
        thread_id: the run's thread, if any.
    """

    __slots__ = ("__weakref__", "_core", "_owned", "run_id", "thread_id")

    def __init__(self, request: RunRequest, run_id: str, *, owned: bool) -> None:
        """Start the run now if an event loop is running here (else on first iteration).

        Raises:
            ThreadBusyError: the run's thread has a run in flight and its `multitask_strategy`
                is `reject`.
        """
        thread = request.config.thread_id if request.durable else None
        waits = predecessors(thread, request.config.multitask_strategy)
        self._core = RunCore(request, run_id, waits)
        self.run_id = run_id
        self.thread_id = request.config.thread_id
        self._owned = owned
        if owned:
            # A weak reference: the finalizer registry must not keep the core alive, since the
            # core can reach this handle back (its exception's traceback holds the frames that
            # iterated it), and the handle would then never be collected. A run in flight is
            # kept alive by the registry until it ends.
            weakref.finalize(self, _cancel_dropped, weakref.ref(self._core))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started on first iteration
        self._start(loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        core = self._core
        if _RECORD_ASYNC.get() and not core.request.adopt:
            core.admitted = ADMISSION.admit(core)
            try:
                core.start(loop, _record_then_drive, record=False)
            except BaseException:
                ADMISSION.leave(core)
                raise
        else:
            driver.launch(core, loop)
        REGISTRY.add(core)

    async def recorded(self) -> None:
        """Return once the run's record exists in its store (at once, unless the run was
        started under `records_async`).

        Raises:
            What the store raised making the record (the run has then ended with it).

        Cancellation:
            Only the waiting stops: the record is made, and the run goes on, all the same.
        """
        await self._core.recorded()

    def _ensure_started(self) -> None:
        if not self._core.started:
            self._start(asyncio.get_running_loop())

    @property
    def core(self) -> RunCore:
        """The run's machinery (for the runs layer and the faces)."""
        return self._core

    @property
    def status(self) -> RunStatus:
        """The run's current status."""
        return self._core.info.status

    @property
    def info(self) -> RunInfo:
        """The run's current record (an attribute, as `status` is; `run.info()` works too)."""
        return self._core.final or self._core.info

    async def cancel(self, reason: CancelReason | str | None = None, *,
                     wait: bool = True) -> RunInfo:
        """Cancel the run: recorded durably first, then propagated; idempotent.

        Args:
            reason: why (a message, kind `user`; or a `CancelReason`).
            wait: return only once the run has ended (its final checkpoint written).

        Cancellation:
            If the caller is cancelled while waiting, the run's cancel still completes.
            Safe to retry: a repeat returns the first request's receipt.
        """
        core = self._core
        if core.task is None:  # `_ensure_started`, inline: every cancel comes through here
            self._start(asyncio.get_running_loop())
        info = await core.ask_cancel(CancelReason.coerce(reason, default_by="handle"),
                                     until_end=wait)
        if wait and not info.terminal:
            return await core.wait()
        return info

    async def aclose(self) -> None:
        """Stop consuming: cancel the run if it is still going, and wait for its end.

        Cancellation:
            As `cancel`; never raises the run's outcome.
        """
        if not self._core.started:
            self._ensure_started()
        if self._core.final is None:
            await self.cancel(CancelReason("user", "stream closed by its consumer", "aclose"))

    async def result(self) -> Any:
        """Wait for the run's end; return its final output or raise what ended it.

        Raises:
            RunCancelled: the run was cancelled (`RunTimeout` for a deadline).
            Exception: the exception of the node that failed.

        Cancellation:
            If the caller is cancelled while waiting for a run it owns (from `astream`,
            `ainvoke`), the run is cancelled too and its cancel path finished (shielded,
            bounded by the graces) before the cancellation propagates; a run from `start`
            goes on.
        """
        self._ensure_started()
        try:
            await self._core.wait()
        except asyncio.CancelledError:
            if self._owned and self._core.final is None:
                # The caller gave up on an owned run: nobody else can see it, so stop it, and
                # let its cancel path finish (bounded by the graces) before giving up too.
                reason = CancelReason("user", "the caller was cancelled", "caller")
                with anyio.CancelScope(shield=True):
                    await self._core.request_cancel(reason)
                    await self._core.wait()
            raise
        if self._core.exception is not None:
            raise self._core.exception
        return self._core.result

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        self._ensure_started()
        ok, chunk = await self._core.buffer.get()
        if ok:
            return chunk
        if self._core.exception is not None:
            raise self._core.exception
        raise StopAsyncIteration

    def __repr__(self) -> str:
        return f"<Run {self.run_id} {self.status.value}>"


__all__ = ["Run", "records_async"]
