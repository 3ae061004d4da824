"""Thread records as store operations: created explicitly (with metadata), and bare records for
threads known only by their runs or checkpoints."""

from __future__ import annotations

from typing import Any

from tether.checkpoint.base import ThreadRecord
from tether.checkpoint.json_fit import check_metadata
from tether.checkpoint.postgres import _sql, rows
from tether.checkpoint.postgres.ops import Op, Query
from tether.checkpoint.store_records import ThreadQuery
from tether.types import utcnow


def put(thread_id: str, metadata: dict[str, Any] | None) -> Op[ThreadRecord]:
    """Create a thread, or merge `metadata` into its record (a shallow merge): one statement."""
    check_metadata(metadata, "thread metadata")
    now = utcnow()
    record = ThreadRecord(thread_id, now, now, dict(metadata or {}))
    row = yield Query(_sql.PUT_THREAD, rows.thread_row(record))
    return rows.thread(row)


def get(thread_id: str) -> Op[ThreadRecord | None]:
    """A thread's record; a thread with runs or checkpoints but no record gets a bare one,
    created when its first run was."""
    row = yield Query(_sql.GET_THREAD, {"t": thread_id})
    if row[0] is not None:
        return rows.thread(row[:4])
    first_run, has_checkpoints = row[4], row[5]
    if first_run is None and not has_checkpoints:
        return None
    at = first_run if first_run is not None else utcnow()
    return ThreadRecord(thread_id, at, at, {})


def search(query: ThreadQuery) -> Op[list[ThreadRecord]]:
    """The recorded threads `query` asks for, in its order: one statement."""
    sql = _sql.search_threads(len(query.metadata), query.ids is not None, query.order)
    found = yield Query(sql, [*_filter_params(query), query.limit, query.offset], "all")
    return [rows.thread(r) for r in found]


def count(query: ThreadQuery) -> Op[int]:
    """How many recorded threads `query` matches: one statement."""
    (found,) = yield Query(_sql.count_threads(len(query.metadata), query.ids is not None),
                           _filter_params(query))
    return int(found)


def _filter_params(query: ThreadQuery) -> list[Any]:
    """The parameters of `_sql`'s thread filter for `query`."""
    params: list[Any] = [] if query.ids is None else [sorted(query.ids)]
    return params + [p for key, value in query.metadata.items()
                     for p in (key, rows.jsonb(value))]


def listing(limit: int | None) -> Op[list[str]]:
    """Ids of threads with checkpoints or runs, most recently checkpointed first."""
    found = yield Query(_sql.LIST_THREADS, (limit,), "all")
    return [thread_id for (thread_id,) in found]


def copy(source: str, target: str) -> Op[None]:
    """Copy a thread's checkpoints, values and writes to `target`: two statements, to run in
    one transaction.

    Raises:
        ValueError: `target` already has checkpoints (nothing is copied).
    """
    params = {"s": source, "t": target}
    fresh, _copied = yield Query(_sql.COPY_THREAD, params)
    if not fresh:
        raise ValueError(f"thread {target!r} already has checkpoints")
    yield Query(_sql.COPY_THREAD_VALUES, params, "none")


def delete(thread_id: str) -> Op[None]:
    """Remove a thread's checkpoints, writes, runs, their logs and its record: one statement."""
    yield Query(_sql.DELETE_THREAD, {"t": thread_id}, "none")


__all__ = ["copy", "count", "delete", "get", "listing", "put", "search"]
