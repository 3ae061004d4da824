"""`SqliteSaver`: the store protocol in one SQLite file, the embedded default."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from types import TracebackType
from typing import Any

from tether.checkpoint import owner
from tether.checkpoint.base import (
    CheckpointRecord,
    CheckpointStore,
    FinishResult,
    RunFinish,
    StoredCheckpoint,
    ThreadRecord,
    WriteRecord,
)
from tether.checkpoint.opening import Opening
from tether.checkpoint.serde import Serializer
from tether.checkpoint.sqlite import _sql, recovery, rows, runs, schema, threads
from tether.checkpoint.sqlite.checkpoints import Checkpoints, Prepared
from tether.checkpoint.sqlite.connection import Connection, file_of
from tether.checkpoint.sqlite.reads import AsyncReads
from tether.checkpoint.sqlite.record_writes import AsyncRecordWrites
from tether.checkpoint.sqlite.writer import Writer
from tether.checkpoint.store_records import ThreadQuery, write_records
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus, utcnow


class SqliteSaver(AsyncReads, AsyncRecordWrites, CheckpointStore):
    """A complete store in one SQLite file: runs, audit log, checkpoints and pending writes.

    Usable from sync and async code, from several threads, and from several processes on one
    machine. Its calls are short local transactions (tens of microseconds).

    **Durability.** The file is in WAL mode. With `synchronous="normal"` (the default) a commit
    is durable against the crash of the process, including `SIGKILL`: SQLite has written it to
    the WAL before `COMMIT` returns, and the next opener replays it. Only a power loss or an OS
    crash can take back the last commits (never corrupt the file); `synchronous="full"` syncs
    the WAL on every commit and keeps them too, at the price of an `fsync` per superstep.

    **Concurrency.** One connection, behind a lock, serves every thread's writes (see
    `connection.py` for the measurement behind that choice); reads of a file have a second,
    read-only one, so they never wait for a write transaction. Writes are `BEGIN IMMEDIATE`
    transactions; other processes wait for the file's write lock up to `busy_timeout`. WAL
    checkpoints run in a helper thread (`wal.py`), not inside a superstep's commit.

    **Crash recovery.** Each run records the process that drives it (`owner`). When the file is
    opened (`reconcile=True`) or `reconcile_orphans()` is called, a run left `pending`,
    `running` or `cancelling` by a dead process of this host ends as `error` ("orphaned: ...")
    with an `orphan` event, keeping its last checkpoint, so `graph.resume(run_id)` continues it.

    **Off the event loop.** The async methods never run SQLite on the calling loop: they hand
    their writes to the store's writer thread (`writer.py`), which commits the transactions of
    concurrent callers together (a group commit), and their reads to its reader thread
    (`reads.py`), so a read never queues behind writes; a slow disk or a busy file stalls the
    calls that wait for it, not every task of the loop. The sync methods
    run in the calling thread, as ever, and so do async calls made on a loop that serves one
    sync caller only (tether's private loop of `graph.invoke` from sync code; see
    `tether.checkpoint.loops`): nobody else waits on that loop, and a hop to the writer thread
    and back per checkpoint would cost more than the SQLite work.

    **Cancels from elsewhere.** A root checkpoint's transaction also reads its run's cancel
    request (`notes_cancels`), so a run checkpointing every superstep learns of a cancel
    committed by another process at its next step boundary without a read of its own.

    **Cancellation.** An async call, once handed to the writer thread, is one transaction,
    committed whole or not at all, and returns its outcome; a cancel that arrives meanwhile is
    delivered at the caller's next await, as when the call ran inline (see
    `tether.cancel.whole`). Each call is safe to retry (checkpoint ids and ordinary pending
    writes are idempotent; a repeated cancel request returns the first).

    Do not share one instance across `os.fork()`; open the file again in the child.

    Args:
        path: the database file (created when missing; its directory must exist), or
            `":memory:"` for a private in-memory database, or a `sqlite3` connection (as
            LangGraph's `SqliteSaver(conn)`), whose file is opened with tether's own
            connection.
        serde: the serializer for state values.
        synchronous: `"normal"` (survives process crashes) or `"full"` (also power loss).
        busy_timeout: seconds to wait for another process's write lock before failing.
        reconcile: call `reconcile_orphans()` on open.

    Raises:
        FileNotFoundError: the directory of `path` does not exist.
        CorruptStoreError: `path` is not a SQLite database, or not a tether one.
        SchemaVersionError: `path` was written by a newer tether.
    """

    shared = True  # other processes may open the same file and cancel its runs
    notes_cancels = True  # a checkpoint's transaction reads its run's cancel request
    commits_in_order = True  # every async write goes through the one writer thread's queue

    def __init__(self, path: str | os.PathLike[str] | sqlite3.Connection, *,
                 serde: Serializer | None = None,
                 synchronous: schema.Synchronous = "normal", busy_timeout: float = 5.0,
                 reconcile: bool = True) -> None:
        self.path = file_of(path)
        self.serde = serde or Serializer()
        self._db = Connection(self.path, synchronous=synchronous, busy_timeout=busy_timeout)
        self._writer = Writer(self._db)
        self._reads = Writer(self._db, role="reader")
        self._checkpoints = Checkpoints(self.serde)
        # Durable cancels of runs that their last checkpoint's transaction found (run id ->
        # the reason as stored); dropped when the run finishes.
        self._noted: dict[str, str] = {}
        if reconcile:
            self.reconcile_orphans()

    @classmethod
    def from_conn_string(cls, conn_string: str, **options: Any) -> Opening[SqliteSaver]:
        """Open a store for a `with` (or `async with`) block and close it after, as LangGraph's.

        Args:
            conn_string: the database path (or `":memory:"`).
            **options: as for `SqliteSaver`.
        """
        return Opening(lambda: cls(conn_string, **options))

    def setup(self) -> None:
        """Make the tables if missing: done when the store is opened (kept for LangGraph's
        callers, who call it once before use)."""

    def close(self) -> None:
        """Close the connection (idempotent). Committed data is already in the file."""
        self._writer.close()
        self._reads.close()
        self._db.close()

    def __enter__(self) -> SqliteSaver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> SqliteSaver:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteSaver({self.path!r})"

    # -- runs -----------------------------------------------------------------------------

    def create_run(self, info: RunInfo) -> RunInfo:
        """Record a new run, owned by this process.

        Raises:
            ValueError: a run with this id exists.
        """
        return self._db.run(runs.create(info, owner.current(), utcnow()))

    def get_run(self, run_id: str) -> RunInfo | None:
        row = self._db.one(_sql.GET_RUN, (run_id,))
        return rows.run_info(row) if row is not None else None

    def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, CancelReason]:
        if not run_ids:
            return {}
        found = self._db.all(_sql.cancel_requests(len(run_ids)), tuple(run_ids))
        return {run_id: CancelReason.from_dict(json.loads(reason)) for run_id, reason in found}

    def cancel_noted(self, run_id: str) -> CancelReason | None:
        """The run's durable cancel as its last checkpoint's transaction read it (no I/O)."""
        reason = self._noted.get(run_id)
        return CancelReason.from_dict(json.loads(reason)) if reason is not None else None

    def _note(self, record: CheckpointRecord, reason: str | None) -> None:
        if reason is not None and record.run_id is not None:
            self._noted[record.run_id] = reason

    def list_runs(self, *, thread_id: str | None = None, status: RunStatus | str | None = None,
                  limit: int | None = None) -> list[RunInfo]:
        sql = _sql.list_runs(by_thread=thread_id is not None, by_status=status is not None)
        params: list[Any] = [p for p in (thread_id, status) if p is not None]
        params.append(-1 if limit is None else limit)
        return [rows.run_info(row) for row in self._db.all(sql, params)]

    def mark_running(self, run_id: str, events: Sequence[RunEvent] = ()) -> RunInfo | None:
        """`pending`/`interrupted` → `running`, now owned by this process.

        Raises:
            RunNotFound: no such run.
        """
        return self._db.run(runs.mark_running(run_id, events, owner.current(), utcnow()))

    def request_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        """Record a cancel once; see `CheckpointStore.request_cancel`.

        Raises:
            RunNotFound: no such run.
        """
        return self._db.run(runs.request_cancel(run_id, reason))

    def finish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        """Commit a run's end in one transaction; see `RunFinish`.

        Raises:
            RunNotFound: no such run.
            TerminalStatusError: the run has ended and `unless_cancel_requested` is False.
            CheckpointNotFound: `finish.writes` name a checkpoint that does not exist.
            SerializationError: a value cannot be stored.
        In every case nothing is changed.
        """
        checkpoints = self._checkpoints
        # Serialized before the transaction, which then cannot fail half-way on a value.
        prepared = [checkpoints.prepare(record) for record in finish.checkpoints]
        writes = checkpoints.dump_writes(finish.writes)
        result = self._db.run(runs.finish(run_id, finish, checkpoints, prepared=prepared,
                                          writes=writes, now=utcnow()))
        self._noted.pop(run_id, None)
        if result.applied:
            for record, ready in zip(finish.checkpoints, prepared, strict=True):
                checkpoints.remember(record, ready)
        return result

    def append_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        self._db.run(runs.append_events(rows.event_params(run_id, events)))

    def events(self, run_id: str) -> list[RunEvent]:
        return [rows.event(row) for row in self._db.all(_sql.LIST_EVENTS, (run_id,))]

    # -- threads ----------------------------------------------------------------------------

    def put_thread(self, thread_id: str, metadata: dict[str, Any] | None = None) -> ThreadRecord:
        """Create a thread, or merge `metadata` into an existing one's (a shallow merge)."""
        return self._db.run(threads.put(thread_id, metadata))

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread's record; one with runs or checkpoints but no record gets a bare one."""
        return threads.get(self._db, thread_id)

    def search_threads(self, *, metadata: dict[str, Any] | None = None,
                       ids: Collection[str] | None = None, sort_by: str = "updated_at",
                       ascending: bool = False, limit: int = 10,
                       offset: int = 0) -> list[ThreadRecord]:
        """Recorded threads whose metadata has every given key and value (and whose id is one
        of `ids`), by default latest first."""
        return threads.search(self._db, ThreadQuery.of(
            metadata=metadata, ids=ids, sort_by=sort_by, ascending=ascending, limit=limit,
            offset=offset))

    def count_threads(self, *, metadata: dict[str, Any] | None = None,
                      ids: Collection[str] | None = None) -> int:
        """How many recorded threads match: one statement."""
        return threads.count(self._db, ThreadQuery.of(metadata=metadata, ids=ids))

    # -- checkpoints ------------------------------------------------------------------------

    def put_checkpoint(self, record: CheckpointRecord) -> None:
        """Store one checkpoint in one short transaction, and point its run at it.

        Raises:
            SerializationError: a value cannot be stored (nothing is changed).
        """
        prepared = self._checkpoints.prepare(record)
        reason = self._db.run(self._checkpoints.insert_noting(record, prepared))
        self._checkpoints.remember(record, prepared)
        self._note(record, reason)

    def put_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Store checkpoints in their order in one transaction (see `put_checkpoint`).

        Raises:
            SerializationError: a value cannot be stored (nothing is changed).
        """
        if records:
            prepared = self._checkpoints.prepare_chain(records)
            self._stored(records, prepared, self._db.run(
                self._checkpoints.insert_chain(records, prepared)))

    def _stored(self, records: Sequence[CheckpointRecord], prepared: Sequence[Prepared],
                reason: str | None) -> None:
        """After the commit of `records`: the last is the next one's base, and its note kept."""
        self._checkpoints.remember(records[-1], prepared[-1])
        self._note(records[-1], reason)

    def put_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   writes: Sequence[WriteRecord]) -> None:
        """Attach pending writes to a checkpoint: an ordinary write (idx >= 0) is stored once,
        a control write (idx < 0) replaces the task's previous one.

        Raises:
            CheckpointNotFound: no such checkpoint (nothing is changed).
            SerializationError: a value cannot be stored (nothing is changed).
        """
        dumped = self._checkpoints.dump_writes(writes)
        self._db.run(self._checkpoints.insert_writes(thread_id, ns, checkpoint_id, dumped))

    def get_checkpoint(self, thread_id: str, ns: str = "",
                       checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        sql = _sql.GET_LATEST_CHECKPOINT if checkpoint_id is None else _sql.GET_CHECKPOINT
        params = (thread_id, ns) if checkpoint_id is None else (thread_id, ns, checkpoint_id)
        with self._db.read() as conn:
            row = conn.execute(sql, params).fetchone()
            if row is None:
                return None
            parts = self._checkpoints.read(conn, row)
        return self._checkpoints.build(row, parts)

    def get_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   channel: str) -> tuple[WriteRecord, ...]:
        found = self._db.all(_sql.LIST_CHANNEL_WRITES, (thread_id, ns, checkpoint_id, channel))
        return write_records(thread_id, checkpoint_id, found, self.serde)

    def list_checkpoints(self, thread_id: str, ns: str = "", *, before: str | None = None,
                         limit: int | None = None) -> Iterator[StoredCheckpoint]:
        """A thread's checkpoints, newest first; values are read as the iterator advances."""
        sql = _sql.list_checkpoints(before=before is not None)
        params: list[Any] = [thread_id, ns]
        if before is not None:
            params.append(before)
        params.append(-1 if limit is None else limit)
        for row in self._db.all(sql, params):
            with self._db.read() as conn:
                parts = self._checkpoints.read(conn, row)
            yield self._checkpoints.build(row, parts)

    def list_threads(self, limit: int | None = None) -> list[str]:
        found = self._db.all(_sql.LIST_THREADS, (-1 if limit is None else limit,))
        return [thread_id for (thread_id,) in found]

    def delete_thread(self, thread_id: str) -> None:
        self._db.run(threads.delete(thread_id))
        self._checkpoints.forget(lambda key, _head: key[0] == thread_id)

    def delete_run(self, run_id: str) -> bool:
        return self._db.run(runs.delete(run_id))

    def copy_thread(self, source: str, target: str) -> None:
        self._db.run(threads.copy(source, target))

    def delete_run_checkpoints(self, run_id: str) -> None:
        with self._db.write() as conn:
            known = conn.execute(_sql.RUN_EXISTS, (run_id,)).fetchone() is not None
            conn.execute(_sql.DELETE_RUN_CHECKPOINTS if known
                         else _sql.DELETE_UNKNOWN_RUN_CHECKPOINTS, (run_id,))
            self._checkpoints.forget(lambda _key, head: head.run_id == run_id)

    # -- the async checkpoint writes, in the writer thread (runs and threads: `record_writes.py`;
    # reads: `reads.py`) -------------------------------------------------------------------

    async def afinish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        """Async twin of `finish_run`, run by the writer thread (values are serialized first,
        in the caller).

        Cancellation:
            Deferred: committed whole or not at all; the runs layer calls it shielded too.
        """
        checkpoints = self._checkpoints
        prepared = [checkpoints.prepare(record) for record in finish.checkpoints]
        writes = checkpoints.dump_writes(finish.writes)

        def remember(result: FinishResult) -> None:
            self._noted.pop(run_id, None)
            if result.applied:
                for record, ready in zip(finish.checkpoints, prepared, strict=True):
                    checkpoints.remember(record, ready)

        return await self._writer.transaction(
            lambda: runs.finish(run_id, finish, checkpoints, prepared=prepared, writes=writes,
                                now=utcnow()), remember)

    async def aput_checkpoint(self, record: CheckpointRecord) -> None:
        """Async twin of `put_checkpoint`, run by the writer thread (values are serialized
        first, in the caller).

        Cancellation:
            Deferred: the checkpoint is stored whole or not at all, and the call returns once
            it is committed.
        """
        checkpoints = self._checkpoints
        prepared = checkpoints.prepare(record)

        def remember(reason: str | None) -> None:  # (`_stored` would cost ~2k instructions)
            checkpoints.remember(record, prepared)
            self._note(record, reason)

        await self._writer.transaction(lambda: checkpoints.insert_noting(record, prepared),
                                       remember)

    async def aput_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Async twin of `put_checkpoints`, run by the writer thread.

        Cancellation:
            Deferred: all of them are stored or none, and the call returns once committed.
        """
        if records:
            prepared = self._checkpoints.prepare_chain(records)
            await self._writer.transaction(
                lambda: self._checkpoints.insert_chain(records, prepared),
                functools.partial(self._stored, records, prepared))

    async def aput_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                          writes: Sequence[WriteRecord]) -> None:
        """Async twin of `put_writes`, run by the writer thread.

        Cancellation:
            Deferred: one transaction, whole; safe to retry.
        """
        dumped = self._checkpoints.dump_writes(writes)
        await self._writer.transaction(
            lambda: self._checkpoints.insert_writes(thread_id, ns, checkpoint_id, dumped))

    # -- crash recovery ---------------------------------------------------------------------

    def find_orphans(self, owner_alive: recovery.OwnerAlive | None = None) -> list[RunInfo]:
        """Runs left `pending`/`running`/`cancelling` by a process that has died.

        Args:
            owner_alive: decides whether an owner is alive; by default `owner.is_alive`, which
                declares dead only a process of this host that is certainly gone.
        """
        return [info for _owner, info in recovery.find(self._db, owner_alive)]

    def reconcile_orphans(self, owner_alive: recovery.OwnerAlive | None = None) -> list[RunInfo]:
        """End every orphaned run as `error`, with an `orphan` event; return them, ended.

        The error reads "orphaned: the process running it died (pid N)". The run keeps its
        last checkpoint, so `graph.resume(run_id)` continues it. Safe to call from several
        processes at once: each run is ended once.

        Args:
            owner_alive: as for `find_orphans`.
        """
        return recovery.reconcile(self._db, owner_alive)


__all__ = ["SqliteSaver"]
