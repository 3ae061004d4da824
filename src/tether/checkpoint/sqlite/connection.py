"""The store's one connection: the lock that shares it between threads, and its transactions.

One connection guarded by a lock serves every thread of the process. Measured against a
connection per thread for the engine's pattern (a checkpoint per superstep from the event loop,
cancels from other threads): the same cost per checkpoint, but a cancel that waited on SQLite's
busy handler (which sleeps in steps of milliseconds) took 20-100 ms at p99, against about 6 ms
waiting on the lock. Other processes are kept out by the file's write lock (`busy_timeout`).
Reads (`read`, `one`, `all`) of a file go to a second connection with a lock of its own: in WAL
mode a reader never waits for the writer, so a read is never held by a write transaction (the
writer thread's group commit, a slow disk).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from tether.checkpoint.query import Op, Query, drive
from tether.checkpoint.sqlite import _sql, schema
from tether.checkpoint.sqlite.wal import WalCheckpointer
from tether.errors import StoreError

_DISK_ERRORS = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})
"""Primary result codes of a write the disk refused."""

T = TypeVar("T")

_TICK = 1000
"""Steps of SQLite between two calls of a budgeted read's progress handler (`read_op`)."""


class Connection:
    """An open tether database.

    Args:
        path: the file, or `":memory:"`.
        synchronous: SQLite's `PRAGMA synchronous` (`"normal"` or `"full"`).
        busy_timeout: seconds to wait for another process's write lock.

    Raises:
        As `schema.connect`.
    """

    def __init__(self, path: str, *, synchronous: schema.Synchronous,
                 busy_timeout: float) -> None:
        self.path = path
        # Invariant: every use of _conn holds _lock, and a transaction begun under the lock
        # ends (COMMIT or ROLLBACK) before the lock is released.
        self._lock = threading.Lock()
        self._conn = schema.connect(path, synchronous=synchronous, busy_timeout=busy_timeout)
        self._closed = False
        self._wal: WalCheckpointer | None = None
        # Reads have a connection of their own (a file's: an in-memory database is private to
        # its one connection), so a read never waits for a write transaction of this process
        # (WAL readers do not block on the writer): the sync reads the server makes on its
        # event loop stay short while the writer thread commits. Invariant: every use of
        # _reader holds _read_lock.
        self._reader = self._conn
        self._read_lock = self._lock
        if path != schema.MEMORY:
            self._conn.execute(_sql.AUTOCHECKPOINT_OFF)
            page_size = self._conn.execute(_sql.PAGE_SIZE).fetchone()[0]
            self._wal = WalCheckpointer(path, busy_timeout=busy_timeout, page_size=page_size)
            self._reader = schema.reader(path, busy_timeout=busy_timeout)
            self._read_lock = threading.Lock()

    def close(self) -> None:
        """Close (idempotent). Committed data is already in the file."""
        if self._wal is not None:
            self._wal.close()
        with self._lock, self._read_lock if self._read_lock is not self._lock else _NO_LOCK:
            if not self._closed:
                self._closed = True
                self._conn.close()
                if self._reader is not self._conn:
                    self._reader.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction: committed if the block ends normally, rolled back
        if it raises.

        Raises:
            StoreError: the disk is full or failing (nothing of the transaction is stored).
        """
        with self._lock:
            conn = self._begin()
            try:
                yield conn
            except BaseException as exc:  # noqa: BLE001 - re-raised by _fail
                self._fail(conn, exc)
            self._commit(conn)

    # `write` and `run` are one transaction written twice: `run` is every superstep's path,
    # and a generator-based context manager costs it more than the lines it would save.

    def _begin(self) -> sqlite3.Connection:
        """`BEGIN IMMEDIATE` on the writing connection; call under `_lock`."""
        try:
            self._conn.execute(_sql.BEGIN_WRITE)
        except sqlite3.OperationalError as exc:
            self._fail(self._conn, exc)
        return self._conn

    def _commit(self, conn: sqlite3.Connection) -> None:
        """`COMMIT` the transaction `_begin` opened (rolled back if that fails); under `_lock`."""
        try:
            conn.execute(_sql.COMMIT)
        except BaseException as exc:  # noqa: BLE001 - re-raised by _fail
            self._fail(conn, exc)
        if self._wal is not None and self._wal.committed() and _restart_log(conn):
            self._wal.emptied()

    def _fail(self, conn: sqlite3.Connection, exc: BaseException) -> NoReturn:
        """Roll back what is left of the transaction and raise `exc`, as a `StoreError` when
        it is the disk refusing the write."""
        if conn.in_transaction:  # SQLite may have rolled back already (disk full)
            conn.execute(_sql.ROLLBACK)
        if (isinstance(exc, sqlite3.OperationalError)
                and exc.sqlite_errorcode & 0xFF in _DISK_ERRORS):
            raise StoreError(f"{self.path}: cannot write: the disk is full or failing "
                             f"(SQLite: {exc}); nothing of this change was stored") from exc
        raise exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read snapshot across several statements (on the reading connection)."""
        with self._read_lock:
            conn = self._reader
            conn.execute(_sql.BEGIN_READ)
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute(_sql.COMMIT)

    def run(self, op: Op[T]) -> T:
        """Run the store operation `op` in one `BEGIN IMMEDIATE` transaction (see `write`; the
        same steps, without a context manager: this is every superstep's path)."""
        with self._lock:
            conn = self._begin()
            try:
                result = drive(op, lambda query: _execute(conn, query), sqlite3.Error, _as_is)
            except BaseException as exc:  # noqa: BLE001 - re-raised by _fail
                self._fail(conn, exc)
            self._commit(conn)
            return result

    def read_op(self, op: Op[T], steps: int | None = None) -> T:
        """Run the read-only operation `op` on the reading connection, each statement in its
        own snapshot (no transaction around them: a lone read costs one statement).

        Args:
            steps: about this many of SQLite's virtual-machine steps at most, over all the
                operation's statements (None: no limit), for a caller that must not be held
                long: a statement that would go further is interrupted.

        Raises:
            ReadTooLong: the operation needed more than `steps` (the caller may run it again
                where it can take its time).
        """
        with self._read_lock:
            reader = self._reader
            if steps is None:
                return drive(op, lambda query: _execute(reader, query), sqlite3.Error, _as_is)
            # SQLite calls the handler every `_TICK` steps of a statement counted over all its
            # runs (a cached statement's count goes on), so the first call can come after any
            # number of steps up to `_TICK`: the budget is counted in calls.
            ticks = [0]
            allowed = steps // _TICK + 1

            def tick() -> bool:
                ticks[0] += 1
                return ticks[0] > allowed

            reader.set_progress_handler(tick, _TICK)
            try:
                return drive(op, lambda query: _execute(reader, query), sqlite3.Error, _as_is)
            except sqlite3.OperationalError:
                if ticks[0] > allowed:
                    raise ReadTooLong(f"a read of {self.path} took more than {steps} "
                                      "steps") from None
                raise
            finally:
                reader.set_progress_handler(None, 0)

    def run_group(self, ops: Sequence[Callable[[], Op[Any]]]) -> list[Outcome]:
        """Run several store operations in one transaction (a group commit), each as if alone.

        Each operation runs inside a savepoint of the group's transaction: one that raises is
        rolled back to its savepoint and its error becomes its outcome, the others commit
        together. When the group itself cannot commit (the disk refused it, SQLite aborted the
        transaction), every operation is run again in a transaction of its own, so each outcome
        is what `run` would have returned or raised. `ops` makes each operation afresh for that.
        """
        if len(ops) == 1:
            return [_outcome(lambda: self.run(ops[0]()))]
        try:
            outcomes: list[Outcome] = []
            with self.write() as conn:
                for make in ops:
                    outcomes.append(_in_savepoint(conn, make))
            if self._wal is not None:
                with self._lock:  # `write` counted the group as one transaction
                    if self._wal.committed(len(ops) - 1) and _restart_log(self._conn):
                        self._wal.emptied()
            return outcomes
        except (sqlite3.Error, StoreError, _GroupAborted):
            return [self._alone(make) for make in ops]

    def _alone(self, make: Callable[[], Op[Any]]) -> Outcome:
        return _outcome(lambda: self.run(make()))

    def all(self, sql: str, params: Any = ()) -> list[Any]:
        """Every row of one read-only statement (its own snapshot)."""
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def one(self, sql: str, params: Any = ()) -> Any:
        """The first row of one read-only statement, or None."""
        with self._read_lock:
            return self._reader.execute(sql, params).fetchone()


