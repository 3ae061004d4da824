"""`PostgresSaver`: the store protocol in PostgreSQL, for many processes and many workers."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

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
from tether.checkpoint.postgres import checkpoints, rows, runs, threads
from tether.checkpoint.postgres import schema as versions
from tether.checkpoint.postgres.connection import Database, connection_kwargs, redacted
from tether.checkpoint.postgres.leases import Leases
from tether.checkpoint.postgres.twins import AsyncTwins
from tether.checkpoint.serde import Serializer
from tether.checkpoint.store_records import ThreadQuery
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus

if TYPE_CHECKING:
    from tether.checkpoint.postgres.queue import RunQueue

logger = logging.getLogger("tether.checkpoint.postgres")


class PostgresSaver(AsyncTwins, CheckpointStore):
    """A complete store in a PostgreSQL database: runs (and the run queue), audit log,
    checkpoints, pending writes and threads.

    Usable from sync and async code and from any number of processes and machines. The sync
    methods use a `psycopg_pool.ConnectionPool`; the async twins (`aput_checkpoint`...) do real
    async I/O on an `AsyncConnectionPool` of the calling event loop. A superstep's checkpoint is
    one statement (one round trip): the checkpoint, the blobs of the channels that changed, and
    the run's pointer to it.

    **Workers.** Runs queued with `store.queue` are claimed by `tether worker` processes under
    leases with fencing epochs. A worker calls `bind_lease(run_id, epoch)`; from then on every
    write this handle makes for that run (`put_checkpoint`, `put_writes` on its thread,
    `finish_run`, `append_events`, `mark_running`) takes effect only while the run's epoch is
    still `epoch`, and raises `StaleLeaseError` (logged) once another worker has taken it over.

    **Enforcement.** A terminal run status is final in the database itself (a trigger), and
    every status change is a conditional statement. A cancel request commits with
    `NOTIFY tether_cancel, '<run_id>'` (a trigger), which workers `LISTEN` for.

    **Cancellation.** The async twins are not shielded: cancelled mid-statement, psycopg cancels
    the statement and the connection rolls back, so each call is committed whole or not at all,
    and safe to retry (checkpoint ids and ordinary pending writes are idempotent; a repeated
    cancel request returns the first).

    Args:
        conninfo: a libpq connection string or `postgresql://` URL.
        schema: the schema holding tether's tables (created when missing); None uses the
            connection's `search_path`.
        serde: the serializer for state values.
        min_size, max_size: connections of the sync pool (the sync methods', and those of
            runs driven by a sync `invoke`, whose private loop uses no async pool).
        async_size: connections of the async pool of each event loop that uses the store.
        connect_timeout: seconds to wait for the first connection.
        prepare_threshold: psycopg's automatic server-side prepare (None: never, e.g. behind
            a pgbouncer in transaction mode).
        application_name: shown in `pg_stat_activity`.

    Raises:
        StoreError: the server cannot be reached.
        SchemaVersionError: the schema was written by a newer tether.
        CorruptStoreError: the schema holds same-named tables that are not tether's.
    """

    has_workers = True
    shared = True  # runs here may be cancelled by any process that reaches the database
    notes_cancels = True  # a checkpoint statement returns its run's cancel reason

    def __init__(self, conninfo: str, *, schema: str | None = None,
                 serde: Serializer | None = None, min_size: int = 1, max_size: int = 10,
                 async_size: int = 4, connect_timeout: float = 10.0,
                 prepare_threshold: int | None = 5, application_name: str = "tether") -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.serde = serde or Serializer()
        kwargs = connection_kwargs(conninfo, schema=schema, application_name=application_name,
                                   prepare_threshold=prepare_threshold)
        self._db = Database(conninfo, kwargs, min_size=min_size, max_size=max_size,
                            async_size=async_size, connect_timeout=connect_timeout)
        self.leases = Leases()
        where = f"{redacted(conninfo)} schema {schema or '(search_path)'}"
        try:
            found = self._db.run(versions.version())
            versions.check(found, where)
            if found < versions.LATEST_VERSION:
                self._db.run(versions.migrate(schema, where), transaction=True,
                             pipeline=False)
        except BaseException:
            self._db.close()
            raise
        self._queue: RunQueue | None = None

    @classmethod
    def from_conn_string(cls, conninfo: str, *, pipeline: bool = False,
                         **options: Any) -> Opening[Any]:
        """A `with` / `async with` block that opens the store and closes it at the end.

        `pipeline` is accepted for LangGraph's sake (tether pipelines its transactions).
        """
        del pipeline
        return Opening(lambda: cls(conninfo, **options))

    def setup(self) -> None:
        """Make the tables if missing: done when the store is opened (kept for LangGraph's
        callers, who call it once before use)."""

    @property
    def db(self) -> Database:
        """The store's connections (for the run queue and workers)."""
        return self._db

    @property
    def queue(self) -> RunQueue:
        """The run queue in this database."""
        if self._queue is None:
            from tether.checkpoint.postgres.queue import RunQueue

            self._queue = RunQueue(self)
        return self._queue

    def close(self) -> None:
        """Close the pools (idempotent). Committed data is in the database."""
        self._db.close()

    async def aclose(self) -> None:
        """Close the pools, awaiting those of this loop.

        Cancellation:
            Safe to retry.
        """
        await self._db.aclose()

    # -- leases -----------------------------------------------------------------------------

    def bind_lease(self, run_id: str, epoch: int, thread_id: str | None = None) -> None:
        """Fence this handle's writes for `run_id` with `epoch` (see the class docstring)."""
        self.leases.bind(run_id, epoch, thread_id)

    def release_lease(self, run_id: str) -> None:
        """Stop fencing `run_id` (the worker is done with it)."""
        self.leases.unbind(run_id)

    def cancel_requests(self, run_ids: Sequence[str]) -> dict[str, CancelReason]:
        """Which of these runs have a durable cancel request (one statement)."""
        return self._db.run(runs.cancel_requests(run_ids)) if run_ids else {}

    def cancel_noted(self, run_id: str) -> CancelReason | None:
        """A durable cancel of a run seen in the answer to one of its checkpoint writes."""
        return self.leases.noted(run_id)

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, info: RunInfo) -> RunInfo:
        """Record a new run, owned by this process.

        Raises:
            ValueError: a run with this id exists.
        """
        return self._db.run(runs.create(info, owner.current()))

    def get_run(self, run_id: str) -> RunInfo | None:
        # Read at every superstep of a run that polls for cancels: a lost connection is
        # replaced rather than failing the run.
        return self._db.run_again(lambda: runs.get(run_id))

    def list_runs(self, *, thread_id: str | None = None, status: RunStatus | str | None = None,
                  limit: int | None = None) -> list[RunInfo]:
        return self._db.run(runs.listing(thread_id, status, limit))

    def mark_running(self, run_id: str, events: Sequence[RunEvent] = ()) -> RunInfo | None:
        """`pending`/`interrupted` → `running`, now owned by this process.

        Raises:
            RunNotFound: no such run.
            StaleLeaseError: the run is bound to a lease that was taken over.
        """
        op = runs.mark_running(run_id, events, owner.current(), self.leases.epoch(run_id))
        return self.leases.checked(run_id, lambda: self._db.run(op))

    def request_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        """Record a cancel once (and notify workers); see `CheckpointStore.request_cancel`.

        Raises:
            RunNotFound: no such run.
        """
        return self._db.run(runs.request_cancel(run_id, reason))

    def finish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        """Commit a run's end in one transaction; see `RunFinish`.

        Raises:
            RunNotFound, TerminalStatusError, CheckpointNotFound, SerializationError: nothing
                is changed.
            StaleLeaseError: the run is bound to a lease that was taken over.
        """
        epoch = self.leases.epoch(run_id)
        done = self.leases.checked(run_id, lambda: self._db.run_again(
            lambda: runs.finish_last(run_id, finish, self.serde, epoch), transaction=True))
        self.leases.forget_note(run_id)
        return done

    def append_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        op = runs.append_events(run_id, events, self.leases.epoch(run_id))
        self.leases.checked(run_id, lambda: self._db.run(op))

    def events(self, run_id: str) -> list[RunEvent]:
        return self._db.run(runs.events(run_id))

    # -- threads ----------------------------------------------------------------------------

    def put_thread(self, thread_id: str, metadata: dict[str, Any] | None = None) -> ThreadRecord:
        """Create a thread, or merge `metadata` into an existing one's (a shallow merge)."""
        return self._db.run(threads.put(thread_id, metadata))

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread's record; one with runs or checkpoints but no record gets a bare one."""
        return self._db.run(threads.get(thread_id))

    def search_threads(self, *, metadata: dict[str, Any] | None = None,
                       ids: Collection[str] | None = None, sort_by: str = "updated_at",
                       ascending: bool = False, limit: int = 10,
                       offset: int = 0) -> list[ThreadRecord]:
        """Recorded threads whose metadata has every given key and value (and whose id is one
        of `ids`), by default latest first."""
        return self._db.run(threads.search(ThreadQuery.of(
            metadata=metadata, ids=ids, sort_by=sort_by, ascending=ascending, limit=limit,
            offset=offset)))

    def count_threads(self, *, metadata: dict[str, Any] | None = None,
                      ids: Collection[str] | None = None) -> int:
        """How many recorded threads match: one statement."""
        return self._db.run(threads.count(ThreadQuery.of(metadata=metadata, ids=ids)))

    # -- checkpoints ------------------------------------------------------------------------

    def put_checkpoint(self, record: CheckpointRecord) -> None:
        """Store one checkpoint in one statement, and point its run at it.

        Raises:
            SerializationError: a value cannot be stored (nothing is changed).
            StaleLeaseError: its run is bound to a lease that was taken over.
        """
        run_id = record.run_id
        params = checkpoints.put_params(record, self.serde, self.leases.epoch(run_id))
        reason = self.leases.checked(run_id,
                                     lambda: self._db.run(checkpoints.put(record, params)))
        self.leases.note(run_id, reason)

    def put_checkpoints(self, records: Sequence[CheckpointRecord]) -> None:
        """Store checkpoints of one run in their order, in one transaction and one round trip.

        Raises:
            SerializationError: a value cannot be stored (nothing is changed).
            StaleLeaseError: their run is bound to a lease that was taken over.
        """
        if records:
            run_id, params = self._chain_params(records)
            self.leases.note(run_id, self.leases.checked(run_id, lambda: self._db.run(
                checkpoints.put_chain(records, params), transaction=True)))

    def put_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   writes: Sequence[WriteRecord]) -> None:
        """Attach pending writes to a checkpoint: an ordinary write (idx >= 0) is stored once,
        a control write (idx < 0) replaces the task's previous one.

        Raises:
            CheckpointNotFound: no such checkpoint (nothing is changed).
            SerializationError: a value cannot be stored (nothing is changed).
            StaleLeaseError: the thread's run is bound to a lease that was taken over.
        """
        params = rows.write_params(writes, self.serde)
        run_id, epoch = self.leases.of_thread(thread_id)
        op = checkpoints.put_writes(thread_id, ns, checkpoint_id, params, run_id=run_id,
                                    epoch=epoch)
        self.leases.checked(run_id, lambda: self._db.run(op))

    def get_checkpoint(self, thread_id: str, ns: str = "",
                       checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        return self._db.run(checkpoints.get(thread_id, ns, checkpoint_id, self.serde))

    def get_writes(self, thread_id: str, ns: str, checkpoint_id: str,
                   channel: str) -> tuple[WriteRecord, ...]:
        return self._db.run(checkpoints.writes(thread_id, ns, checkpoint_id, channel, self.serde))

    def list_checkpoints(self, thread_id: str, ns: str = "", *, before: str | None = None,
                         limit: int | None = None) -> Iterator[StoredCheckpoint]:
        """A thread's checkpoints, newest first, read a page at a time as the iterator goes."""
        def fetch(after: str | None, count: int) -> list[StoredCheckpoint]:
            return self._db.run(checkpoints.page(thread_id, ns, after, count, self.serde))

        return checkpoints.pages(fetch, before, limit)

    def list_threads(self, limit: int | None = None) -> list[str]:
        return self._db.run(threads.listing(limit))

    def delete_thread(self, thread_id: str) -> None:
        self._db.run(threads.delete(thread_id))

    def delete_run(self, run_id: str) -> bool:
        return self._db.run(runs.delete(run_id))

    def copy_thread(self, source: str, target: str) -> None:
        self._db.run(threads.copy(source, target), transaction=True)

    def delete_run_checkpoints(self, run_id: str) -> None:
        self._db.run(checkpoints.delete_of_run(run_id), transaction=True)

    # -- crash recovery ---------------------------------------------------------------------

    def find_orphans(self, owner_alive: Any = None) -> list[RunInfo]:
        """Runs left `running`/`cancelling` by a process that died: an in-process run whose
        owner is dead (by default `owner.is_alive`: a process of this host certainly gone),
        and a queued run whose worker's lease lapsed mid-run (a worker claims it again)."""
        found = self._db.run(runs.orphans(owner_alive or owner.is_alive))
        return [info for _who, info in found]

    def reconcile_orphans(self, owner_alive: Any = None) -> list[RunInfo]:
        """End every orphaned in-process run as `error` (resumable), with an `orphan` event;
        return them, ended. Queued runs are left to the workers, which resume them."""
        ended = []
        for who, info in self._db.run(runs.orphans(owner_alive or owner.is_alive)):
            if who is None:
                continue
            done = self._db.run(runs.mark_orphaned(info, who, owner.pid_of(who)))
            if done is not None:
                ended.append(done)
        return ended


__all__ = ["PostgresSaver"]
