"""Store operations written once, run by a sync or an async connection.

An operation is a generator: it yields `Query` objects and is sent each one's rows back; what it
returns is the operation's result. It does no I/O itself, so the same code serves the sync
methods (a `psycopg.Connection`) and their async twins (a `psycopg.AsyncConnection`): only the two
small drivers below touch a connection. A database error is thrown into the operation at the
`yield` that caused it, so the operation can translate it with its own context (a run id); an
operation that catches one must return or raise, never yield again (the transaction is aborted).
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from tether.checkpoint.postgres import _sql
from tether.checkpoint.query import Op, Query
from tether.errors import CheckpointNotFound, TerminalStatusError

T = TypeVar("T")


def run(conn: psycopg.Connection[Any], op: Op[T]) -> T:
    """Drive `op` on a sync connection (the caller owns the transaction)."""
    try:
        query = next(op)
        while True:
            try:
                cursor = conn.execute(query.sql, query.params)
                if query.fetch == "one":
                    rows: Any = cursor.fetchone()
                elif query.fetch == "all":
                    rows = cursor.fetchall()
                else:
                    rows = None
            except psycopg.Error as exc:
                query = op.throw(translate(exc))
            else:
                query = op.send(rows)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def arun(conn: psycopg.AsyncConnection[Any], op: Op[T]) -> T:
    """Drive `op` on an async connection (the caller owns the transaction).

    Cancellation:
        Cancelled mid-statement, psycopg cancels the statement on the server; the caller's
        transaction (or the statement's own, in autocommit) is rolled back.
    """
    try:
        query = next(op)
        while True:
            try:
                cursor = await conn.execute(query.sql, query.params)
                if query.fetch == "one":
                    rows: Any = await cursor.fetchone()
                elif query.fetch == "all":
                    rows = await cursor.fetchall()
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


__all__ = ["Op", "Query", "arun", "run", "translate", "unique_violation"]
