"""Database operations written once, as generators that yield `Query` objects and are sent each
one's rows back; what an operation returns is its result. A driver per database does the I/O
(`drive` for a sync connection: `sqlite/connection.py`, `postgres/ops.py`, the long-term
stores'; Postgres has an async driver too), so one operation serves every connection of a
backend, and the rules it applies (`tether.checkpoint.finish_rule.refusal`, the status machine) are
written once. Nothing here imports a driver.

A database error is thrown into the operation at the `yield` that caused it, so the operation can
translate it with its own context (a run id); an operation that catches one must return or
raise, never yield again (the transaction is aborted).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from tether.records import fast_record
from tether.types import RunStatus

T = TypeVar("T")

Fetch = Literal["none", "one", "all", "each", "later"]
"""What an operation wants back from a statement: nothing, the first row, every row; `each`
runs the statement once per parameter row (`params` is then a sequence of rows) and returns
nothing; `later` (Postgres only, an operation's last statement) returns the cursor, whose rows
are read once the transaction has committed (see `postgres/ops.py`'s `AtCommit`)."""


@fast_record  # a superstep makes three or four
@dataclass(frozen=True, slots=True)
class Query:
    """One statement to execute, and which of its rows the operation wants back."""

    sql: str
    params: Any = None
    fetch: Fetch = "one"


Op = Generator[Query, Any, T]
"""An operation: yields queries, receives their rows, returns its result."""


def drive(op: Op[T], execute: Callable[[Query], Any],
          errors: type[Exception] | tuple[type[Exception], ...],
          translate: Callable[[Exception], BaseException]) -> T:
    """Run `op` to its result, executing each of its queries with `execute` (the caller owns
    the transaction); an error of the `errors` types is thrown into `op`, as `translate` makes
    it."""
    try:
        query = next(op)
        while True:
            try:
                rows = execute(query)
            except errors as exc:
                query = op.throw(translate(exc))
            else:
                query = op.send(rows)
    except StopIteration as stop:
        result: T = stop.value
        return result


def sql_list(statuses: Iterable[RunStatus]) -> str:
    """Run statuses as an SQL list (`('pending', 'running')`), for a statement's condition."""
    return "(" + ", ".join(f"'{status.value}'" for status in statuses) + ")"


TERMINAL = sql_list(s for s in RunStatus if s.terminal)
"""The terminal statuses (`tether.types.TERMINAL_STATUSES`) as an SQL list."""

ACTIVE = sql_list(s for s in RunStatus if not s.terminal and s is not RunStatus.INTERRUPTED)
"""Statuses that need a live process to move on (an `interrupted` run waits for input)."""


__all__ = ["ACTIVE", "TERMINAL", "Fetch", "Op", "Query", "drive", "sql_list"]
