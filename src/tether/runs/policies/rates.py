"""Sliding-window rate limits (node errors, tool calls per minute)."""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW = 60.0


class Rate:
    """Counts events in the last `window` seconds; thread-safe."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def add(self, count: int = 1, now: float | None = None) -> int:
        """Record `count` events; returns how many fall in the window now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for _ in range(count):
                self._times.append(now)
            edge = now - self.window
            while self._times and self._times[0] < edge:
                self._times.popleft()
            return len(self._times)
