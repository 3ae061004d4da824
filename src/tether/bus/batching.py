"""`WriteQueue`: the appends of every run of one process, written together.

A publisher has one write in flight per run; a process streaming a hundred runs had a hundred,
each its own round trip (and, on Postgres, its own commit: a commit that notifies takes a lock
that every notifying commit of the database waits for). The queue has one write in flight for
the whole process: the batches of every run that arrive while it runs go together in the next
one, so a burst costs about two round trips however many runs it spans, and a lone batch goes
out at once (nothing ever waits for company).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tether.bus.event import BusEvent


@dataclass(frozen=True, slots=True)
class Batch:
    """One run's events to append (consecutive offsets, ascending)."""

    run_id: str
    events: Sequence[BusEvent]


WriteMany = Callable[[Sequence[Batch]], Awaitable[list[set[int] | Exception]]]
"""Writes batches in one round trip, in order; for each (same order) the offsets refused, or
the error that failed that batch alone. Raising fails every batch."""


class WriteQueue:
    """Writes the batches given to `append` with `write`, one write at a time.

    Args:
        write: the transport's write of several batches (one round trip).
        limit: events one write takes at most (one batch more than that is never split).
    """

    def __init__(self, write: WriteMany, *, limit: int) -> None:
        self._write = write
        self.limit = limit
        # Invariant: while _queued has entries, _writer runs and writes them, in order.
        self._queued: list[tuple[Batch, asyncio.Future[set[int]]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0
        """Writes made so far (each one round trip)."""

    async def append(self, run_id: str, events: Sequence[BusEvent]) -> set[int]:
        """Write `events` of `run_id` with the batches queued beside them; the offsets refused.

        Raises:
            Exception: what the write raised for this batch (or for the whole write).

        Cancellation:
            Only the waiting stops: the batch may still be written (whole or not at all, as
            `Transport.append`).
        """
        loop = asyncio.get_running_loop()
        refused: asyncio.Future[set[int]] = loop.create_future()
        self._queued.append((Batch(run_id, events), refused))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued(), name="tether-bus-writer")
        return await refused

    async def aclose(self) -> None:
        """Wait until what is queued was written.

        Cancellation:
            Cancels the write in flight; the batches still queued fail with `CancelledError`.
        """
        if self._writer is not None:
            try:
                await asyncio.shield(self._writer)
            except asyncio.CancelledError:
                self._writer.cancel()
                await asyncio.wait({self._writer})
                raise

    async def _write_queued(self) -> None:
        while self._queued:
            taken, size = 0, 0
            while taken < len(self._queued) and (not taken or size < self.limit):
                size += len(self._queued[taken][0].events)
                taken += 1
            entries, self._queued = self._queued[:taken], self._queued[taken:]
            self.writes += 1
            try:
                answers = await self._write([batch for batch, _ in entries])
            except Exception as exc:  # noqa: BLE001 - each caller gets it (and retries)
                for _, refused in entries:
                    if not refused.done():
                        refused.set_exception(exc)
                continue
            except BaseException:  # cancelled (the transport is closing): fail what waits
                for _, refused in (*entries, *self._queued):
                    refused.cancel()
                self._queued.clear()
                raise
            for (_, refused), answer in zip(entries, answers, strict=True):
                if refused.done():
                    continue
                if isinstance(answer, Exception):
                    refused.set_exception(answer)
                else:
                    refused.set_result(answer)


__all__ = ["Batch", "WriteMany", "WriteQueue"]
