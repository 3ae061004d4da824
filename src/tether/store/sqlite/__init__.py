"""The SQLite long-term store (`SqliteStore`, and `AsyncSqliteStore` for async code)."""

from tether.store.sqlite.aio import AsyncSqliteStore
from tether.store.sqlite.base import SqliteStore

__all__ = ["AsyncSqliteStore", "SqliteStore"]
