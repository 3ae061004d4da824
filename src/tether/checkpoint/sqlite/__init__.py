"""The SQLite store: the embedded default, one file in WAL mode (`SqliteSaver`)."""

from tether.checkpoint.sqlite.store import AsyncSqliteSaver, SqliteSaver

__all__ = ["AsyncSqliteSaver", "SqliteSaver"]
