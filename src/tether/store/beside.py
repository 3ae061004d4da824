"""The long-term store that goes with a checkpointer: in the same database (the SQLite file, the
Postgres schema), or in memory beside an in-memory one. It is what `tether serve` and `tether
worker` give a graph compiled without a store, as LangGraph's Agent Server gives every graph."""

from __future__ import annotations

import sys
from typing import Any

from tether.checkpoint.base import CheckpointStore
from tether.store.base.settings import IndexConfig, TTLConfig
from tether.store.batched import BatchedStore


def store_beside(checkpointer: CheckpointStore, *, index: IndexConfig | None = None,
                 ttl: TTLConfig | None = None) -> BatchedStore:
    """A new long-term store in `checkpointer`'s database; the caller closes it.

    A `SqliteSaver` gets a `SqliteStore` on its file; a `PostgresSaver` a `PostgresStore` on
    its database and schema (so a server and its workers, opening it each, share one store);
    any other checkpointer (`InMemorySaver`...) an `InMemoryStore`, which lives as long as the
    process.

    Args:
        index: semantic search settings for the store.
        ttl: time-to-live settings for the store.

    Raises:
        StoreError: the database cannot be reached.
        SchemaVersionError: the store's tables were made by a newer tether.
    """
    from tether.checkpoint.sqlite import SqliteSaver

    if isinstance(checkpointer, SqliteSaver):
        from tether.store.sqlite import SqliteStore

        return SqliteStore(checkpointer.path, index=index, ttl=ttl)
    postgres: Any = sys.modules.get("tether.checkpoint.postgres.store")
    # Loaded whenever a PostgresSaver exists; otherwise psycopg may not even be installed.
    if postgres is not None and isinstance(checkpointer, postgres.PostgresSaver):
        from tether.store.postgres import PostgresStore

        return PostgresStore(checkpointer.conninfo, schema=checkpointer.schema, index=index,
                             ttl=ttl, application_name="tether-store")
    from tether.store.memory import InMemoryStore

    return InMemoryStore(index=index, ttl=ttl)


__all__ = ["store_beside"]
