"""Sliding-window rate limits (node errors, tool calls per minute)."""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW = 60.0
_PRUNE_AT = 64  # `note` drops old entries once the window holds this many (then twice as many)


class Rate:
    """Counts events in the last `window` seconds; thread-safe.

    The window holds one entry per report (its time and its count), not one per event: a report
    of many tool calls at once costs one entry, and the total is kept as a counter.

    Invariant: `_total` is the sum of the counts in `_entries`; entries older than the window
    are dropped by `add` at once, by `note` only now and then (its caller asks for no count).
    """

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._entries: deque[tuple[float, int]] = deque()
        self._total = 0
        self._lock = threading.Lock()
        self._prune_at = _PRUNE_AT

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

    def note(self, count: int = 1, now: float | None = None) -> None:
        """Record `count` events without counting the window: for a caller that knows the
        window is within its limit (every event ever reported is). A later `add` counts
        exactly as if every report had been an `add`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entries = self._entries
            entries.append((now, count))
            self._total += count
            if len(entries) < self._prune_at:
                return
            edge, total = now - self.window, self._total
            while entries[0][0] < edge:
                total -= entries.popleft()[1]
            self._total = total
            self._prune_at = max(_PRUNE_AT, 2 * len(entries))

    def count(self, now: float | None = None) -> int:
        """How many events fall in the window now (what `add` returns, without adding)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entries, total, edge = self._entries, self._total, now - self.window
            while entries and entries[0][0] < edge:
                total -= entries.popleft()[1]
            self._total = total
            return total
