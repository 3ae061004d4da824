"""A run's lifecycle events between the moment they happen and the run's next store transaction,
which stores them; each is announced at once: a log line, and a `lifecycle` stream chunk for a
consumer that asked for them."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

from tether.checkpoint.base import StoredCheckpoint
from tether.engine.closing import REPAIR_NODE, Closer, Closing
from tether.engine.stream import Emitter
from tether.types import EventPhase, RunEvent, utcnow

logger = logging.getLogger("tether.runs")

# One lock for every journal: a section is an append or a swap, and runs start by the thousand.
_LOCK = threading.Lock()


class Journal:
    """The events of one run not stored yet. Thread-safe: a cancel records its events from the
    thread that asks for it.

    Args:
        run_id: the run, for log lines.
        emitter: the run's stream.
    """

    __slots__ = ("_events", "emitter", "loop", "run_id")

    def __init__(self, run_id: str, emitter: Emitter) -> None:
        self.run_id = run_id
        self.emitter = emitter
        self.loop: asyncio.AbstractEventLoop | None = None
        """The run's event loop, where `lifecycle` chunks are emitted (None: not started)."""
        self._events: list[RunEvent] | None = None  # made by the first event

    def record(self, phase: EventPhase, node: str | None = None,
               detail: dict[str, Any] | None = None) -> RunEvent:
        """Record an event now (stored with the run's next transaction) and announce it."""
        event = RunEvent(phase, utcnow(), node, detail or {})
        with _LOCK:
            if self._events is None:
                self._events = [event]
            else:
                self._events.append(event)
        if self.emitter.lifecycle or logger.isEnabledFor(logging.INFO):  # `announcing`, inline
            self.announce(event)
        return event

    def take(self) -> tuple[RunEvent, ...]:
        """The events recorded since the last `take`, oldest first, for a transaction."""
        with _LOCK:
            events, self._events = self._events, None
        return tuple(events) if events else ()

    @property
    def announcing(self) -> bool:
        """True when `announce` has somewhere to send an event (a log, a `lifecycle` stream):
        an event made only to be announced need not be made otherwise."""
        return self.emitter.lifecycle or logger.isEnabledFor(logging.INFO)

    def announce(self, event: RunEvent) -> None:
        """Log `event` and stream it (`lifecycle`), on the run's loop, from any thread; for an
        event the store records itself (a cancel request) or that a transaction carries."""
        if logger.isEnabledFor(logging.INFO):
            logger.info("run %s %s%s %s", self.run_id, event.phase,
                        f" [{event.node}]" if event.node else "", event.detail or "")
        if not self.emitter.lifecycle:
            return
        payload = {"phase": event.phase, "at": event.at.isoformat(), "node": event.node,
                   "detail": event.detail}
        loop = self.loop
        if loop is None or _in_loop(loop):
            self.emitter.emit_lifecycle(payload)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self.emitter.emit_lifecycle, payload)


class RecordedCloser:
    """A closer whose closings are recorded in the run's audit log (`repair` events)."""

    __slots__ = ("_closer", "_journal")

    def __init__(self, closer: Closer, journal: Journal) -> None:
        self._closer, self._journal = closer, journal

    async def __call__(self, loaded: StoredCheckpoint,
                       values: Mapping[str, Any]) -> Closing | None:
        """The closer's answer, recorded when there is one.

        Cancellation:
            As the closer's: it only reads.
        """
        closing = await self._closer(loaded, values)
        if closing is not None and closing.writes:
            self._journal.record("repair", REPAIR_NODE, closing.detail)
        return closing


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = ["Journal", "RecordedCloser"]
