"""Opening a tether SQLite file: refusing what is not ours, and migrating what is.

A tether database carries `PRAGMA application_id = 0x54455448` and its schema version in
`PRAGMA user_version`; version N is the result of applying `_sql.MIGRATIONS[:N]`. Nothing is
written to a file until it is known to be an empty database or a tether one of a version this
code understands.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from tether.checkpoint.serde import frame
from tether.checkpoint.sqlite import _sql
from tether.errors import CorruptStoreError, SchemaVersionError

Synchronous = Literal["normal", "full"]

LATEST_VERSION = len(_sql.MIGRATIONS)
"""The schema version this tether writes."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
MEMORY = ":memory:"
_NOT_A_DATABASE = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})


def connect(path: str, *, synchronous: Synchronous, busy_timeout: float) -> sqlite3.Connection:
    """Open `path` (created when missing) and bring its schema up to `LATEST_VERSION`.

    The connection is in autocommit mode (`isolation_level=None`): the store issues its own
    `BEGIN IMMEDIATE` / `COMMIT`, so no statement ever opens a transaction implicitly.

    Raises:
        FileNotFoundError: the parent directory does not exist.
        CorruptStoreError: the file is not a SQLite database, or not a tether one.
        SchemaVersionError: the database was written by a newer tether.
    """
    if path != MEMORY:
        _check_file(Path(path))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=busy_timeout, cached_statements=256)
    try:
        version = _identify(conn, path)
        conn.execute(_sql.set_busy_timeout(busy_timeout))
        conn.execute(_sql.SET_FOREIGN_KEYS)
        if path != MEMORY:
            conn.execute(_sql.SET_JOURNAL_WAL)
        conn.execute(_sql.set_synchronous(synchronous))
        if version < LATEST_VERSION:
            migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", None) in _NOT_A_DATABASE:
            raise CorruptStoreError(
                f"{path}: cannot be read as a tether database ({exc}); tether leaves it untouched"
            ) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def reader(path: str, *, busy_timeout: float) -> sqlite3.Connection:
    """A second, read-only connection to a file `connect` has opened (and migrated)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=busy_timeout, cached_statements=256)
    conn.execute(_sql.set_busy_timeout(busy_timeout))
    conn.execute(_sql.QUERY_ONLY)
    return conn


def _check_file(path: Path) -> None:
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot open tether store {str(path)!r}: directory {str(path.parent)!r} does not exist"
        )
    if path.is_dir():
        raise CorruptStoreError(f"{path}: is a directory, not a tether database")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_MAGIC))
        if header != _SQLITE_MAGIC:
            raise CorruptStoreError(
                f"{path}: is not a SQLite database; tether leaves it untouched"
            )


def _identify(conn: sqlite3.Connection, path: str) -> int:
    """The file's tether schema version (0: an empty database), read without writing."""
    app_id = conn.execute(_sql.GET_APPLICATION_ID).fetchone()[0]
    version = conn.execute(_sql.GET_USER_VERSION).fetchone()[0]
    if app_id == 0 and conn.execute(_sql.COUNT_OBJECTS).fetchone()[0] == 0:
        return 0
    if app_id != _sql.APPLICATION_ID:
        raise CorruptStoreError(
            f"{path}: is a SQLite database but not a tether one (application_id {app_id}); "
            "tether leaves it untouched"
        )
    _check_version(version, path)
    return int(version)


def _check_version(version: int, path: str) -> None:
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"{path}: was written by a newer tether (schema version {version}; this tether "
            f"understands up to {LATEST_VERSION}). Upgrade tether to open it; the file was "
            "not changed."
        )


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Apply the missing migrations in one transaction; returns the new version.

    The version is read again under the write lock, so several processes opening a new file
    at once migrate it exactly once.
    """
    conn.create_function(_sql.FRAME_FUNCTION, 1, frame, deterministic=True)
    conn.execute(_sql.BEGIN_WRITE)
    try:
        version = int(conn.execute(_sql.GET_USER_VERSION).fetchone()[0])
        _check_version(version, path)
        for _description, statements in _sql.MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(_sql.set_application_id(_sql.APPLICATION_ID))
        conn.execute(_sql.set_user_version(LATEST_VERSION))
        conn.execute(_sql.COMMIT)
    except BaseException:
        conn.execute(_sql.ROLLBACK)
        raise
    return LATEST_VERSION


__all__ = ["LATEST_VERSION", "Synchronous", "connect", "migrate"]
