"""The runs alive in this process, by id and by thread. Thread-safe.

A run leaves the registry when it ends: from then on its store's record is the truth.
"""

from __future__ import annotations

import threading

from tether.runs.core import RunCore


class Registry:
    """The runs in flight in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, RunCore] = {}
        self._threads: dict[str, list[str]] = {}
        # Made once: a bound method per run would be one more object for the collector.
        self._on_end = self._retire

    def add(self, core: RunCore) -> None:
        """Track a starting run."""
        with self._lock:
            if core.run_id in self._live:
                raise ValueError(f"run id {core.run_id!r} is already in use by a live run")
            self._live[core.run_id] = core
            if core.thread_id is not None:
                self._threads.setdefault(core.thread_id, []).append(core.run_id)
        core.when_done(self._on_end)

    def _retire(self, core: RunCore) -> None:
        with self._lock:
            self._live.pop(core.run_id, None)
            if core.thread_id is not None:
                ids = self._threads.get(core.thread_id)
                if ids and core.run_id in ids:
                    ids.remove(core.run_id)
                    if not ids:
                        del self._threads[core.thread_id]

    def live(self, run_id: str) -> RunCore | None:
        """A run still in flight."""
        with self._lock:
            return self._live.get(run_id)

    def active_on(self, thread_id: str) -> list[RunCore]:
        """Runs in flight on a thread, oldest first."""
        with self._lock:
            return [self._live[r] for r in self._threads.get(thread_id, ()) if r in self._live]

    def all_live(self) -> list[RunCore]:
        """Every run in flight."""
        with self._lock:
            return list(self._live.values())


REGISTRY = Registry()
"""The process-wide registry every graph shares."""
