"""What the server bounds: request bodies, event streams, and the memory kept for each run's
stream; and the counter that holds streams per API key to their limit."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds the server holds every client to.

    Attributes:
        max_body_bytes: the largest request body accepted; a larger one gets 413.
        max_stream_seconds: how long one event stream stays open. The stream then closes;
            `langgraph-sdk` reconnects to the run's join stream (its `Location` header) and
            carries on from the last event id, so a long run is still followed to its end.
        max_streams_per_key: event streams one API key (or, without auth, the whole server)
            may hold open at once; one more gets 429.
        heartbeat_seconds: an SSE comment is sent after this much silence, so proxies keep
            the connection and a vanished client is noticed.
        feed_events: stream events kept per run for late joiners and reconnects (the oldest
            are dropped first).
        feed_retain_seconds: how long a finished run's events stay joinable.
        cancel_wait_seconds: the longest `cancel?wait=1` and shutdown wait for a run to end.
    """

    max_body_bytes: int = 1 << 20
    max_stream_seconds: float = 1800.0
    max_streams_per_key: int = 100
    heartbeat_seconds: float = 10.0
    feed_events: int = 2_000
    feed_retain_seconds: float = 300.0
    cancel_wait_seconds: float = 60.0


class StreamSlots:
    """Counts the event streams each key holds open. Thread-safe."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> bool:
        """Take a slot for `key`; False when it already holds its limit."""
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self._per_key:
                return False
            self._held[key] = held + 1
            return True

    def release(self, key: str) -> None:
        """Give back a slot taken by `acquire`."""
        with self._lock:
            held = self._held.get(key, 0) - 1
            if held > 0:
                self._held[key] = held
            else:
                self._held.pop(key, None)

    def held(self, key: str) -> int:
        """How many streams `key` holds open."""
        with self._lock:
            return self._held.get(key, 0)


__all__ = ["ServerLimits", "StreamSlots"]
