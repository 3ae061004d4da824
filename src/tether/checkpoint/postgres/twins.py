"""The async twins of `PostgresSaver`: the same operations as its sync methods (`ops.py`), run
with real async I/O on the calling loop's `AsyncConnectionPool`.

The calls a running run makes (reading its record and checkpoints, marking it running, storing
its checkpoints and writes, its end) run once more on a fresh connection when theirs was lost
(`Database.arun_again`): they are idempotent or conditional, and a Postgres restart must not
fail every run in flight.

Cancellation (every method): cancelled while a statement is in flight, psycopg cancels it on the
server and the connection rolls back; each call is committed whole or not at all, and safe to
retry. None of them is shielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING, Any

from tether.checkpoint import owner
from tether.checkpoint.base import (
    CheckpointRecord,
    FinishResult,
    RunFinish,
    StoredCheckpoint,
    ThreadRecord,
    WriteRecord,
)
from tether.checkpoint.paging import apages
from tether.checkpoint.postgres import checkpoints, rows, runs, threads
from tether.checkpoint.serde import Serializer
from tether.checkpoint.snapshot import snapshot
from tether.checkpoint.store_records import ThreadQuery
from tether.errors import RunNotFound
from tether.types import CancelReason, RunEvent, RunInfo, RunSnapshot, RunStatus

if TYPE_CHECKING:
    from tether.checkpoint.postgres.connection import Database
    from tether.checkpoint.postgres.leases import Leases


class AsyncTwins:
    """`a*` methods over `_db`, `leases` and `serde` (provided by `PostgresSaver`)."""

    _db: Database
    leases: Leases
    serde: Serializer

    async def acreate_run(self, info: RunInfo) -> RunInfo:
        """Async twin of `create_run`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun(runs.create(info, owner.current()))

    async def acancel_requests(self, run_ids: Sequence[str]) -> dict[str, CancelReason]:
        """Async twin of `cancel_requests` (the poll of a process's live runs: real async
        I/O, never a blocking call on the loop).

        Cancellation:
            Safe: it only reads.
        """
        return await self._db.arun(runs.cancel_requests(run_ids)) if run_ids else {}

    async def aget_run(self, run_id: str) -> RunInfo | None:
        """Async twin of `get_run`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun_again(lambda: runs.get(run_id))

    async def alist_runs(self, *, thread_id: str | None = None,
                         status: RunStatus | str | None = None,
                         limit: int | None = None) -> list[RunInfo]:
        """Async twin of `list_runs`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun(runs.listing(thread_id, status, limit))

    async def amark_running(self, run_id: str, events: Sequence[RunEvent] = ()) -> RunInfo | None:
        """Async twin of `mark_running`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        who, epoch = owner.current(), self.leases.epoch(run_id)
        return await self.leases.achecked(run_id, self._db.arun_again(
            lambda: runs.mark_running(run_id, events, who, epoch)))

    async def arequest_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        """Async twin of `request_cancel`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun_again(lambda: runs.request_cancel(run_id, reason))

    async def afinish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        """Async twin of `finish_run`.

        Cancellation:
            The run's one transaction is rolled back whole if cancelled before its commit;
            safe to retry (a committed end refuses a second one).
        """
        # Once more on a fresh connection if the first was lost: the end of a run is the one
        # write a lost connection must not cost (the run would stay `running`).
        epoch = self.leases.epoch(run_id)
        done = await self.leases.achecked(run_id, self._db.arun_again(
            lambda: runs.finish_last(run_id, finish, self.serde, epoch), transaction=True))
        self.leases.forget_note(run_id)
        return done

    async def aappend_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Async twin of `append_events`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        op = runs.append_events(run_id, events, self.leases.epoch(run_id))
        await self.leases.achecked(run_id, self._db.arun(op))

    async def aevents(self, run_id: str) -> list[RunEvent]:
        """Async twin of `events`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun(runs.events(run_id))

    async def aload(self, run_id: str) -> RunSnapshot:
        """Async twin of `load`.

        Raises:
            RunNotFound: no such run.

        Cancellation:
            Safe: it only reads.
        """
        info = await self.aget_run(run_id)
        if info is None:
            raise RunNotFound(run_id)
        checkpoint = None
        if info.checkpoint_id is not None and info.thread_id is not None:
            ns = str(info.metadata.get("checkpoint_ns", ""))
            checkpoint = await self.aget_checkpoint(info.thread_id, ns, info.checkpoint_id)
        return snapshot(info, checkpoint)

    async def aput_checkpoint(self, record: CheckpointRecord) -> None:
        """Async twin of `put_checkpoint`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        run_id = record.run_id
        params = checkpoints.put_params(record, self.serde, self.leases.epoch(run_id))
        reason = await self.leases.achecked(run_id, self._db.arun_again(
            lambda: checkpoints.put(record, params)))
        self.leases.note(run_id, reason)

    async def aput_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Async twin of `put_checkpoints`.

        Cancellation:
            As `aput_checkpoint`: one transaction, all of them committed or none.
        """
        if records:
            run_id, params = self._chain_params(records)
            self.leases.note(run_id, await self.leases.achecked(run_id, self._db.arun_again(
                lambda: checkpoints.put_chain(records, params), transaction=True)))

    def _chain_params(self, records: Sequence[CheckpointRecord]
                      ) -> tuple[str | None, list[dict[str, Any]]]:
        """The run of `records` (one run's) and each one's statement parameters."""
        run_id = records[-1].run_id
        epoch = self.leases.epoch(run_id)
        return run_id, [checkpoints.put_params(r, self.serde, epoch) for r in records]

    async def aput_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                          writes: Sequence[WriteRecord]) -> None:
        """Async twin of `put_writes`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        params = rows.write_params(writes, self.serde)
        run_id, epoch = self.leases.of_thread(thread_id)
        await self.leases.achecked(run_id, self._db.arun_again(lambda: checkpoints.put_writes(
            thread_id, ns, checkpoint_id, params, run_id=run_id, epoch=epoch)))

    async def aget_checkpoint(self, thread_id: str, ns: str = "",
                              checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        """Async twin of `get_checkpoint`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun_again(
            lambda: checkpoints.get(thread_id, ns, checkpoint_id, self.serde))

    async def aget_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                          channel: str) -> tuple[WriteRecord, ...]:
        """Async twin of `get_writes`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun_again(
            lambda: checkpoints.writes(thread_id, ns, checkpoint_id, channel, self.serde))

    async def aget_thread(self, thread_id: str) -> ThreadRecord | None:
        """Async twin of `get_thread`: the same one statement.

        Cancellation:
            Safe: it only reads.
        """
        return await self._db.arun(threads.get(thread_id))

    async def asearch_threads(self, *, metadata: dict[str, Any] | None = None,
                              ids: Collection[str] | None = None, sort_by: str = "updated_at",
                              ascending: bool = False, limit: int = 10,
                              offset: int = 0) -> list[ThreadRecord]:
        """Async twin of `search_threads`: the same one statement.

        Cancellation:
            Safe: it only reads.
        """
        return await self._db.arun(threads.search(ThreadQuery.of(
            metadata=metadata, ids=ids, sort_by=sort_by, ascending=ascending, limit=limit,
            offset=offset)))

    async def acount_threads(self, *, metadata: dict[str, Any] | None = None,
                             ids: Collection[str] | None = None) -> int:
        """Async twin of `count_threads`: the same one statement.

        Cancellation:
            Safe: it only reads.
        """
        return await self._db.arun(threads.count(ThreadQuery.of(metadata=metadata, ids=ids)))

    async def alist_checkpoints(self, thread_id: str, ns: str = "", *, before: str | None = None,
                                limit: int | None = None) -> AsyncIterator[StoredCheckpoint]:
        """Async twin of `list_checkpoints`: the same pages, each one statement.

        Cancellation:
            Safe: it only reads; stopping early reads no further page.
        """
        async def fetch(after: str | None, count: int) -> list[StoredCheckpoint]:
            return await self._db.arun(checkpoints.page(thread_id, ns, after, count, self.serde))

        async for stored in apages(fetch, before, limit):
            yield stored

    async def adelete_run_checkpoints(self, run_id: str) -> None:
        """Async twin of `delete_run_checkpoints`.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        await self._db.arun(checkpoints.delete_of_run(run_id), transaction=True)

    async def aput_thread(self, thread_id: str,
                          metadata: dict[str, Any] | None = None) -> ThreadRecord:
        """Async twin of `put_thread`: the same one statement.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun(threads.put(thread_id, metadata))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async twin of `delete_thread`: the same one statement.

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        await self._db.arun(threads.delete(thread_id))

    async def acopy_thread(self, source: str, target: str) -> None:
        """Async twin of `copy_thread`: the same two statements, in one transaction.

        Cancellation:
            Committed whole or not at all (see the module docstring).
        """
        await self._db.arun(threads.copy(source, target), transaction=True)

    async def adelete_run(self, run_id: str) -> bool:
        """Async twin of `delete_run`: the same statement and answer.

        Raises:
            RunError: the run is still in flight (nothing is deleted).

        Cancellation:
            Committed whole or not at all; safe to retry (see the module docstring).
        """
        return await self._db.arun(runs.delete(run_id))


__all__ = ["AsyncTwins"]
