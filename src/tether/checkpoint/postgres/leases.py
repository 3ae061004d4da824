"""The leases one store handle writes under: which runs a worker holds, at which fencing epoch,
and what the database said about their cancel requests along the way."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tether.errors import StaleLeaseError
from tether.types import CancelReason

T = TypeVar("T")

logger = logging.getLogger("tether.checkpoint.postgres")

REVOKED = -1
"""The epoch of a revoked lease: epochs start at 0 and only grow, so it never matches."""


class Leases:
    """Run id → epoch for the runs this handle holds, and the thread each runs on.

    A worker runs one run per thread at a time (the queue claims a thread's runs in order), so
    a pending write, which names a thread and not a run, is fenced by its thread's run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epochs: dict[str, int] = {}
        # Invariant: `_threads` maps a thread to the run last bound on it, `_thread_of` a run
        # to the thread it was bound with (a thread's next run may be bound before the last
        # one is unbound: the thread then stays the next run's).
        self._threads: dict[str, str] = {}
        self._thread_of: dict[str, str] = {}
        self._noted: dict[str, CancelReason] = {}
        self._revoked: set[str] = set()

    def bind(self, run_id: str, epoch: int, thread_id: str | None) -> None:
        """Fence the writes for `run_id` (and its thread's pending writes) with `epoch`."""
        with self._lock:
            self._epochs[run_id] = epoch
            if thread_id is not None:
                self._threads[thread_id] = run_id
                self._thread_of[run_id] = thread_id

    def unbind(self, run_id: str) -> None:
        """Stop fencing `run_id`."""
        with self._lock:
            self._epochs.pop(run_id, None)
            self._noted.pop(run_id, None)
            self._revoked.discard(run_id)
            thread_id = self._thread_of.pop(run_id, None)  # (no pass over every thread held)
            if thread_id is not None and self._threads.get(thread_id) == run_id:
                del self._threads[thread_id]

    def revoke(self, run_id: str) -> None:
        """Refuse every further write for `run_id` (the worker handed it back, or lost it):
        its writes now carry an epoch no run ever has, and their refusals are not warnings."""
        with self._lock:
            if run_id in self._epochs:
                self._epochs[run_id] = REVOKED
                self._revoked.add(run_id)

    def epoch(self, run_id: str | None) -> int | None:
        """The epoch `run_id` is held at, or None when this handle does not hold it."""
        return self._epochs.get(run_id) if run_id is not None else None

    def of_thread(self, thread_id: str) -> tuple[str | None, int | None]:
        """(run, epoch) held on `thread_id`, or (None, None)."""
        with self._lock:
            run_id = self._threads.get(thread_id)
            return run_id, self._epochs.get(run_id) if run_id is not None else None

    def checked(self, run_id: str | None, call: Callable[[], T]) -> T:
        """`call()`, logging a refusal for a stale epoch before it propagates."""
        try:
            return call()
        except StaleLeaseError as exc:
            self._log(run_id, exc)
            raise

    async def achecked(self, run_id: str | None, call: Awaitable[T]) -> T:
        """`await call`, logging a refusal for a stale epoch before it propagates.

        Cancellation:
            As the awaited store call.
        """
        try:
            return await call
        except StaleLeaseError as exc:
            self._log(run_id, exc)
            raise

    def _log(self, run_id: str | None, exc: StaleLeaseError) -> None:
        if run_id in self._revoked:
            logger.info("run %s was given up here; its write was refused as intended", run_id)
            return
        logger.warning("stale lease: write for run %s refused (held at epoch %s): %s",
                       run_id, self.epoch(run_id), exc)

    def note(self, run_id: str | None, reason: CancelReason | None) -> None:
        """Remember a durable cancel the database reported with a write for a run (held by
        a worker, or run in this process)."""
        if reason is not None and run_id is not None:
            self._noted[run_id] = reason

    def forget_note(self, run_id: str) -> None:
        """The run has ended: drop what was noted for it."""
        self._noted.pop(run_id, None)

    def noted(self, run_id: str) -> CancelReason | None:
        """The cancel noted for `run_id`, if any."""
        return self._noted.get(run_id)


__all__ = ["Leases"]