_NO_LOCK = contextlib.nullcontext()


def _restart_log(conn: sqlite3.Connection) -> bool:
    """Copy the whole log into the database and empty it (`wal.py`), on the writing connection
    between two of its transactions, under the store lock.

    Returns:
        False when the checkpoint could not finish now (the helper's checkpoint holds the lock,
        another process reads or writes): the writer tries again after its next commit.
    """
    try:
        busy, _frames, _copied = conn.execute(_sql.CHECKPOINT_TRUNCATE).fetchone()
    except sqlite3.OperationalError:
        return False
    return not busy


class ReadTooLong(Exception):
    """A read given a budget of steps (`Connection.read_op`) needed more; nothing changed."""

Outcome = tuple[bool, Any]
"""What an operation of a group came to: `(True, result)` or `(False, the exception)`."""


class _GroupAborted(Exception):
    """SQLite ended a group's transaction on an operation's error: the group must be redone."""


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return True, call()
    except Exception as exc:  # noqa: BLE001 - handed to the operation's caller
        return False, exc


def _in_savepoint(conn: sqlite3.Connection, make: Callable[[], Op[Any]]) -> Outcome:
    conn.execute(_sql.SAVEPOINT)
    try:
        result = drive(make(), lambda query: _execute(conn, query), sqlite3.Error, _as_is)
    except Exception as exc:
        if not conn.in_transaction:
            raise _GroupAborted from exc
        conn.execute(_sql.ROLLBACK_TO_SAVEPOINT)
        conn.execute(_sql.RELEASE_SAVEPOINT)
        return False, exc
    conn.execute(_sql.RELEASE_SAVEPOINT)
    return True, result


