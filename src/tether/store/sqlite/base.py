"""`SqliteStore`: the long-term store in a SQLite file, the embedded default. Given the path of
a tether database, its tables sit beside the checkpoints (one file for both)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from tether.checkpoint.opening import Opening
from tether.checkpoint.query import Op, Query
from tether.checkpoint.sqlite.connection import Connection, ReadTooLong, file_of
from tether.checkpoint.sqlite.writer import Writer
from tether.store.base.settings import IndexConfig, TTLConfig
from tether.store.clock import Clock
from tether.store.sql.dialect import SQLITE
from tether.store.sql.ops import Loads
from tether.store.sql.store import SqlStore
from tether.store.sqlite import schema

T = TypeVar("T")

INLINE_STEPS = 10_000
"""SQLite virtual-machine steps an async read may take on the caller's event loop: about
0.1 ms of SQLite's work here (a search over a few hundred items), and a bound on the rows whose
values are then decoded on the loop (a few hundred, under a millisecond)."""


class SqliteStore(SqlStore):
    """LangGraph's `SqliteStore`, in a tether SQLite file (WAL, one connection behind a lock,
    as `SqliteSaver`; give both the same path to keep runs and memories in one file).

    Values are stored as JSON. Vectors (for an `index`) are stored normalised as float32;
    similarity is computed in Python (with NumPy when installed) over the items under the
    searched prefix, so semantic search suits some tens of thousands of items per prefix.

    Cancellation:
        The async methods hand each write step of a batch (after any embedding, which is
        awaited before the transaction starts) to the store's writer thread, so the event loop
        never waits on SQLite (a slow disk, another process's write lock); a step handed over
        runs whole, and a batch is committed whole or not at all. Reads run on the loop while
        short, in the store's reader thread otherwise (`_arun`), and are safe to cancel. The
        sync methods run in the caller's thread.

    Args:
        conn: the database file (created when missing), `":memory:"`, or a `sqlite3`
            connection, whose file is opened (an in-memory connection: a new in-memory
            database).
        index: semantic search: `{"dims": ..., "embed": ..., "fields": [...]}`.
        ttl: time-to-live settings (`TTLConfig`).
        deserializer: turns a stored JSON text into the value (default `json.loads`).
        synchronous, busy_timeout: as for `SqliteSaver`.
        clock: seconds since the epoch (default `time.time`).

    Raises:
        CorruptStoreError: the file is not a tether database.
        SchemaVersionError: the file was written by a newer tether.
    """

    def __init__(self, conn: str | os.PathLike[str] | sqlite3.Connection, *,
                 index: IndexConfig | None = None, ttl: TTLConfig | None = None,
                 deserializer: Loads | None = None, synchronous: Any = "normal",
                 busy_timeout: float = 5.0, clock: Clock | None = None) -> None:
        super().__init__(SQLITE, index=index, ttl=ttl, deserializer=deserializer, clock=clock)
        self.path = file_of(conn)
        self._db = Connection(self.path, synchronous=synchronous, busy_timeout=busy_timeout)
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise
        self._writer = Writer(self._db)
        self._reads = Writer(self._db, role="reader")

    @classmethod
    def from_conn_string(cls, conn_string: str, *, index: IndexConfig | None = None,
                         ttl: TTLConfig | None = None, **options: Any) -> Opening[Any]:
        """A `with` (or `async with`) block that opens the store and closes it at the end."""
        return Opening(lambda: cls(conn_string, index=index, ttl=ttl, **options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def setup(self) -> None:
        """Make the store's tables if missing (done when the store is opened).

        Raises:
            SchemaVersionError: the tables were made by a newer tether.
        """
        self._migrate()

    def _migrate(self) -> None:
        with self._db.write() as conn:
            schema.migrate(conn, self.path)

    def close(self) -> None:
        """Stop the sweeper, let the writer thread finish, close the connection
        (idempotent)."""
        super().close()
        self._writer.close()
        self._reads.close()
        self._db.close()

    def _run(self, make: Callable[[], Op[T]], transaction: bool) -> T:
        # A read-only step runs its statements in autocommit on the reading connection, each in
        # its own snapshot (a lone `get` is then one statement, and never waits for a write):
        # a search's vectors may be read one commit after its items, so an item rewritten in
        # between is scored by its new vectors.
        return self._db.run(make()) if transaction else self._db.read_op(make())

    def _fetch(self, query: Query) -> Any:
        return self._db.one(query.sql, query.params)

    async def _afetch(self, query: Query) -> Any:
        """As `_fetch`: inline, on the reading connection, as every read step (`_arun`).

        Cancellation:
            No await point: it completes.
        """
        return self._fetch(query)

    async def _arun(self, make: Callable[[], Op[T]], transaction: bool) -> T:
        """As `_run`: a write step in the writer thread, so the event loop goes on while it
        waits for the file's write lock or the disk; a read-only step inline, on the reading
        connection, which in WAL mode never waits for a writer, as long as it takes at most
        about `INLINE_STEPS` of SQLite's steps; one that needs more (a search over thousands
        of items) is interrupted and run again from its start by the store's reader thread,
        so a long read never holds the loop.

        Cancellation:
            Deferred for a write step: once handed over, it runs whole (committed or rolled
            back); a cancel meanwhile is delivered when it is done. A read inline has no await
            point; one in the reader thread is abandoned at once (its answer dropped).
        """
        if transaction:
            return await self._writer.call(lambda: self._run(make, transaction))
        try:
            return self._db.read_op(make(), steps=INLINE_STEPS)
        except ReadTooLong:
            return await self._reads.read(lambda: self._run(make, transaction))


__all__ = ["SqliteStore"]
