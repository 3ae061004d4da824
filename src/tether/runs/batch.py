"""Cancel requests made together, recorded together: the requests for runs of one store made
on one loop in the same loop iteration (a crowd of `run.cancel()` gathered, a bulk cancel) go
to the store as one batch (`arequest_cancels`: one transaction where the backend can).

A batch is flushed by a task of its own, which also hands each durable request to its run
(`RunCore.receive_cancel`): a caller that stops waiting (it was cancelled) leaves its request
recorded and propagated all the same. A run of the flushing loop is stopped as its request is
handed to the store (`RunCore.anticipate_cancel`), so that its stop overlaps the store's write;
its last transaction waits for the store's answer (one future for the whole batch, done once every
answer is handed out), and so comes after the request.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from tether.checkpoint.base import CheckpointStore
from tether.types import CancelReason, RunInfo


class Cancellable(Protocol):
    """What a batch needs of a run (a `RunCore`; this module does not import it, so that the
    core can import the batch)."""

    @property
    def run_id(self) -> str:
        """The run's id."""

    @property
    def store(self) -> CheckpointStore:
        """Where the run is recorded."""

    def anticipate_cancel(self, reason: CancelReason, loop: asyncio.AbstractEventLoop,
                          answered: asyncio.Future[None]) -> None:
        """The request is being handed to the store: stop the run now if it lives on `loop`;
        `answered` is done once the store has answered the batch."""

    def receive_cancel(self, info: RunInfo, first: bool) -> RunInfo:
        """A durable cancel reached the run; returns the receipt."""

    def cancel_unrecorded(self) -> None:
        """The store failed to record the request `anticipate_cancel` acted on."""

    def resolve_at_end(self, future: asyncio.Future[RunInfo]) -> None:
        """Give `future` the run's final record once the run has ended."""


class CancelBatch:
    """The cancel requests of one loop iteration for runs of one store.

    Only the loop that made it touches it (no lock): it is made, filled and flushed there.
    """

    __slots__ = ("_key", "_requests", "loop", "store")

    def __init__(self, loop: asyncio.AbstractEventLoop, store: CheckpointStore) -> None:
        self.loop = loop
        self.store = store
        self._key = (loop, store)
        self._requests: list[tuple[Cancellable, CancelReason, asyncio.Future[RunInfo],
                                   bool]] = []

    def add(self, core: Cancellable, reason: CancelReason,
            until_end: bool = False) -> asyncio.Future[RunInfo]:
        """Queue a request; the future gets the run's receipt once it is durable or, with
        `until_end`, the run's final record once the run has ended (one future, one wake-up
        of the caller, for a cancel that waits)."""
        future: asyncio.Future[RunInfo] = self.loop.create_future()
        self._requests.append((core, reason, future, until_end))
        return future

    async def flush(self) -> None:
        """Record every queued request in one call to the store, then hand each to its run.

        Cancellation:
            Shielded by its caller (a task of its own, which nothing cancels but the loop's
            end); the store call is one transaction where the backend can.
        """
        _OPEN.pop(self._key, None)  # later requests make a new batch
        # One future for the batch, not one per run: each run stopped ahead of its answer
        # waits on it before its last transaction (unless its answer came some other way).
        answered: asyncio.Future[None] = self.loop.create_future()
        try:
            await self._record(answered)
        finally:
            answered.set_result(None)

    async def _record(self, answered: asyncio.Future[None]) -> None:
        """`flush` but for `answered`: stop the runs, record the requests, hand out answers."""
        requests = self._requests
        for core, reason, _, _ in requests:
            core.anticipate_cancel(reason, self.loop, answered)
        try:
            answers = await self.store.arequest_cancels(
                [(core.run_id, reason) for core, reason, _, _ in requests])
        except BaseException as exc:  # the whole batch failed: every caller sees why
            for core, _reason, future, _ in requests:
                core.cancel_unrecorded()
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (core, _reason, future, until_end), answer in zip(requests, answers, strict=True):
            if isinstance(answer, Exception):
                core.cancel_unrecorded()
                if not future.done():
                    future.set_exception(answer)
                continue
            receipt = core.receive_cancel(*answer)
            if future.done():
                continue
            if until_end and not receipt.terminal:
                core.resolve_at_end(future)
            else:
                future.set_result(receipt)


_OPEN: dict[tuple[asyncio.AbstractEventLoop, CheckpointStore], CancelBatch] = {}
"""The batch still taking requests, per (loop, store); a batch leaves as its flush begins."""

_FLUSHING: set[asyncio.Task[None]] = set()
"""Flush tasks in progress (the loop keeps only weak references to tasks)."""


def request(core: Cancellable, reason: CancelReason, until_end: bool = False,
            loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[RunInfo]:
    """Queue `core`'s cancel request into the open batch of the running loop (opening one,
    flushed once the requests made meanwhile have joined it); the future gets the receipt
    (with `until_end`, the final record once the run has ended: `CancelBatch.add`).

    Args:
        loop: the running loop, when the caller has it at hand.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    key = (loop, core.store)
    batch = _OPEN.get(key)
    if batch is None:
        batch = _OPEN[key] = CancelBatch(loop, core.store)
        # A task, started at the loop's next turn: the requests made in this one join first.
        task = loop.create_task(batch.flush(), name="tether-cancel-batch")
        _FLUSHING.add(task)
        task.add_done_callback(_FLUSHING.discard)
    return batch.add(core, reason, until_end)


__all__ = ["CancelBatch", "request"]
