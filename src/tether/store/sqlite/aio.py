"""`AsyncSqliteStore` (LangGraph's `langgraph.store.sqlite.aio` path): `SqliteStore` whose
`setup()` and sweeper methods are awaited."""

from __future__ import annotations

from tether.store.batched import AsyncFace
from tether.store.sqlite.base import SqliteStore


class AsyncSqliteStore(AsyncFace, SqliteStore):  # type: ignore[misc]  # awaited setup()
    """`SqliteStore` for async code: `await store.setup()`, `await store.start_ttl_sweeper()`.

    `SqliteStore` itself serves async code as well (`aput`, `asearch`...); this class exists
    for programs written against LangGraph's `AsyncSqliteStore`, and opens from a path (or
    with `async with AsyncSqliteStore.from_conn_string(path)`), not an `aiosqlite`
    connection.
    """


__all__ = ["AsyncSqliteStore"]
