"""Sliding-window rate limits (node errors, tool calls per minute)."""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW = 60.0
_PRUNE_AT = 64  # `Marks.prune` is due once the window holds this many (then twice as many)


class Rate:
    """Counts events in the last `window` seconds; thread-safe.

    The window holds one entry per report (its time and its count), not one per event: a report
    of many events at once costs one entry, and the total is kept as a counter.

    Invariant: `_total` is the sum of the counts in `_entries`; `add` drops the entries older
    than the window at once.
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


class Marks:
    """A running total's reports in the last `window` seconds, for a reporter that keeps the
    total itself (a run's tally of tool calls).

    The reporter appends one mark per report, `(time, total after it)`, to `marks` (a deque:
    an append is atomic, no call and no lock of this object's); what fell in the window is
    then the total now minus the total at the last report before the window, so a count looks
    only at the marks that leave it (O(1) amortised), and nothing is counted until asked.

    Invariant: `_base` is the total after the last mark dropped (0 before any), and marks are
    in the order of their totals (the reporter appends under the lock its total is kept by).
    """

    __slots__ = ("_base", "_lock", "marks", "prune_at", "window")

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self.marks: deque[tuple[float, int]] = deque()
        #: The reporter calls `prune` once `marks` holds this many (then twice as many as
        #: are left), so that a total far below its limit keeps no more than a window.
        self.prune_at = _PRUNE_AT
        self._base = 0
        self._lock = threading.Lock()

    def count(self, total: int, now: float | None = None) -> int:
        """How much of `total` (the total now) was reported in the window now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._drop(now - self.window)
            return total - self._base

    def prune(self, now: float | None = None) -> None:
        """Drop the marks older than the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._drop(now - self.window)
            self.prune_at = max(_PRUNE_AT, 2 * len(self.marks))

    def _drop(self, edge: float) -> None:
        marks = self.marks
        while marks and marks[0][0] < edge:
            self._base = marks.popleft()[1]
