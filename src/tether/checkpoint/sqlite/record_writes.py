"""The async writes of `SqliteSaver` to runs and threads: each one transaction of the store's
writer thread (its `Writer`), as the store's docstring describes, so that no async call blocks
its loop on the file's lock or an fsync. The checkpoint writes, which also keep the store's
cache of heads, stay in `store.py`.

Cancellation (every method): deferred; a write handed to the thread commits or fails whole, and
the caller's cancel is delivered at its next await.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from tether.checkpoint import owner
from tether.checkpoint.base import CheckpointStore, ThreadRecord
from tether.checkpoint.sqlite import rows, runs, threads
from tether.checkpoint.sqlite.checkpoints import Checkpoints
from tether.checkpoint.sqlite.writer import Writer
from tether.types import CancelReason, RunEvent, RunInfo, utcnow


class AsyncRecordWrites(CheckpointStore):
    """The `a*` writes of runs and threads, over the writer thread in `_writer` and the cache
    of heads in `_checkpoints` (both provided by `SqliteSaver`)."""

    _writer: Writer
    _checkpoints: Checkpoints

    async def acreate_run(self, info: RunInfo) -> RunInfo:
        """Async twin of `create_run`, run by the writer thread.

        Cancellation:
            Deferred: the run is recorded (or refused) whole; see the class's docstring.
        """
        return await self._writer.transaction(
            lambda: runs.create(info, owner.current(), utcnow()))

    async def amark_running(self, run_id: str, events: Sequence[RunEvent] = ()) -> RunInfo | None:
        """Async twin of `mark_running`, run by the writer thread.

        Cancellation:
            Deferred: one transaction, whole; see the class's docstring.
        """
        return await self._writer.transaction(
            lambda: runs.mark_running(run_id, events, owner.current(), utcnow()))

    async def arequest_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        """Async twin of `request_cancel`, run by the writer thread.

        Cancellation:
            Deferred: one transaction, whole; safe to retry (a repeat returns the first).
        """
        return await self._writer.transaction(lambda: runs.request_cancel(run_id, reason))

    async def arequest_cancels(self, requests: Sequence[tuple[str, CancelReason]],
                               ) -> list[tuple[RunInfo, bool] | Exception]:
        """`arequest_cancel` for many runs, handed to the writer thread at once (one group
        commit, a savepoint each), with no task per request on the way.

        Cancellation:
            Deferred: each request is recorded whole or not at all. Safe to retry.
        """
        return await self._writer.transactions(
            [functools.partial(runs.request_cancel, run_id, reason)
             for run_id, reason in requests])

    async def aappend_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Async twin of `append_events`, run by the writer thread.

        Cancellation:
            Deferred: all of the events are appended, or none.
        """
        event_rows = rows.event_params(run_id, events)
        await self._writer.transaction(lambda: runs.append_events(event_rows))

    async def aput_thread(self, thread_id: str,
                          metadata: dict[str, Any] | None = None) -> ThreadRecord:
        """Async twin of `put_thread`, run by the writer thread.

        Cancellation:
            Deferred: the thread is written whole; see the class's docstring.
        """
        return await self._writer.transaction(lambda: threads.put(thread_id, metadata))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async twin of `delete_thread`, run by the writer thread.

        Cancellation:
            Deferred: the thread is deleted whole; see the class's docstring.
        """
        await self._writer.transaction(lambda: threads.delete(thread_id), lambda _: (
            self._checkpoints.forget(lambda key, _head: key[0] == thread_id)))

    async def acopy_thread(self, source: str, target: str) -> None:
        """Async twin of `copy_thread`, run by the writer thread.

        Cancellation:
            Deferred: the thread is copied whole; see the class's docstring.
        """
        await self._writer.transaction(lambda: threads.copy(source, target))

    async def adelete_run(self, run_id: str) -> bool:
        """Async twin of `delete_run`, run by the writer thread (the same `RunError`).

        Cancellation:
            Deferred: the run is deleted whole (or refused); see the class's docstring.
        """
        return await self._writer.transaction(lambda: runs.delete(run_id))

    async def adelete_run_checkpoints(self, run_id: str) -> None:
        """Async twin of `delete_run_checkpoints`, run by the writer thread.

        Cancellation:
            Deferred: one transaction, whole; safe to retry.
        """
        await self._writer.call(lambda: self.delete_run_checkpoints(run_id))


__all__ = ["AsyncRecordWrites"]
