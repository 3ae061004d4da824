"""The SQLite store's tables, made beside the checkpoint tables of a tether file, with their
own version (`store_schema`): version N is the result of applying `MIGRATIONS[:N]`."""

from __future__ import annotations

import sqlite3
from typing import Final

from tether.errors import SchemaVersionError

# Append-only: a released step is never edited, only followed by a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        # `seq` (the rowid) is the creation order; a put over an item keeps it.
        """CREATE TABLE store_items (
            seq INTEGER PRIMARY KEY,
            prefix TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            expires_at INTEGER,
            ttl_minutes REAL,
            UNIQUE (prefix, key)
        )""",
        "CREATE INDEX store_items_expiry ON store_items (expires_at) "
        "WHERE expires_at IS NOT NULL",
        """CREATE TABLE store_vectors (
            item INTEGER NOT NULL REFERENCES store_items (seq) ON DELETE CASCADE,
            field TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (item, field)
        ) WITHOUT ROWID""",
    ),
)
LATEST_VERSION = len(MIGRATIONS)

CREATE_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS store_schema (version INTEGER PRIMARY KEY, "
    "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
GET_VERSION: Final = "SELECT coalesce(max(version), 0) FROM store_schema"
RECORD_VERSION: Final = "INSERT INTO store_schema (version) VALUES (?)"


def migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the store's tables up to `LATEST_VERSION` (call inside a write transaction).

    Raises:
        SchemaVersionError: the tables were made by a newer tether (nothing is changed).
    """
    conn.execute(CREATE_VERSION_TABLE)
    (version,) = conn.execute(GET_VERSION).fetchone()
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"{where}: its store tables were written by a newer tether (version {version}; "
            f"this tether understands up to {LATEST_VERSION}); nothing was changed")
    for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in statements:
            conn.execute(statement)
        conn.execute(RECORD_VERSION, (number,))


__all__ = ["LATEST_VERSION", "migrate"]
