"""`Tail`: an API server following queued runs through the bus.

For a run whose stream the server shares (a feed), the tail reads the run's events from the bus
from its first offset and writes each into the feed under the same number, so an SSE event id
means the same event on every server and a client can resume on any of them with
`Last-Event-ID`. For a run the server only waits for, it waits for the run-ended signal alone.
Either way the end is handed to the launcher at once; the database poll stays behind it as the
fallback that always works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tether.bus import BusEvent, StreamBus
from tether.checkpoint.serde import Serializer
from tether.types import RunInfo
from tether.worker import frames
from tether.worker.watch import Feed

logger = logging.getLogger("tether.worker")


class Tail:
    """Follows runs on the bus for one launcher.

    Args:
        bus: the server's bus.
        serde: decodes payloads (the store's serializer).
        on_end: called with (run id, final record or None when the signal carried none) when
            a run's run-ended signal arrives.
    """

    def __init__(self, bus: StreamBus, serde: Serializer,
                 on_end: Callable[[str, RunInfo | None], None]) -> None:
        self.bus = bus
        self._serde = serde
        self._on_end = on_end
        # Invariant: one task per run followed; it removes itself when it ends.
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def following(self, run_id: str) -> bool:
        """True while the run is followed."""
        return run_id in self._tasks

    def feed(self, run_id: str, feed: Feed, *, ready: asyncio.Event | None = None,
             upto: int = 0) -> None:
        """Write the run's events into `feed` from its first offset until its end; set `ready`
        once the events up to offset `upto` are in."""
        self._spawn(run_id, self._fill(run_id, feed, ready, upto))

    def wait(self, run_id: str) -> None:
        """Report the run's end (nothing else) when its signal arrives."""
        if run_id not in self._tasks:
            self._spawn(run_id, self._await_end(run_id))

    def forget(self, run_id: str) -> None:
        """Stop following the run (it ended by another path)."""
        task = self._tasks.pop(run_id, None)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        """Stop following every run.

        Cancellation:
            Safe to retry.
        """
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _spawn(self, run_id: str, work: Any) -> None:
        previous = self._tasks.pop(run_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.get_running_loop().create_task(work, name=f"tether-tail-{run_id}")
        self._tasks[run_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._tasks.get(run_id) is finished:
                del self._tasks[run_id]
            if not finished.cancelled() and finished.exception() is not None:
                logger.warning("following run %s on the bus failed: %r; its end comes from "
                               "the database", run_id, finished.exception())

        task.add_done_callback(done)

    async def _fill(self, run_id: str, feed: Feed, ready: asyncio.Event | None,
                    upto: int) -> None:
        try:
            async with self.bus.subscribe(run_id) as events:
                async for event in events:
                    if event.final:
                        self._end(run_id, event)
                        return
                    self._publish(feed, event)
                    if ready is not None and event.seq >= upto:
                        ready.set()
        finally:
            if ready is not None:
                ready.set()

    def _publish(self, feed: Feed, event: BusEvent) -> None:
        try:
            payload = frames.decode(event, self._serde)
        except Exception as exc:  # noqa: BLE001 - one unreadable event must not end the stream
            logger.warning("run event %s (%s) could not be read: %s", event.seq, event.event,
                           exc)
            return
        feed.publish(event.event, payload, seq=event.seq)

    async def _await_end(self, run_id: str) -> None:
        self._end(run_id, await self.bus.wait_ended(run_id))

    def _end(self, run_id: str, event: BusEvent) -> None:
        try:
            self._on_end(run_id, frames.decode_end(event, self._serde))
        except Exception:  # the launcher's failure must not hide the end: logged
            logger.exception("run %s: handling its end failed", run_id)


__all__ = ["Tail"]
