"""One transaction of a Postgres store in pipeline mode: `BEGIN`, the operation's statements and
`COMMIT` sent as one stream, so that a transaction waits only for the rows its operation reads
(`connection.Connection.run` and `arun` use it for every transaction but a migration's).
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from tether.checkpoint.postgres import ops

T = TypeVar("T")

_BEGIN = b"BEGIN"
_COMMIT = b"COMMIT"
_ROLLBACK = b"ROLLBACK"
_OPEN = (TransactionStatus.INTRANS, TransactionStatus.INERROR)


def committed(conn: psycopg.Connection[Any], op: ops.Op[T | ops.AtCommit[T]]) -> T:
    """`op` in one transaction on `conn` (an autocommit connection), in pipeline mode, its
    result once committed.

    `BEGIN` and `COMMIT` are statements of the pipeline, not psycopg's `transaction()`, which
    syncs after its `BEGIN` and again before its `COMMIT` (it must know the transaction's
    state): a transaction whose statements wait for no row was three round trips, and is one.
    `BEGIN` goes with the first statement; `COMMIT` with the last (and its row, `ops.AtCommit`)
    only when `op` returned: an error (the database's, or the operation's own) rolls the
    transaction back. A statement's failure that surfaces at the commit is tether's error
    there as anywhere else (`ops.translate`).
    """
    out: T | ops.AtCommit[T] | None = None
    try:
        with conn.pipeline():
            conn.execute(_BEGIN)
            out = ops.run(conn, op)
            conn.execute(_COMMIT)
    except psycopg.Error as exc:
        _rollback(conn)
        error = _failure(exc, out)
        if error is exc:
            raise
        raise error from exc
    except BaseException:
        _rollback(conn)
        raise
    return ops.settle(out)


def _failure(exc: psycopg.Error, out: Any) -> BaseException:
    """What a database error of a transaction is to its operation: the operation's own reading
    when it failed at the commit, in the statement it left for then (`ops.AtCommit.fail`);
    else tether's error (`ops.translate`), the error itself for any other."""
    if isinstance(out, ops.AtCommit):
        return out.failure(exc)
    return ops.translate(exc)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a transaction left open by a failure (a connection that cannot is left to the
    pool, which discards it)."""
    if not conn.closed and conn.pgconn.transaction_status in _OPEN:
        with contextlib.suppress(psycopg.Error):
            conn.execute(_ROLLBACK)


async def acommitted(conn: psycopg.AsyncConnection[Any],
                      op: ops.Op[T | ops.AtCommit[T]]) -> T:
    """`committed` on an async connection.

    Cancellation:
        As `Connection.arun` (`connection.py`): psycopg cancels the statement in flight,
        and the transaction is rolled back (the `COMMIT` is sent only once the operation has
        returned).
    """
    out: T | ops.AtCommit[T] | None = None
    try:
        async with conn.pipeline():
            await conn.execute(_BEGIN)
            out = await ops.arun(conn, op)
            await conn.execute(_COMMIT)
    except psycopg.Error as exc:
        await _arollback(conn)
        error = _failure(exc, out)
        if error is exc:
            raise
        raise error from exc
    except BaseException:
        await _arollback(conn)
        raise
    return await ops.asettle(out)


async def _arollback(conn: psycopg.AsyncConnection[Any]) -> None:
    """`_rollback` on an async connection.

    Cancellation:
        A cancel of the rollback itself leaves the transaction open: the pool rolls back a
        connection given back in a transaction (and `_Spare.fit` refuses to keep it).
    """
    if not conn.closed and conn.pgconn.transaction_status in _OPEN:
        with contextlib.suppress(psycopg.Error):
            await conn.execute(_ROLLBACK)


__all__ = ["acommitted", "committed"]
