"""Overload: a cap on the runs a process drives at once.

Past the cap a new run waits (status `pending`) or is refused, as configured; with shedding on,
a run of higher priority makes room by cancelling the lowest-priority run in flight (kind
`overload`), which keeps its final checkpoint and can be resumed later.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass, field
from typing import Literal

from tether.errors import OverloadError
from tether.runs.core import RunCore
from tether.types import CancelReason

WhenFull = Literal["wait", "refuse"]


@dataclass(order=True)
class _Waiter:
    rank: tuple[int, int]
    core: RunCore = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)


class Admission:
    """The process-wide gate every run passes before it starts."""

    def __init__(self) -> None:
        self.max_runs: int | None = None
        self.when_full: WhenFull = "wait"
        self.shed = False
        self._lock = threading.Lock()
        self._running: set[RunCore] = set()
        self._waiting: list[_Waiter] = []
        self._seq = itertools.count()

    def configure(self, max_runs: int | None, when_full: WhenFull = "wait",
                  shed: bool = False) -> None:
        """Set the cap (None: no cap), what happens past it, and whether to shed."""
        if max_runs is not None and max_runs < 1:
            raise ValueError("max_runs must be at least 1 (or None for no cap)")
        if when_full not in ("wait", "refuse"):
            raise ValueError("when_full must be 'wait' or 'refuse'")
        with self._lock:
            self.max_runs, self.when_full, self.shed = max_runs, when_full, shed

    def admit(self, core: RunCore) -> bool:
        """Take a slot for a run that is starting, at once if there is one.

        Returns:
            True when the run holds a slot; False when it must wait in `enter`.

        Raises:
            OverloadError: full, `when_full="refuse"`, and nothing can be shed for it.
        """
        with self._lock:
            if not self._full():
                self._running.add(core)
                return True
            if self.when_full == "refuse" and self._victim(core.request.config.priority) is None:
                raise OverloadError(f"this process already drives {len(self._running)} runs "
                                    f"(max_runs={self.max_runs})")
            return False

    def _full(self) -> bool:
        return self.max_runs is not None and len(self._running) >= self.max_runs

    def _victim(self, priority: int) -> RunCore | None:
        if not self.shed:
            return None
        candidates = [c for c in self._running
                      if c.request.config.priority < priority and not c.scope.cancel_called]
        return min(candidates, key=lambda c: c.request.config.priority, default=None)

    async def enter(self, core: RunCore) -> None:
        """Wait for a slot for `core` (shedding a lower-priority run if allowed).

        Cancellation:
            Cancelling the waiting run gives up its place in the queue.
        """
        priority = core.request.config.priority
        with self._lock:
            if core in self._running:
                return
            if not self._full():
                self._running.add(core)
                return
            victim = self._victim(priority)
            waiter = _Waiter((-priority, next(self._seq)), core,
                             asyncio.get_running_loop().create_future())
            self._waiting.append(waiter)
            self._waiting.sort()
        if victim is not None:
            victim.request_cancel_sync(CancelReason(
                "overload", f"shed for run {core.run_id} (priority {priority})", "admission",
                evidence={"max_runs": self.max_runs, "priority": victim.request.config.priority,
                          "for_priority": priority}))
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                elif core in self._running:
                    self._release_locked(core)
            raise

    def leave(self, core: RunCore) -> None:
        """`core` ended: give its slot to the best waiter."""
        with self._lock:
            self._release_locked(core)

    def _release_locked(self, core: RunCore) -> None:
        if core not in self._running:
            return
        self._running.discard(core)
        while self._waiting and not self._full():
            waiter = self._waiting.pop(0)
            if waiter.future.done():
                continue
            self._running.add(waiter.core)
            loop = waiter.future.get_loop()
            loop.call_soon_threadsafe(_wake, waiter.future)

    @property
    def running(self) -> int:
        """Runs holding a slot."""
        return len(self._running)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


ADMISSION = Admission()


def limit_runs(max_runs: int | None, *, when_full: WhenFull = "wait", shed: bool = False) -> None:
    """Cap the runs this process drives at once.

    Args:
        max_runs: the cap (None removes it).
        when_full: `"wait"`: a new run waits, pending, for a slot; `"refuse"`: it is refused
            with `OverloadError`.
        shed: a new run may cancel the lowest-priority run in flight (kind `overload`) when
            its own `config["priority"]` is higher.
    """
    ADMISSION.configure(max_runs, when_full, shed)
