"""The SQLite store: the embedded default, one file in WAL mode (`SqliteSaver`)."""

from tether.checkpoint.sqlite.aio import AsyncSqliteSaver
from tether.checkpoint.sqlite.store import SqliteSaver

__all__ = ["AsyncSqliteSaver", "SqliteSaver"]
