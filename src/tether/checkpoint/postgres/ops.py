"""The Postgres drivers of the store operations (`tether.checkpoint.query`): a sync one for a
`psycopg.Connection`, an async one for a `psycopg.AsyncConnection`, so one operation serves the
sync methods and their async twins; and where psycopg's errors become tether's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import errors as pg_errors

from tether.checkpoint.postgres import _sql
from tether.checkpoint.query import Op, Query, drive
from tether.errors import CheckpointNotFound, TerminalStatusError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AtCommit(Generic[T]):
    """An operation's result, made from the row of its last statement once the transaction has
    committed: in a pipeline that statement then travels with the `COMMIT`, one round trip for
    both, instead of one for its row and another for the commit (a run's end:
    `runs.finish_last`; queueing a run: `queue.enqueue`).

    An operation returns one only when nothing after its last statement depends on its row
    (the rows it locked earlier decided it), and only in a transaction; the connection reads
    the row after the commit (`settle`, `asettle`). `make` may still refuse the row (raise)
    when what committed changed nothing. A failure of that statement surfaces at the commit,
    which then rolls the whole transaction back, as `fail` makes it (None: as anywhere else,
    `translate`); `fail` answers None for an error it does not know.
    """

    cursor: Any
    make: Callable[[Any], T]
    fail: Callable[[psycopg.Error], BaseException | None] | None = None

    def failure(self, exc: psycopg.Error) -> BaseException:
        """The error a database failure at the commit is to the operation."""
        made = self.fail(exc) if self.fail is not None else None
        if made is None:
            return translate(exc)
        made.__cause__ = exc
        return made


def settle(out: T | AtCommit[T]) -> T:
    """An operation's result, its row read if it was left for after the commit."""
    if isinstance(out, AtCommit):
        made: T = out.make(out.cursor.fetchone())
        return made
    return out


async def asettle(out: T | AtCommit[T]) -> T:
    """`settle` on an async connection.

    Cancellation:
        The transaction has committed: the row is in the client already, no round trip.
    """
    if isinstance(out, AtCommit):
        made: T = out.make(await out.cursor.fetchone())
        return made
    return out


def run(conn: psycopg.Connection[Any], op: Op[T],
        cursor: psycopg.Cursor[Any] | None = None) -> T:
    """Drive `op` on a sync connection (the caller owns the transaction).

    `cursor`: one to run every statement on (outside pipeline mode only: there a cursor's
    results are only read when the pipeline syncs), instead of a new one per statement.
    """

    def execute(query: Query) -> Any:
        if query.fetch == "each":
            with conn.cursor() as many:
                many.executemany(query.sql, query.params)
            return None
        if cursor is None:
            result = conn.execute(query.sql, query.params)
        else:
            result = cursor.execute(query.sql, query.params)
        if query.fetch == "one":
            return result.fetchone()
        if query.fetch == "all":
            return result.fetchall()
        if query.fetch == "later":
            return result
        return None

    return drive(op, execute, psycopg.Error, _translate)


def _translate(exc: Exception) -> BaseException:
    assert isinstance(exc, psycopg.Error)
    return translate(exc)


async def arun(conn: psycopg.AsyncConnection[Any], op: Op[T],
               cursor: psycopg.AsyncCursor[Any] | None = None) -> T:
    """Drive `op` on an async connection (the caller owns the transaction); `cursor` as in
    `run`.

    Cancellation:
        Cancelled mid-statement, psycopg cancels the statement on the server; the caller's
        transaction (or the statement's own, in autocommit) is rolled back.
    """
    try:
        query = next(op)
        while True:
            try:
                if query.fetch == "each":
                    async with conn.cursor() as many:
                        await many.executemany(query.sql, query.params)
                    query = op.send(None)
                    continue
                if cursor is None:
                    ran = await conn.execute(query.sql, query.params)
                else:
                    ran = await cursor.execute(query.sql, query.params)
                if query.fetch == "one":
                    rows: Any = await ran.fetchone()
                elif query.fetch == "all":
                    rows = await ran.fetchall()
                elif query.fetch == "later":
                    rows = ran
                else:
                    rows = None
            except psycopg.Error as exc:
                query = op.throw(translate(exc))
            else:
                query = op.send(rows)
    except StopIteration as stop:
        result: T = stop.value
        return result


def translate(exc: psycopg.Error) -> BaseException:
    """The tether error a database error stands for, or the error itself.

    The one place foreign errors become tether's: the terminal-status trigger becomes
    `TerminalStatusError`, a pending write for a missing checkpoint `CheckpointNotFound`.
    """
    if exc.sqlstate == _sql.TERMINAL_SQLSTATE:
        error: BaseException = TerminalStatusError(_message(exc))
    elif isinstance(exc, pg_errors.ForeignKeyViolation):
        error = CheckpointNotFound(f"no such checkpoint: {_message(exc)}")
    else:
        return exc
    error.__cause__ = exc
    return error


def _message(exc: psycopg.Error) -> str:
    diag = exc.diag
    return (diag.message_primary or str(exc)) + (f" ({diag.message_detail})"
                                                 if diag.message_detail else "")


def unique_violation(exc: BaseException) -> bool:
    """True for a duplicate key (a run id used twice)."""
    return isinstance(exc, pg_errors.UniqueViolation)


__all__ = ["AtCommit", "Op", "Query", "arun", "asettle", "run", "settle", "translate",
           "unique_violation"]
