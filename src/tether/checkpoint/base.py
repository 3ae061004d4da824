"""The store protocol every backend implements: threads, runs, checkpoints, pending writes and
each run's append-only audit log.

Backends implement the sync methods; the async twins (`a*`) call them directly by default, which
is right for a store with no I/O (memory). A store whose calls block overrides the async twins:
SQLite runs its writes in its writer thread and its reads in its reader thread, Postgres does
real async I/O, so no async call blocks the caller's event loop (a server's).

Cancellation (every async twin): each call is one transaction. Cancelled before it commits, it
changes nothing and is safe to retry; the runs layer calls the ones that end a run from a
shielded scope, so a run's last transaction is never torn by the cancel it records.

Every method that changes a run's status is conditional: a
terminal status is never overwritten, and the backend enforces it, not the caller.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from typing import Any

from tether.checkpoint.serde import Serializer
from tether.checkpoint.snapshot import snapshot
from tether.checkpoint.store_records import (
    CheckpointRecord,
    FinishResult,
    RunFinish,
    StoredCheckpoint,
    ThreadRecord,
    WriteRecord,
)
from tether.types import (
    CancelReason,
    RunEvent,
    RunInfo,
    RunSnapshot,
    RunStatus,
)


class CheckpointStore(ABC):
    """The protocol the runs layer and the engine call; see the module docstring."""

    serde: Serializer
    ephemeral: bool = False
    """True for a store that forgets everything when the process ends (no checkpointer)."""
    has_workers: bool = False
    """True when other processes may drive this store's runs (a worker pool)."""
    shared: bool = False
    """True when other processes may write to this store (a cancel may come from them)."""
    notes_cancels: bool = False
    """True when every checkpoint write reports its run's durable cancel (`cancel_noted`): a
    run checkpointing each step learns of a cancel made elsewhere without asking again."""
    commits_in_order: bool = False
    """True when the async transactions that one event loop hands to the store commit in the
    order they were handed over (one writer thread, one queue): a run stopped by its own loop's
    cancel request may then hand over its end right behind the request, before the request is
    answered (`RunFinish.after_request`; one commit for both where the writer groups them)."""

    # -- runs -----------------------------------------------------------------------------

    @abstractmethod
    def create_run(self, info: RunInfo) -> RunInfo:
        """Record a new run (status `pending`). Returns the stored record."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunInfo | None:
        """The run's record, or None."""

    @abstractmethod
    def list_runs(
        self,
        *,
        thread_id: str | None = None,
        status: RunStatus | str | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first, optionally of one thread and/or status."""

    @abstractmethod
    def mark_running(self, run_id: str, events: Sequence[RunEvent] = ()) -> RunInfo | None:
        """`pending`/`interrupted` → `running`. Returns None if the run may not start (a cancel
        is durable, or it has ended)."""

    @abstractmethod
    def request_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        """Durably record a cancel request. Idempotent.

        Returns:
            The run's record and True if this call recorded the request; False if a request
            was already recorded (the record then carries the first reason) or the run has ended.
        """

    @abstractmethod
    def finish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        """Commit a run's end in one transaction: checkpoints, writes, events, status."""

    @abstractmethod
    def append_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Append to the run's audit log."""

    @abstractmethod
    def events(self, run_id: str) -> list[RunEvent]:
        """The run's audit log, oldest first."""

    # -- threads ----------------------------------------------------------------------------

    @abstractmethod
    def put_thread(self, thread_id: str, metadata: dict[str, Any] | None = None) -> ThreadRecord:
        """Create a thread, or merge `metadata` into an existing one's; returns the record."""

    @abstractmethod
    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread's record (None if it was never created and has no runs or checkpoints)."""

    @abstractmethod
    def search_threads(self, *, metadata: dict[str, Any] | None = None,
                       ids: Collection[str] | None = None, sort_by: str = "updated_at",
                       ascending: bool = False, limit: int = 10,
                       offset: int = 0) -> list[ThreadRecord]:
        """Recorded threads whose metadata contains `metadata` (and whose id is one of `ids`,
        when given), ordered by `sort_by` (one of `THREAD_SORTS`), by default most recently
        updated first; ties by id, reversed with the order (`thread_order`), so that pages
        taken one after another hold each thread once.

        Raises:
            ValueError: a bad metadata filter or `sort_by`.
        """

    def count_threads(self, *, metadata: dict[str, Any] | None = None,
                      ids: Collection[str] | None = None) -> int:
        """How many threads `search_threads` with these filters finds in all. tether's stores
        count in one statement; this default counts their pages.

        Raises:
            ValueError: a bad metadata filter.
        """
        counted, page = 0, 1000
        while found := len(self.search_threads(metadata=metadata, ids=ids, limit=page,
                                                offset=counted)):
            counted += found
            if found < page:
                break
        return counted

    def copy_thread(self, source: str, target: str) -> None:
        """Copy a thread's checkpoints (every namespace), their values and pending writes to
        thread `target`, in one transaction: `target` then has the same history and state,
        under the same checkpoint ids. Its runs are not copied, and the copies belong to no
        run (a rollback of a run of `source` leaves them). The thread's record is not copied
        (a caller makes `target`'s). A store that cannot copy says so.

        Raises:
            ValueError: `target` already has checkpoints (nothing is copied).
            NotImplementedError: the store cannot copy a thread.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot copy a thread")

    # -- checkpoints ------------------------------------------------------------------------

    @abstractmethod
    def put_checkpoint(self, record: CheckpointRecord) -> None:
        """Store one checkpoint (and point its run at it)."""

    def put_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Store checkpoints in their order, each as `put_checkpoint` would: in one transaction
        in tether's stores (all of them or none), one by one in a store that does not say
        otherwise. A run's input checkpoint goes with its first step's this way."""
        for record in records:
            self.put_checkpoint(record)

    @abstractmethod
    def put_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   writes: Sequence[WriteRecord]) -> None:
        """Attach pending writes to a checkpoint (a finished task of an unfinished step)."""

    @abstractmethod
    def get_checkpoint(
        self, thread_id: str, ns: str = "", checkpoint_id: str | None = None
    ) -> StoredCheckpoint | None:
        """A checkpoint (the thread's latest when `checkpoint_id` is None), or None."""

    def get_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   channel: str) -> tuple[WriteRecord, ...]:
        """The pending writes to `channel` of one checkpoint, in the order `get_checkpoint`
        gives them (none when there is no such checkpoint): a point read, for a caller that
        needs one channel's writes (a stopped run's partial answers) and not the checkpoint's
        values. This default reads the whole checkpoint; the backends read the writes alone.
        """
        stored = self.get_checkpoint(thread_id, ns, checkpoint_id)
        if stored is None:
            return ()
        return tuple(w for w in stored.pending_writes if w.channel == channel)

    @abstractmethod
    def list_checkpoints(
        self,
        thread_id: str,
        ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StoredCheckpoint]:
        """A thread's checkpoints, newest first."""

    @abstractmethod
    def list_threads(self, limit: int | None = None) -> list[str]:
        """Ids of threads that have checkpoints or runs, most recently active first."""

    @abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Remove a thread's checkpoints, writes and runs."""

    @abstractmethod
    def delete_run(self, run_id: str) -> bool:
        """Forget an ended (or paused) run's record and audit log; its checkpoints stay with
        the thread. Returns False if there was no such run.

        Raises:
            RunError: the run is still in flight (cancel it first).
        """

    @abstractmethod
    def delete_run_checkpoints(self, run_id: str) -> None:
        """Remove the checkpoints a run wrote (`multitask_strategy="rollback"`)."""

    # -- derived ----------------------------------------------------------------------------

    def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, CancelReason]:
        """Which of these runs have a durable cancel request (made by any process)."""
        out: dict[str, CancelReason] = {}
        for run_id in run_ids:
            info = self.get_run(run_id)
            if info is not None and info.reason is not None and not info.terminal:
                out[run_id] = info.reason
        return out

    async def acancel_requests(self, run_ids: Sequence[str]) -> dict[str, CancelReason]:
        """Async twin of `cancel_requests`.

        Cancellation:
            Safe: it only reads.
        """
        return self.cancel_requests(run_ids)

    def cancel_noted(self, run_id: str) -> CancelReason | None:
        """The run's durable cancel as its last checkpoint write reported it (no I/O; None
        from a store that does not note them: see `notes_cancels`)."""
        return None

    def load(self, run_id: str) -> RunSnapshot:
        """The state the run ended or paused in (`RunSnapshot`).

        Raises:
            RunNotFound: no such run.
        """
        from tether.errors import RunNotFound

        info = self.get_run(run_id)
        if info is None:
            raise RunNotFound(run_id)
        checkpoint = None
        if info.checkpoint_id is not None and info.thread_id is not None:
            ns = str(info.metadata.get("checkpoint_ns", ""))
            checkpoint = self.get_checkpoint(info.thread_id, ns, info.checkpoint_id)
        return snapshot(info, checkpoint)

    # -- async twins --------------------------------------------------------------------------

    async def acreate_run(self, info: RunInfo) -> RunInfo:
        """Async twin of `create_run`.

        Cancellation:
            One transaction: cancelled before it commits, nothing is recorded.
        """
        return self.create_run(info)

    async def aget_run(self, run_id: str) -> RunInfo | None:
        """Async twin of `get_run`.

        Cancellation:
            Safe: it only reads.
        """
        return self.get_run(run_id)

    async def alist_runs(self, *, thread_id: str | None = None,
                         status: RunStatus | str | None = None,
                         limit: int | None = None) -> list[RunInfo]:
        """Async twin of `list_runs`.

        Cancellation:
            Safe: it only reads.
        """
        return self.list_runs(thread_id=thread_id, status=status, limit=limit)

    async def amark_running(self, run_id: str, events: Sequence[RunEvent] = ()) -> RunInfo | None:
        """Async twin of `mark_running`.

        Cancellation:
            One transaction: cancelled before it commits, the run has not started.
        """
        return self.mark_running(run_id, events)

    async def arequest_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        """Async twin of `request_cancel`.

        Cancellation:
            One transaction; safe to retry: a repeat returns the first request's receipt.
        """
        return self.request_cancel(run_id, reason)

    async def arequest_cancels(self, requests: Sequence[tuple[str, CancelReason]],
                               ) -> list[tuple[RunInfo, bool] | Exception]:
        """`arequest_cancel` for many runs: each answer, or that run's own error, in order
        (one transaction where the backend can; this default asks for all at once).

        Cancellation:
            Each request is durable once answered. Safe to retry: a repeat returns the receipt.
        """
        return list(await asyncio.gather(*(_answer(self.arequest_cancel(run_id, reason))
                                           for run_id, reason in requests)))

    async def afinish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        """Async twin of `finish_run`.

        Cancellation:
            One transaction, committed whole or not at all; the runs layer calls it shielded.
        """
        return self.finish_run(run_id, finish)

    async def aappend_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Async twin of `append_events`.

        Cancellation:
            One transaction: cancelled before it commits, nothing is appended.
        """
        self.append_events(run_id, events)

    async def aevents(self, run_id: str) -> list[RunEvent]:
        """Async twin of `events`.

        Cancellation:
            Safe: it only reads.
        """
        return self.events(run_id)

    async def aload(self, run_id: str) -> RunSnapshot:
        """Async twin of `load`.

        Cancellation:
            Safe: it only reads.
        """
        return self.load(run_id)

    async def aput_checkpoint(self, record: CheckpointRecord) -> None:
        """Async twin of `put_checkpoint`.

        Cancellation:
            One transaction: the checkpoint is stored whole or not at all.
        """
        self.put_checkpoint(record)

    async def aput_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Async twin of `put_checkpoints`.

        Cancellation:
            As `put_checkpoints`: in tether's stores one transaction, all stored or none.
        """
        for record in records:
            await self.aput_checkpoint(record)

    async def aput_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                          writes: Sequence[WriteRecord]) -> None:
        """Async twin of `put_writes`.

        Cancellation:
            One transaction; safe to retry (an ordinary write is stored once).
        """
        self.put_writes(thread_id, ns, checkpoint_id, writes)

    async def aget_checkpoint(self, thread_id: str, ns: str = "",
                              checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        """Async twin of `get_checkpoint`.

        Cancellation:
            Safe: it only reads.
        """
        return self.get_checkpoint(thread_id, ns, checkpoint_id)

    # Reads the server makes on its loop, one per request: a store whose reads block
    # overrides these too.

    async def aget_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                          channel: str) -> tuple[WriteRecord, ...]:
        """Async twin of `get_writes`.

        Cancellation:
            Safe: it only reads.
        """
        return self.get_writes(thread_id, ns, checkpoint_id, channel)

    async def aget_thread(self, thread_id: str) -> ThreadRecord | None:
        """Async twin of `get_thread`.

        Cancellation:
            Safe: it only reads.
        """
        return self.get_thread(thread_id)

    async def asearch_threads(self, *, metadata: dict[str, Any] | None = None,
                              ids: Collection[str] | None = None, sort_by: str = "updated_at",
                              ascending: bool = False, limit: int = 10,
                              offset: int = 0) -> list[ThreadRecord]:
        """Async twin of `search_threads`.

        Cancellation:
            Safe: it only reads.
        """
        return self.search_threads(metadata=metadata, ids=ids, sort_by=sort_by,
                                   ascending=ascending, limit=limit, offset=offset)

    async def acopy_thread(self, source: str, target: str) -> None:
        """Async twin of `copy_thread`.

        Cancellation:
            One transaction: all of the thread is copied, or none of it.
        """
        self.copy_thread(source, target)

    async def acount_threads(self, *, metadata: dict[str, Any] | None = None,
                             ids: Collection[str] | None = None) -> int:
        """Async twin of `count_threads`.

        Cancellation:
            Safe: it only reads.
        """
        return self.count_threads(metadata=metadata, ids=ids)

    async def alist_checkpoints(self, thread_id: str, ns: str = "", *, before: str | None = None,
                                limit: int | None = None) -> AsyncIterator[StoredCheckpoint]:
        """Async twin of `list_checkpoints`: the same checkpoints, newest first, read as the
        iterator advances (a store with I/O reads them a page at a time).

        Cancellation:
            Safe: it only reads; stopping early reads no further.
        """
        for stored in self.list_checkpoints(thread_id, ns, before=before, limit=limit):
            yield stored

    async def adelete_run_checkpoints(self, run_id: str) -> None:
        """Async twin of `delete_run_checkpoints`.

        Cancellation:
            One transaction; safe to retry.
        """
        self.delete_run_checkpoints(run_id)

    # Thread and run writes: one transaction each, made on loops that serve many callers (the
    # server's), so a store whose writes block (a disk, a network) overrides these.

    async def aput_thread(self, thread_id: str,
                          metadata: dict[str, Any] | None = None) -> ThreadRecord:
        """Async twin of `put_thread`.

        Cancellation:
            One transaction: cancelled before it commits, the thread is unchanged; safe to
            retry (the metadata is merged again, to the same result).
        """
        return self.put_thread(thread_id, metadata)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async twin of `delete_thread`.

        Cancellation:
            One transaction: the thread goes whole or stays whole; safe to retry.
        """
        self.delete_thread(thread_id)

    async def adelete_run(self, run_id: str) -> bool:
        """Async twin of `delete_run` (the same answer, the same `RunError` for a run in
        flight).

        Cancellation:
            One transaction: the run goes whole or stays; safe to retry (a repeat is False).
        """
        return self.delete_run(run_id)

    def find_orphans(self, owner_alive: Callable[[str], bool] | None = None) -> list[RunInfo]:
        """Runs left `pending`/`running`/`cancelling` by a process that died.

        A store that only lives in one process has none.
        """
        del owner_alive
        return []

    def reconcile_orphans(self, owner_alive: Callable[[str], bool] | None = None
                          ) -> list[RunInfo]:
        """End orphaned runs as `error` (resumable), with an `orphan` event; returns them."""
        del owner_alive
        return []


BaseCheckpointSaver = CheckpointStore
"""LangGraph's name for the checkpointer base class, for type hints and `isinstance` checks.
tether's protocol is its own (runs, checkpoints, pending writes, the audit log): a LangGraph
saver subclass (`get_tuple`, `put`, `list`...) does not plug into it."""

async def _answer(call: Awaitable[tuple[RunInfo, bool]]) -> tuple[RunInfo, bool] | Exception:
    try:
        return await call
    except Exception as exc:  # noqa: BLE001 - that run's answer
        return exc


__all__ = [
    "BaseCheckpointSaver",
    "CheckpointRecord",
    "CheckpointStore",
    "FinishResult",
    "RunFinish",
    "StoredCheckpoint",
    "ThreadRecord",
    "WriteRecord",
]
