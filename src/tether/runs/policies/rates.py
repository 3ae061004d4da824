"""Sliding-window rate limits (node errors, tool calls per minute)."""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW = 60.0


class Rate:
    """Counts events in the last `window` seconds; thread-safe.

    The window holds one entry per `add` (its time and its count), not one per event: a report
    of many tool calls at once costs one entry, and the total is kept as a counter.
    """

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._entries: deque[tuple[float, int]] = deque()
        self._total = 0
        self._lock = threading.Lock()

    def add(self, count: int = 1, now: float | None = None) -> int:
        """Record `count` events; returns how many fall in the window now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entries = self._entries
            entries.append((now, count))
            total = self._total + count
            edge = now - self.window
            while entries[0][0] < edge:
                total -= entries.popleft()[1]
            self._total = total
            return total
