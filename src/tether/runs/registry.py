"""The runs alive in this process, by id and by thread. Thread-safe."""

from __future__ import annotations

import threading
from collections import OrderedDict

from tether.runs.core import RunCore


class Registry:
    """Live runs, plus a short memory of recently finished ones.

    Args:
        keep_finished: how many finished runs stay findable by id here.
    """

    def __init__(self, keep_finished: int = 1000) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, RunCore] = {}
        self._threads: dict[str, list[str]] = {}
        self._finished: OrderedDict[str, RunCore] = OrderedDict()
        self._keep = keep_finished

    def add(self, core: RunCore) -> None:
        """Track a starting run."""
        with self._lock:
            if core.run_id in self._live:
                raise ValueError(f"run id {core.run_id!r} is already in use by a live run")
            self._live[core.run_id] = core
            if core.thread_id is not None:
                self._threads.setdefault(core.thread_id, []).append(core.run_id)
        core.on_final.append(self._retire)

    def _retire(self, core: RunCore) -> None:
        with self._lock:
            self._live.pop(core.run_id, None)
            if core.thread_id is not None:
                ids = self._threads.get(core.thread_id)
                if ids and core.run_id in ids:
                    ids.remove(core.run_id)
                    if not ids:
                        del self._threads[core.thread_id]
            self._finished[core.run_id] = core
            while len(self._finished) > self._keep:
                self._finished.popitem(last=False)

    def get(self, run_id: str) -> RunCore | None:
        """A live or recently finished run."""
        with self._lock:
            return self._live.get(run_id) or self._finished.get(run_id)

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
