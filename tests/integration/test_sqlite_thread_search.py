"""The SQLite store's search of threads (schema version 6): a walk of `threads_by_update` from
its newest entry, which stops after `offset + limit` matches, where it read and sorted every
thread; and the upgrade of a file made before.

The conformance suite checks what a search answers (`test_threads.py`, ties included); these
tests check how SQLite plans it (its plan, not a timing: the wall clock is noisy here) and
that a file of version 5 gains the index and keeps its threads.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tether.checkpoint.base import ThreadRecord
from tether.checkpoint.serde import frame
from tether.checkpoint.sqlite import SqliteSaver, _sql, rows, schema
from tether.checkpoint.store_records import THREAD_SORTS, thread_order

INDEX = "threads_by_update"
FILTERS: list[dict[str, Any]] = [{}, {"team": "x"}, {"team": "x", "n": 3}]
"""No condition, one, two (the statement has one test of the metadata per key)."""


def _rows(path: Path, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the file by hand, outside any store; its rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _plan(path: Path, wanted: dict[str, Any], ids: list[str] | None = None,
          order: str | None = None) -> list[str]:
    """SQLite's plan of the store's search statement for `wanted` (and `ids`, in `order`:
    by default the latest update first), one step per line."""
    params: list[Any] = [] if ids is None else [json.dumps(ids)]
    for key, value in wanted.items():
        params += [f'$."{key}"', value]
    sql = "EXPLAIN QUERY PLAN " + (_sql.search_threads(len(wanted)) if order is None else
                                   _sql.search_threads(len(wanted), ids is not None, order))
    return [row[3] for row in _rows(path, sql, [*params, 10, 20])]


def _threads(count: int) -> list[ThreadRecord]:
    """`count` threads, three to an instant (ties on the update), made newest id first."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [ThreadRecord(f"t{i:04d}", start, start + timedelta(seconds=i // 3),
                         {"team": "x" if i % 2 else "y", "n": i % 5})
            for i in reversed(range(count))]


def _expected(threads: list[ThreadRecord], wanted: dict[str, Any]) -> list[str]:
    """The ids a search for `wanted` answers: latest update first, ties by id."""
    found = [t for t in threads if all(t.metadata.get(k) == v for k, v in wanted.items())]
    found.sort(key=lambda t: (-t.updated_at.timestamp(), t.thread_id))
    return [t.thread_id for t in found]


def _paged(store: SqliteSaver, wanted: dict[str, Any], size: int) -> list[str]:
    """Every thread a search for `wanted` finds, a page of `size` at a time."""
    found: list[str] = []
    while page := store.search_threads(metadata=wanted, limit=size, offset=len(found)):
        found += [t.thread_id for t in page]
    return found


@pytest.mark.parametrize("analyzed", [False, True], ids=["as-made", "analyzed"])
@pytest.mark.parametrize("wanted", FILTERS, ids=["no-filter", "one-key", "two-keys"])
def test_a_search_of_threads_walks_the_index_and_sorts_nothing(
        tmp_path: Path, wanted: dict[str, Any], analyzed: bool) -> None:
    # Without the index: `SCAN threads` then `USE TEMP B-TREE FOR ORDER BY`, every thread read
    # and sorted for a page of ten. tether never runs ANALYZE, but a user's `PRAGMA optimize`
    # may: the plan must not depend on it.
    path = tmp_path / "store.db"
    with SqliteSaver(path) as store:
        for record in _threads(300 if analyzed else 0):
            store.put_thread(record.thread_id, record.metadata)
    if analyzed:
        _rows(path, "ANALYZE")
    plan = _plan(path, wanted)
    assert plan == [f"SCAN threads USING INDEX {INDEX}"], plan
    assert not [step for step in plan if "TEMP B-TREE" in step], plan


@pytest.mark.parametrize("wanted", FILTERS, ids=["no-filter", "one-key", "two-keys"])
def test_the_oldest_first_order_walks_the_same_index_backwards(
        tmp_path: Path, wanted: dict[str, Any]) -> None:
    # Ascending is the exact reverse of the default order, ties included
    # (`updated_at, thread_id DESC`), so the index serves it too; ties by id ascending would
    # make SQLite sort.
    path = tmp_path / "store.db"
    SqliteSaver(path).close()
    plan = _plan(path, wanted, order=thread_order("updated_at", ascending=True))
    assert plan == [f"SCAN threads USING INDEX {INDEX}"], plan


@pytest.mark.parametrize("order", [thread_order(by, up) for by in THREAD_SORTS
                                   for up in (False, True)])
def test_a_search_by_ids_looks_each_one_up_and_reads_no_other_thread(
        tmp_path: Path, order: str) -> None:
    path = tmp_path / "store.db"
    SqliteSaver(path).close()
    plan = _plan(path, {"team": "x"}, ids=["a", "b"], order=order)
    assert [step for step in plan if step.startswith("SCAN threads")] == [], plan
    assert [step for step in plan if step.startswith("SEARCH threads USING ")
            and "(thread_id=?)" in step], plan


def _version_5(path: Path, threads: list[ThreadRecord]) -> None:
    """A file as tether left it at schema version 5, holding `threads`."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.create_function(_sql.FRAME_FUNCTION, 1, frame, deterministic=True)
        conn.execute(_sql.BEGIN_WRITE)
        for _description, statements in _sql.MIGRATIONS[:5]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(_sql.set_application_id(_sql.APPLICATION_ID))
        conn.execute(_sql.set_user_version(5))
        conn.executemany(_sql.PUT_THREAD, [rows.thread_row(t) for t in threads])
        conn.execute(_sql.COMMIT)
    finally:
        conn.close()


def test_a_file_of_version_5_gains_the_index_and_its_threads_are_found_in_order(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    threads = _threads(40)
    _version_5(path, threads)
    assert _rows(path, "SELECT name FROM sqlite_master WHERE name = ?", (INDEX,)) == []
    with SqliteSaver(path) as store:  # migrates to version 6
        assert _rows(path, "PRAGMA user_version") == [(schema.LATEST_VERSION,)]
        assert schema.LATEST_VERSION == 6
        assert _rows(path, "SELECT tbl_name FROM sqlite_master WHERE name = ?",
                     (INDEX,)) == [("threads",)]
        assert _plan(path, {}) == [f"SCAN threads USING INDEX {INDEX}"]
        for wanted in FILTERS:
            expected = _expected(threads, wanted)
            assert len(expected) > 3, wanted  # more than a page
            assert [t.thread_id for t in store.search_threads(
                metadata=wanted, limit=len(threads))] == expected, wanted
            for size in (1, 2, 3, 7):  # pages that end inside a group of ties, and between
                assert _paged(store, wanted, size) == expected, (wanted, size)
        kept = store.get_thread("t0007")
        assert kept == next(t for t in threads if t.thread_id == "t0007")
        updated = store.put_thread("t0000", {"moved": True})  # now the latest
        assert store.search_threads(limit=1) == [updated]


def test_the_migration_can_be_applied_again(tmp_path: Path) -> None:
    # A file taken back to version 5 with its index still there (as the reapplying
    # conformance test of checksums does) migrates again without an error.
    path = tmp_path / "store.db"
    with SqliteSaver(path) as store:
        store.put_thread("t", {"a": 1})
    _rows(path, _sql.set_user_version(5))
    with SqliteSaver(path) as store:
        assert [t.thread_id for t in store.search_threads()] == ["t"]
    assert _rows(path, "PRAGMA user_version") == [(schema.LATEST_VERSION,)]
