"""`WriteQueue`: the appends of every run of one process, written together.

A publisher has one write in flight per run; a process streaming a hundred runs had a hundred,
each its own round trip (and, on Postgres, its own commit: a commit that notifies takes a lock
that every notifying commit of the database waits for). The queue has a few writes in flight
for the whole process (`concurrency`): a write takes every batch queued when it starts, so the
batches of every run queued in one turn go out in one round trip, and once every write is in
flight the batches that arrive go together in the next. A lone batch goes out at once (nothing
waits for company), and one slow write does not hold up the rest.
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


IN_FLIGHT = 4
"""Writes a queue has in flight at most, by default: enough that one slow write (a commit
waiting for the database's notify lock while runs start) does not hold up every run; few
enough that a burst is written in a few round trips."""

WriteMany = Callable[[Sequence[Batch]], Awaitable[list[set[int] | Exception]]]
"""Writes batches in one round trip, in order; for each (same order) the offsets refused, or
the error that failed that batch alone. Raising fails every batch."""


class WriteQueue:
    """Writes the batches given to `append` with `write`, at most `concurrency` writes at a
    time, each taking every batch queued when it starts.

    A run's batches never overtake each other: its publisher has one in flight at a time.

    Args:
        write: the transport's write of several batches (one round trip).
        limit: events one write takes at most (one batch more than that is never split).
        concurrency: writes in flight at most.
    """

    def __init__(self, write: WriteMany, *, limit: int, concurrency: int = IN_FLIGHT) -> None:
        self._write = write
        self.limit = limit
        self.concurrency = concurrency
        # Invariant: while _queued has entries, a task of _writers runs and takes them, in
        # order; there are at most `concurrency` writers.
        self._queued: list[tuple[Batch, asyncio.Future[set[int]]]] = []
        self._writers: set[asyncio.Task[None]] = set()
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
        if len(self._writers) < self.concurrency:
            writer = loop.create_task(self._write_queued(), name="tether-bus-writer")
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await refused

    async def aclose(self) -> None:
        """Wait until what is queued was written.

        Cancellation:
            Cancels the writes in flight; the batches still queued fail with `CancelledError`.
        """
        while self._writers:
            writers = set(self._writers)
            try:
                await asyncio.shield(asyncio.wait(writers))
            except asyncio.CancelledError:
                for writer in writers:
                    writer.cancel()
                await asyncio.wait(writers)
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


__all__ = ["IN_FLIGHT", "Batch", "WriteMany", "WriteQueue"]
