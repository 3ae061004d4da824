"""The Postgres long-term store (`PostgresStore`, and `AsyncPostgresStore` for async code)."""

from tether.store.postgres.aio import AsyncPostgresStore
from tether.store.postgres.base import PoolConfig, PostgresStore

__all__ = ["AsyncPostgresStore", "PoolConfig", "PostgresStore"]
