"""`Publisher`: puts one run's events on the bus, in order, without making its producer wait.

`send` numbers an event and queues it; one background task per publisher writes what is queued
in batches, one transport call (one round trip) per batch, so a run emitting a thousand chunks a
second costs as many round trips as the transport takes to answer, not one per chunk. A batch
that fails is retried (the transport refuses offsets it already has, so a retry never doubles an
event); one that still fails after `RETRY_FOR` seconds is dropped and logged — the bus is the
fast path, and readers pass over the hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from tether.bus.event import END_EVENT, BusEvent
from tether.bus.transport import Transport

logger = logging.getLogger("tether.bus")

BATCH = 500
"""Events per transport call at most."""

RETRY_FIRST, RETRY_MAX, RETRY_FOR = 0.02, 1.0, 10.0
"""Seconds before retrying a failed batch (doubling up to the maximum), and how long in all."""

END_ATTEMPTS = 5
"""Tries `end_run` makes when other publishers keep taking the next offset."""


class Publisher:
    """Publishes the events of one run (made by `StreamBus.publisher`).

    Args:
        transport: the bus's backend.
        run_id: the run.
        last_seq: the run's last offset on the bus (0 for none): events get the next ones.
    """

    def __init__(self, transport: Transport, run_id: str, last_seq: int) -> None:
        self.run_id = run_id
        self._transport = transport
        self._next = last_seq + 1
        self._queue: list[BusEvent] = []
        self._task: asyncio.Task[None] | None = None
        self.refused: set[int] = set()
        """Offsets the transport refused: another publisher had used them."""
        self.dropped = 0
        """Events given up on after `RETRY_FOR` seconds of failures."""

    @property
    def last_seq(self) -> int:
        """The offset of the last event sent (0 if none)."""
        return self._next - 1

    def send(self, event: str, data: bytes) -> int:
        """Queue an event; its offset. Never blocks: call it from a run's hot path.

        Raises:
            ValueError: `event` is the bus's own run-ended name (use `end`).
        """
        if event == END_EVENT:
            raise ValueError(f"{END_EVENT!r} is the run-ended signal: use end()")
        return self._queue_event(event, data)

    async def flush(self) -> None:
        """Wait until every event sent so far was written (or dropped).

        Cancellation:
            Safe: the writing goes on in the background; only the waiting stops.
        """
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def end(self, data: bytes) -> BusEvent:
        """Send the run-ended signal after everything sent so far, and wait until it is
        written; the signal as stored.

        Cancellation:
            Safe to retry: a run that has its signal already keeps the first one.
        """
        seq = self._queue_event(END_EVENT, data)
        await self.flush()
        if seq in self.refused:
            return await end_run(self._transport, self.run_id, data)
        return BusEvent(seq, END_EVENT, data)

    def _queue_event(self, event: str, data: bytes) -> int:
        seq = self._next
        self._next += 1
        self._queue.append(BusEvent(seq, event, data))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name=f"tether-bus-publish-{self.run_id}")
        return seq

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[:BATCH]
            del self._queue[:BATCH]
            await self._write(batch)

    async def _write(self, batch: list[BusEvent]) -> None:
        delay, give_up = RETRY_FIRST, time.monotonic() + RETRY_FOR
        while True:
            try:
                refused = await self._transport.append(self.run_id, batch)
            except Exception as exc:  # noqa: BLE001 - any transport error: retried, then dropped
                if time.monotonic() + delay > give_up:
                    self.dropped += len(batch)
                    logger.error(  # noqa: TRY400 - the failure is named; no traceback needed
                        "run %s: %d bus event(s) dropped after %.0fs of failures (%s)",
                        self.run_id, len(batch), RETRY_FOR, exc)
                    return
                logger.warning("run %s: bus write failed (%s); retrying", self.run_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if refused:
                self.refused |= refused
                logger.warning("run %s: bus offsets %s were taken by another publisher",
                               self.run_id, sorted(refused)[:5])
            return

    async def aclose(self) -> None:
        """Flush, then stop.

        Cancellation:
            Cancelling it stops the background write of what is still queued.
        """
        try:
            await self.flush()
        except asyncio.CancelledError:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            raise


async def end_run(transport: Transport, run_id: str, data: bytes) -> BusEvent:
    """Put the run-ended signal after the run's last event, whoever published it (a sweep
    ending a run no worker holds); a run that has its signal already keeps it.

    Raises:
        RuntimeError: other publishers kept taking the offset `END_ATTEMPTS` times.

    Cancellation:
        Safe to retry.
    """
    for _attempt in range(END_ATTEMPTS):
        last = await transport.last(run_id)
        if last is not None and last.final:
            return last
        signal = BusEvent((last.seq if last is not None else 0) + 1, END_EVENT, data)
        if not await transport.append(run_id, [signal]):
            return signal
    raise RuntimeError(f"run {run_id}: could not place its end on the bus")


__all__ = ["BATCH", "Publisher", "end_run"]
