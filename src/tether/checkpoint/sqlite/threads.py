"""Thread records: threads created explicitly (with metadata), and bare records for threads known
only by their runs or checkpoints."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tether.checkpoint.base import ThreadRecord
from tether.checkpoint.json_fit import check_metadata
from tether.checkpoint.query import Op, Query
from tether.checkpoint.sqlite import _sql, rows
from tether.checkpoint.sqlite.connection import Connection
from tether.checkpoint.store_records import ThreadQuery
from tether.types import utcnow


def put(thread_id: str, metadata: dict[str, Any] | None) -> Op[ThreadRecord]:
    """Create a thread, or merge `metadata` into its record (a shallow merge)."""
    check_metadata(metadata, "thread metadata")
    now = utcnow()
    row = yield Query(_sql.GET_THREAD, (thread_id,))
    if row is None:
        record = ThreadRecord(thread_id, now, now, dict(metadata or {}))
    else:
        old = rows.thread(row)
        record = ThreadRecord(thread_id, old.created_at, now,
                              {**old.metadata, **(metadata or {})})
    yield Query(_sql.PUT_THREAD, rows.thread_row(record), "none")
    return record


def delete(thread_id: str) -> Op[None]:
    """Delete a thread: its record, runs, events, checkpoints and writes (the store forgets
    its cached heads once this has committed)."""
    for statement in _sql.DELETE_THREAD:
        yield Query(statement, (thread_id,), "none")


def copy(source: str, target: str) -> Op[None]:
    """Copy a thread's checkpoints, values and writes to `target` (`_sql.COPY_THREAD`).

    Raises:
        ValueError: `target` already has checkpoints (nothing is copied).
    """
    if (yield Query(_sql.THREAD_HAS_CHECKPOINTS, (target,))) is not None:
        raise ValueError(f"thread {target!r} already has checkpoints")
    for statement in _sql.COPY_THREAD:
        yield Query(statement, (source, target), "none")


def get(db: Connection, thread_id: str) -> ThreadRecord | None:
    """A thread's record; a thread with runs or checkpoints but no record gets a bare one,
    created when its first run was."""
    with db.read() as conn:
        row = conn.execute(_sql.GET_THREAD, (thread_id,)).fetchone()
        if row is not None:
            return rows.thread(row)
        first = conn.execute(_sql.FIRST_RUN_OF_THREAD, (thread_id,)).fetchone()
        if first is None and conn.execute(_sql.THREAD_HAS_CHECKPOINTS,
                                          (thread_id,)).fetchone() is None:
            return None
    at = datetime.fromisoformat(first[0]) if first is not None else utcnow()
    return ThreadRecord(thread_id, at, at, {})


def search(db: Connection, query: ThreadQuery) -> list[ThreadRecord]:
    """The recorded threads `query` asks for, in its order."""
    if query.ids is not None and not query.ids:
        return []
    params = _filter_params(query)
    if params is None:  # a value SQLite's JSON functions cannot compare: matched in Python
        return query.page(rows.thread(row) for row in db.all(_sql.ALL_THREADS))
    sql = _sql.search_threads(len(query.metadata), query.ids is not None, query.order)
    return [rows.thread(row) for row in db.all(sql, [*params, query.limit, query.offset])]


def count(db: Connection, query: ThreadQuery) -> int:
    """How many recorded threads `query` matches."""
    if query.ids is not None and not query.ids:
        return 0
    params = _filter_params(query)
    if params is None:
        return sum(query.matches(rows.thread(row)) for row in db.all(_sql.ALL_THREADS))
    ((found,),) = db.all(_sql.count_threads(len(query.metadata), query.ids is not None),
                         params)
    return int(found)


def _filter_params(query: ThreadQuery) -> list[Any] | None:
    """The parameters of `_sql`'s thread filter for `query`, or None when a metadata value is
    not a plain scalar (the common case, a tenant or a user id, is filtered by SQLite)."""
    if not all(_scalar(v) for v in query.metadata.values()):
        return None
    params: list[Any] = [] if query.ids is None else [json.dumps(sorted(query.ids))]
    for key, value in query.metadata.items():
        params += [_json_path(key), value]
    return params


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _json_path(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'


__all__ = ["copy", "count", "delete", "get", "put", "search"]
