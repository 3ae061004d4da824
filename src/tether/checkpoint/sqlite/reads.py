"""The async reads of `SqliteSaver`: a point read inline, every other read by the store's
reader thread.

A read never waits for a writer here: it runs on the store's reading connection, which in WAL
mode reads the last committed state without taking the write lock. So the only question is how
long the read itself takes, on the caller's loop:
- **point reads** (`aget_run`, `aget_thread`, `acancel_requests`, `aget_writes`: a row or a
  few by key, through an index) take microseconds, less than the hand-off to a thread and back
  (measured: 15-70 us of CPU and two wake-ups, +0.15-0.7 ms on the p50 of the server's run read
  under load). They run inline, on the caller's loop, as every read did before;
- **everything else** (listings, searches, a run's events, a state with its channel values, a
  history) grows with the data. Run by the writer thread it would queue behind the writes handed
  over before it (a group commit of many runs' checkpoints), so these reads have a thread of
  their own, a `Writer` that only ever runs calls (`role="reader"`). On a loop that serves one
  sync caller only (`tether.checkpoint.loops`) they run inline, as the writes do.

Cancellation (every method): safe, it only reads; a cancel is delivered at once, and the
answer of a read the thread has begun is dropped (`Writer.read`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

from tether.checkpoint.base import CheckpointStore, StoredCheckpoint, ThreadRecord
from tether.checkpoint.paging import apages
from tether.checkpoint.sqlite.writer import Writer
from tether.types import RunEvent, RunInfo, RunSnapshot, RunStatus

POINT_READS = frozenset({"get_run", "get_thread", "cancel_requests", "get_writes"})
"""The sync reads whose async twins run inline, on the caller's loop: the store protocol's
default twins (`CheckpointStore.aget_run`...), which `AsyncReads` leaves as they are."""


class AsyncReads(CheckpointStore):
    """The `a*` reads that grow with the data, over the sync ones in `_reads` (provided by
    `SqliteSaver`); the point reads keep the protocol's inline defaults."""

    _reads: Writer

    async def alist_runs(self, *, thread_id: str | None = None,
                         status: RunStatus | str | None = None,
                         limit: int | None = None) -> list[RunInfo]:
        """Async twin of `list_runs`, read by the reader thread.

        Cancellation:
            Safe: it only reads.
        """
        return await self._reads.read(
            lambda: self.list_runs(thread_id=thread_id, status=status, limit=limit))

    async def aevents(self, run_id: str) -> list[RunEvent]:
        """Async twin of `events`, read by the reader thread.

        Cancellation:
            Safe: it only reads.
        """
        return await self._reads.read(lambda: self.events(run_id))

    async def aload(self, run_id: str) -> RunSnapshot:
        """Async twin of `load`, read by the reader thread.

        Cancellation:
            Safe: it only reads.
        """
        return await self._reads.read(lambda: self.load(run_id))

    async def aget_checkpoint(self, thread_id: str, ns: str = "",
                              checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        """Async twin of `get_checkpoint`, read by the reader thread.

        Cancellation:
            Safe: it only reads.
        """
        return await self._reads.read(
            lambda: self.get_checkpoint(thread_id, ns, checkpoint_id))

    async def asearch_threads(self, *, metadata: dict[str, Any] | None = None,
                              ids: Collection[str] | None = None, sort_by: str = "updated_at",
                              ascending: bool = False, limit: int = 10,
                              offset: int = 0) -> list[ThreadRecord]:
        """Async twin of `search_threads`, read by the reader thread.

        Cancellation:
            Safe: it only reads.
        """
        return await self._reads.read(lambda: self.search_threads(
            metadata=metadata, ids=ids, sort_by=sort_by, ascending=ascending, limit=limit,
            offset=offset))

    async def acount_threads(self, *, metadata: dict[str, Any] | None = None,
                             ids: Collection[str] | None = None) -> int:
        """Async twin of `count_threads`, read by the reader thread.

        Cancellation:
            Safe: it only reads.
        """
        return await self._reads.read(lambda: self.count_threads(metadata=metadata, ids=ids))

    async def alist_checkpoints(self, thread_id: str, ns: str = "", *, before: str | None = None,
                                limit: int | None = None) -> AsyncIterator[StoredCheckpoint]:
        """Async twin of `list_checkpoints`, a page at a time by the reader thread.

        Cancellation:
            Safe: it only reads; stopping early reads no further page.
        """
        async def fetch(after: str | None, count: int) -> list[StoredCheckpoint]:
            return await self._reads.read(lambda: list(
                self.list_checkpoints(thread_id, ns, before=after, limit=count)))

        async for stored in apages(fetch, before, limit):
            yield stored


__all__ = ["POINT_READS", "AsyncReads"]
