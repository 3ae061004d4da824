"""A SQLite file's write lock held by a connection of the test's own: the store's next write
waits (in SQLite's busy handler) until the test lets it go, which makes a slow disk or another
process's transaction deterministic."""

from __future__ import annotations

import os
import sqlite3


class WriteLock:
    """The file's write lock, held for the `with` block."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def __enter__(self) -> WriteLock:
        self._conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.execute("ROLLBACK")
        self._conn.close()
