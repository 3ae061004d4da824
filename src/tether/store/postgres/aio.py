"""`AsyncPostgresStore` (LangGraph's `langgraph.store.postgres.aio` path): `PostgresStore` whose
`setup()` and sweeper methods are awaited."""

from __future__ import annotations

from tether.store.batched import AsyncFace
from tether.store.postgres.base import PostgresStore


class AsyncPostgresStore(AsyncFace, PostgresStore):  # type: ignore[misc]  # awaited setup()
    """`PostgresStore` for async code: `await store.setup()`, `await store.start_ttl_sweeper()`.

    `PostgresStore` itself does real async I/O in its async methods (`aput`, `asearch`...);
    this class exists for programs written against LangGraph's `AsyncPostgresStore`, and is
    opened from a connection string (`async with AsyncPostgresStore.from_conn_string(...)`).
    """


__all__ = ["AsyncPostgresStore"]
