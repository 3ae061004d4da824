"""Database operations written once, as generators that yield `Query` objects and are sent each
one's rows back; a driver per database does the I/O (psycopg, sync or async: `postgres/ops.py`;
`sqlite3`: the long-term store's). Nothing here imports a driver."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Fetch = Literal["none", "one", "all"]


@dataclass(frozen=True, slots=True)
class Query:
    """One statement to execute, and which of its rows the operation wants back."""

    sql: str
    params: Any = None
    fetch: Fetch = "one"


Op = Generator[Query, Any, T]
"""An operation: yields queries, receives their rows, returns its result."""

__all__ = ["Fetch", "Op", "Query"]
