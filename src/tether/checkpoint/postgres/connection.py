"""The store's connections: one sync pool, and one async pool per event loop that uses the store.

psycopg's async pool belongs to the loop that opened it (its locks and workers live there), and
a store is used from several loops: the caller's, tether's background loop. So each loop gets
its own pool, made on first use. (The private loop of a thread calling `graph.invoke` needs
none: it serves that one call, so its operations run on the sync pool, in that thread.) A pool is
closed with its loop: an async generator parked on the loop is finalised by the loop's
`shutdown_asyncgens()` (which `asyncio.run` and `asyncio.Runner` call before closing), and its
`finally` closes the pool; `close()` closes whatever is left.

Connections are in autocommit mode: a one-statement operation costs one round trip, and an
operation that needs several statements opens its own transaction.

The per-superstep path is kept lean (a checkpoint per step is one round trip, so what the client
does around it shows in every step): a connection is taken with the pool's `getconn`/`putconn`
(its `connection()` block adds a generator and an empty commit, which autocommit makes
needless: a transaction here commits or rolls back in its own block), an async call on a loop
takes that loop's spare connection when it is free rather than one from the pool (see
`_Spare`), and an operation outside a transaction runs on the connection's kept cursor rather
than a new one (see `Connection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine
from time import monotonic
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from tether.checkpoint import loops
from tether.checkpoint.postgres import _migrations, ops
from tether.checkpoint.postgres.transaction import acommitted, committed
from tether.errors import StoreError

T = TypeVar("T")

CLOSE_TIMEOUT = 5.0
SPARE_TERM = 60.0
"""Seconds at most that a connection stays a loop's spare before it goes back through the pool
(or the pool's `max_lifetime`, if shorter): there the pool's lifetime, drain and checks apply
to it, as to every connection it hands out."""
"""Seconds `close()` waits for a pool living on another thread's loop."""


class Connection(psycopg.Connection[Any]):
    """A pooled sync connection with one cursor kept for its statements outside transactions.

    Making a cursor per statement costs about as much client work as the round trip itself
    (psycopg builds its adapters and transformer each time). A kept cursor holds the result of
    its last statement until the next one, so each pooled connection holds at most one result.
    """

    _kept: psycopg.Cursor[Any] | None = None

    def kept_cursor(self) -> psycopg.Cursor[Any]:
        """This connection's kept cursor (made on first use)."""
        cursor = self._kept
        if cursor is None or cursor.closed:
            cursor = self._kept = self.cursor()
        return cursor


class AsyncConnection(psycopg.AsyncConnection[Any]):
    """The async twin of `Connection`."""

    _kept: psycopg.AsyncCursor[Any] | None = None

    def kept_cursor(self) -> psycopg.AsyncCursor[Any]:
        """This connection's kept cursor (made on first use)."""
        cursor = self._kept
        if cursor is None or cursor.closed:
            cursor = self._kept = self.cursor()
        return cursor


def connection_kwargs(conninfo: str, *, schema: str | None, application_name: str,
                      prepare_threshold: int | None) -> dict[str, Any]:
    """The keyword arguments every connection of a store is opened with.

    Sessions run in UTC (timestamps come back as UTC) and, with `schema`, on that schema's
    `search_path`; options already in `conninfo` are kept.
    """
    options = str(conninfo_to_dict(conninfo).get("options") or "")
    options += " -c timezone=UTC"
    if schema is not None:
        options += f" -c search_path={_migrations.checked_schema(schema)}"
    return {"autocommit": True, "options": options.strip(),
            "application_name": application_name, "prepare_threshold": prepare_threshold}


class Database:
    """The pools of one store.

    Args:
        conninfo: a libpq connection string or URL.
        kwargs: see `connection_kwargs`.
        min_size, max_size: connections of the sync pool.
        async_size: connections of each async pool (a fixed size: see `_pool`).
        connect_timeout: seconds to wait for the first connection.

    Raises:
        StoreError: no connection could be made within `connect_timeout`.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], *, min_size: int, max_size: int,
                 async_size: int, connect_timeout: float) -> None:
        self.conninfo = conninfo
        self.kwargs = kwargs
        self._async_size = async_size
        self._timeout = connect_timeout
        self._sync: ConnectionPool[Connection] = ConnectionPool(
            conninfo, kwargs=kwargs, min_size=min_size, max_size=max_size, open=False,
            name="tether-sync", connection_class=Connection)
        try:
            self._sync.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._sync.close()
            raise StoreError(f"cannot connect to PostgreSQL ({redacted(conninfo)}) within "
                             f"{connect_timeout}s") from exc
        # Invariant: every pool in _async is open or being opened on its key's loop, by the
        # one task in _ready (concurrent first callers all await that task: opening a pool
        # twice trips psycopg_pool's assertions), and _closers holds the generator that closes
        # it when that loop shuts down.
        self._lock = threading.Lock()
        self._async: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[AsyncConnection]] = {}
        self._ready: dict[asyncio.AbstractEventLoop,
                          asyncio.Task[AsyncConnectionPool[AsyncConnection]]] = {}
        self._closers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
        # Each loop's spare (see `_Spare`); only touched on its loop.
        self._spares: dict[asyncio.AbstractEventLoop, _Spare] = {}
        self._closed = False

    # -- running operations -----------------------------------------------------------------

    def run(self, op: ops.Op[T | ops.AtCommit[T]], *, transaction: bool = False,
            pipeline: bool = True) -> T:
        """Run `op` on a pooled connection, in one transaction if asked.

        A transaction runs in pipeline mode unless `pipeline` is False (multi-statement
        queries, such as migrations, need the simple protocol): BEGIN goes with the first
        statement, each statement whose rows are not needed yet goes with the next, and the
        COMMIT with the last (`transaction.committed`).
        """
        pool = self._sync
        conn = pool.getconn()
        try:
            if not transaction:
                return ops.settle(ops.run(conn, op, conn.kept_cursor()))
            if not pipeline:
                with conn.transaction():
                    return ops.settle(ops.run(conn, op))
            return committed(conn, op)
        finally:
            pool.putconn(conn)

    async def arun(self, op: ops.Op[T | ops.AtCommit[T]], *, transaction: bool = False) -> T:
        """Run `op` on this loop's pool, in one transaction (pipelined, as `run`) if asked.

        On a loop dedicated to one sync caller (tether's private loop of a sync `invoke`:
        `tether.checkpoint.loops`) the operation runs on the sync pool in the calling thread
        instead: nothing else waits on that loop, and psycopg's sync path costs a superstep
        less than its async one (no reader registration and wake-up per round trip).

        Cancellation:
            Cancelled while a statement is in flight, psycopg cancels it on the server and the
            connection's transaction is rolled back: a one-statement operation is then either
            committed whole or not at all, never half. Safe to retry (the store's writes are
            idempotent or conditional). On a dedicated loop there is no await: the operation
            completes (or fails) whole and a cancel is delivered at the caller's next await.
            The connection (the loop's spare or a pooled one) is given back either way; one
            left unfit by the cancel goes back to the pool (see `_Spare`).
        """
        loop = asyncio.get_running_loop()
        if loops.may_block(loop):
            return self.run(op, transaction=transaction)
        pool = await self._pool()
        spare = self._spares.get(loop)
        if spare is not None and spare.take():
            conn = spare.conn
        else:
            conn = await pool.getconn()
        try:
            if not transaction:
                return await ops.asettle(await ops.arun(conn, op, conn.kept_cursor()))
            return await acommitted(conn, op)
        finally:
            if spare is not None and conn is spare.conn:
                if not spare.give_back() or (_waited_for(pool) and spare.retire()):
                    if self._spares.get(loop) is spare:
                        del self._spares[loop]
                    await pool.putconn(conn)
            elif (self._async_size > 1 and loop not in self._spares
                  and self._async.get(loop) is pool and _Spare.fit(conn)
                  and not _waited_for(pool)):
                # Kept, not returned: see `_Spare`.
                self._spares[loop] = _Spare(conn, min(SPARE_TERM, pool.max_lifetime))
            else:
                await pool.putconn(conn)

    def run_again(self, make: Callable[[], ops.Op[T | ops.AtCommit[T]]], *,
                  transaction: bool = False) -> T:
        """`run(make())`, and once more on a new connection if the pooled one was lost (the
        server restarted, or closed it: `pg_terminate_backend`); see `arun_again`."""
        try:
            return self.run(make(), transaction=transaction)
        except psycopg.OperationalError:
            with self.connect() as conn:
                if not transaction:
                    return ops.settle(ops.run(conn, make()))
                return committed(conn, make())

    async def arun_again(self, make: Callable[[], ops.Op[T | ops.AtCommit[T]]], *,
                         transaction: bool = False) -> T:
        """`arun(make())`, and once more on a new connection if the pooled one was lost.

        A pool keeps the connections the server closed until they are used: after a restart
        (or `pg_terminate_backend`) each of them fails once, and another may be handed out in
        its place. For the calls a run must not fail on for that: the operation is made again
        and run on a connection of its own, opened for it. Only for operations that are safe to
        repeat (idempotent, or conditional: a second attempt of one that did commit is refused,
        never applied twice).

        Cancellation:
            As `arun`; a connection opened for the second attempt is closed.
        """
        if loops.may_block(asyncio.get_running_loop()):
            return self.run_again(make, transaction=transaction)
        try:
            return await self.arun(make(), transaction=transaction)
        except psycopg.OperationalError:
            async with await self.aconnect() as conn:
                if not transaction:
                    return await ops.asettle(await ops.arun(conn, make()))
                return await acommitted(conn, make())

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection outside the pools (the caller closes it)."""
        return psycopg.Connection.connect(self.conninfo, **self.kwargs)

    async def aconnect(self, application_name: str | None = None
                       ) -> psycopg.AsyncConnection[Any]:
        """A new async connection outside the pools, e.g. for `LISTEN` (the caller closes it).

        Cancellation:
            Safe: a connection being made is abandoned.
        """
        kwargs = dict(self.kwargs)
        if application_name is not None:
            kwargs["application_name"] = application_name
        return await psycopg.AsyncConnection.connect(self.conninfo, **kwargs)

    async def _pool(self) -> AsyncConnectionPool[AsyncConnection]:
        loop = asyncio.get_running_loop()
        ready = self._ready.get(loop)
        if ready is None:
            if self._closed:
                raise StoreError("the store is closed")
            ready = loop.create_task(self._open_pool(loop), name="tether-pool-open")
            self._ready[loop] = ready
        if ready.done() and not ready.cancelled() and ready.exception() is None:
            return ready.result()
        try:
            # Shielded: a caller that gives up does not abort the opening the others await.
            return await asyncio.shield(ready)
        except PoolTimeout as exc:
            raise StoreError(f"cannot connect to PostgreSQL ({redacted(self.conninfo)}) "
                             f"within {self._timeout}s") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if ready.cancelled() and (task is None or not task.cancelling()):
                raise StoreError("the store was closed while connecting") from None
            raise

    async def _open_pool(self, loop: asyncio.AbstractEventLoop
                         ) -> AsyncConnectionPool[AsyncConnection]:
        # A fixed size, filled before first use: psycopg_pool's connecting task swallows the
        # cancellation a loop's shutdown sends it, which hangs `asyncio.run` if a connection is
        # being added then; a full pool that never grows adds none.
        pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
            self.conninfo, kwargs=self.kwargs, min_size=self._async_size,
            max_size=self._async_size, open=False, name="tether-async",
            connection_class=AsyncConnection)
        closer = _close_at_shutdown(self, loop, pool)
        with self._lock:
            self._async[loop] = pool
            self._closers[loop] = closer
        await closer.__anext__()
        try:
            await pool.open(wait=True, timeout=self._timeout)
        except BaseException:
            await closer.aclose()  # forgets the pool: the next call tries again
            raise
        return pool

    def _forget(self, loop: asyncio.AbstractEventLoop,
                pool: AsyncConnectionPool[AsyncConnection]) -> None:
        with self._lock:
            if self._async.get(loop) is pool:
                del self._async[loop]
                self._closers.pop(loop, None)
                self._ready.pop(loop, None)

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every pool (idempotent). A pool whose loop is running in this thread is
        closed by a task on that loop; call `aclose()` there to wait for it."""
        self._closed = True
        self._sync.close()
        with self._lock:
            closers = list(self._closers.items())
        for loop, closer in closers:
            if not loop.is_closed():
                _on_loop(loop, closer.aclose())

    async def aclose(self) -> None:
        """Close every pool, awaiting this loop's.

        Cancellation:
            Safe to retry; a pool left open is closed with its loop.
        """
        loop = asyncio.get_running_loop()
        ready = self._ready.get(loop)
        if ready is not None and not ready.done():
            ready.cancel()  # an opening would wait its whole timeout for a closed pool
            await asyncio.wait({ready})
        closer = self._closers.get(loop)
        if closer is not None:
            await closer.aclose()
        self.close()


class _Spare:
    """One connection of a loop's async pool kept out of it, for whichever call on that loop
    finds it free: taking and giving it back costs no await, where the pool's `getconn` and
    `putconn` cost about a tenth of a superstep's client work (its lock, checks, logging and
    statistics, each way).

    The first connection a loop's call returns becomes the spare (only if the pool has another
    one: a caller that finds the spare busy waits on the pool, which must have a connection to
    give). A call never waits for the spare, so calls still run `async_size` at once and a
    waiter on the pool still gets each connection returned to it; and while a caller waits on
    the pool, the spare goes back to it when it comes free (the next connection returned with
    no one waiting becomes the spare again), so no caller waits while a connection idles. A
    spare that comes back unfit (closed, broken, or not idle: a statement cancelled mid-flight)
    goes back to the pool, which repairs or replaces it, and the next returned connection
    becomes the spare. So does a spare past its term (`SPARE_TERM`), so that the pool's own
    rules for its connections (`max_lifetime`, `drain`) reach it too. The spare goes back to
    its pool before the pool closes (or, if in use then, when it comes back).
    """

    __slots__ = ("busy", "conn", "retired", "until")

    def __init__(self, conn: AsyncConnection, term: float) -> None:
        self.conn = conn
        self.busy = False
        self.retired = False
        self.until = monotonic() + term  # past this, it goes back to the pool when it is free

    @staticmethod
    def fit(conn: AsyncConnection) -> bool:
        """Whether `conn` may be kept: open, and idle outside a transaction."""
        return not conn.closed and conn.pgconn.transaction_status == TransactionStatus.IDLE

    def take(self) -> bool:
        """Take the spare if it is free."""
        if self.busy or self.retired:
            return False
        self.busy = True
        return True

    def give_back(self) -> bool:
        """Give the spare back after a call; False if it must go back to the pool instead
        (unfit, or past its term: then it is retired, and the caller's loop forgets it)."""
        self.busy = False
        if self.retired:
            return False
        if not self.fit(self.conn) or monotonic() >= self.until:
            self.retired = True
            return False
        return True

    def retire(self) -> bool:
        """Retire the spare; True if it is free (the caller returns it to the pool now),
        False if a call holds it (that call returns it)."""
        self.retired = True
        return not self.busy


def _waited_for(pool: AsyncConnectionPool[AsyncConnection]) -> bool:
    """Whether a caller is waiting on `pool` for a connection."""
    return pool.get_stats().get("requests_waiting", 0) > 0


def _on_loop(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` on `loop` now if it is idle, else hand it over (waiting, from another thread)."""
    if not loop.is_running():
        loop.run_until_complete(coro)
    elif _running_loop() is loop:
        loop.create_task(coro)
    else:
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(coro, loop).result(CLOSE_TIMEOUT)


async def _close_at_shutdown(db: Database, loop: asyncio.AbstractEventLoop,
                             pool: AsyncConnectionPool[AsyncConnection]
                             ) -> AsyncGenerator[None, None]:
    # Parked at its yield for the pool's life; finalised by `loop.shutdown_asyncgens()`.
    try:
        yield
    finally:
        db._forget(loop, pool)
        spare = db._spares.pop(loop, None)
        if spare is not None and spare.retire():
            await pool.putconn(spare.conn)
        await pool.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def redacted(conninfo: str) -> str:
    """`conninfo` without its password, for messages."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    parts.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in parts.items())


__all__ = ["AsyncConnection", "Connection", "Database", "connection_kwargs", "redacted"]