def _execute(conn: sqlite3.Connection, query: Query) -> Any:
    if query.fetch == "each":
        conn.executemany(query.sql, query.params)
        return None
    cursor = conn.execute(query.sql, () if query.params is None else query.params)
    if query.fetch == "one":
        return cursor.fetchone()
    if query.fetch == "all":
        return cursor.fetchall()
    return None


def _as_is(exc: Exception) -> BaseException:
    return exc


def file_of(target: str | os.PathLike[str] | sqlite3.Connection) -> str:
    """The database file to open for `target`: a path, or the main file of a `sqlite3`
    connection (`":memory:"` for an in-memory one: a new, private in-memory database).

    LangGraph's SQLite classes take a `sqlite3` connection; tether opens its file with a
    connection of its own (WAL, its lock), so the caller's connection stays theirs.

    Raises:
        TypeError: `target` is none of these (an `aiosqlite` connection, say).
    """
    if isinstance(target, sqlite3.Connection):
        row = target.execute("PRAGMA database_list").fetchone()
        return str(row[2]) or ":memory:"
    if isinstance(target, (str, os.PathLike)):
        return os.fspath(target)
    raise TypeError(
        f"tether opens a SQLite database by its path (or a sqlite3 connection's file), not "
        f"{type(target).__module__}.{type(target).__name__}; use from_conn_string(path)")


__all__ = ["Connection", "Outcome", "ReadTooLong", "file_of"]
