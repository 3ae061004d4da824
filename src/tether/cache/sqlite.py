"""`SqliteCache`: node caching in a SQLite file (a tether database: it may be the file of the
checkpoints), shared by the processes of one machine."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from tether.cache.base import BaseCache, FullKey, Namespace, ValueT
from tether.checkpoint.serde import Serializer
from tether.checkpoint.sqlite.connection import Connection
from tether.errors import SchemaVersionError

LATEST_VERSION: Final = 1
SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS cache_schema (version INTEGER PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS cache_entries (
        ns TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        expires_at REAL,
        PRIMARY KEY (ns, key)
    ) WITHOUT ROWID""",
    "INSERT OR IGNORE INTO cache_schema (version) VALUES (1)",
)
GET_VERSION: Final = "SELECT max(version) FROM cache_schema"
GET: Final = "SELECT value, expires_at FROM cache_entries WHERE ns = ? AND key = ?"
DELETE_EXPIRED: Final = "DELETE FROM cache_entries WHERE ns = ? AND key = ? AND expires_at <= ?"
PUT: Final = "INSERT OR REPLACE INTO cache_entries (ns, key, value, expires_at) VALUES (?, ?, ?, ?)"
CLEAR: Final = "DELETE FROM cache_entries"
CLEAR_NAMESPACE: Final = "DELETE FROM cache_entries WHERE ns = ?"


class SqliteCache(BaseCache[ValueT]):
    """LangGraph's `SqliteCache`, in a tether SQLite file (WAL, one connection behind a lock).

    Expired entries are deleted when a `get` meets them.

    Args:
        path: the database file (created when missing), or `":memory:"`.
        serde: the serializer (default `Serializer()`).
        clock: seconds since the epoch (default `time.time`).

    Raises:
        CorruptStoreError: the file is not a tether database.
        SchemaVersionError: its cache table was made by a newer tether.
    """

    def __init__(self, *, path: str | os.PathLike[str], serde: Serializer | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(serde=serde, clock=clock)
        self.path = os.fspath(path)
        self._db = Connection(self.path, synchronous="normal", busy_timeout=5.0)
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        with self._db.write() as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            (version,) = conn.execute(GET_VERSION).fetchone()
        if version > LATEST_VERSION:
            raise SchemaVersionError(f"{self.path}: its cache table was made by a newer "
                                     f"tether (version {version})")

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        now, found, expired = self._clock(), {}, []
        with self._db.read() as conn:
            for ns, key in keys:
                row = conn.execute(GET, (_ns(ns), key)).fetchone()
                if row is None:
                    continue
                if row[1] is not None and row[1] <= now:
                    expired.append((_ns(ns), key, now))
                    continue
                found[(tuple(ns), key)] = row[0]
        if expired:
            with self._db.write() as conn:
                conn.executemany(DELETE_EXPIRED, expired)
        return {full: self.serde.loads(data) for full, data in found.items()}

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        rows = [(_ns(ns), key, self.serde.dumps(value, f"cache entry {key!r}"),
                 self._expiry(ttl)) for (ns, key), (value, ttl) in pairs.items()]
        with self._db.write() as conn:
            conn.executemany(PUT, rows)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        with self._db.write() as conn:
            if namespaces is None:
                conn.execute(CLEAR)
            else:
                conn.executemany(CLEAR_NAMESPACE, [(_ns(ns),) for ns in namespaces])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteCache(path={self.path!r})"


def _ns(namespace: Namespace) -> str:
    # JSON keeps any label intact (no separator a label could contain).
    return json.dumps(list(namespace), ensure_ascii=False)


__all__ = ["SqliteCache"]
