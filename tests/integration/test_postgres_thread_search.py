"""The Postgres store's search of threads (schema version 5): `threads_by_update` serves its
`ORDER BY updated_at DESC, thread_id`, so a page is a walk of the index from its newest entry
that stops after `offset + limit` matches, not a scan and a sort of every thread; and the
upgrade of a schema made before. Each test has a schema of its own on the test server.

The conformance suite checks what a search answers (`test_threads.py`, ties included); these
tests check the plans (not a timing: the wall clock is noisy here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conformance.conftest import fresh_schema, make_old_schema
from tether.checkpoint.postgres import PostgresSaver, _sql
from tether.checkpoint.postgres.schema import LATEST_VERSION
from tether.checkpoint.store_records import thread_order

pytestmark = pytest.mark.postgres

INDEX = "threads_by_update"
THREADS = 2_000
FILTERS: list[dict[str, Any]] = [{}, {"team": "x"}, {"team": "x", "n": 3}]
"""No condition, one, two (the statement has one test of the metadata per key)."""


@pytest.fixture
def where() -> Iterator[tuple[str, str]]:
    """(dsn, schema) of a fresh schema."""
    with fresh_schema() as found:
        yield found


def sql(where: tuple[str, str], statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(where[0], autocommit=True, options=f"-c search_path={where[1]}") as c:
        cur = c.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _fill(where: tuple[str, str], count: int) -> None:
    """`count` threads, three to an instant (ties on the update), made in time order (as
    threads are: each one made or updated now), then ANALYZE."""
    sql(where, """INSERT INTO threads SELECT 't' || lpad(i::text, 5, '0'), '2024-01-01',
            timestamptz '2024-01-01' + (i / 3) * interval '1 second',
            jsonb_build_object('team', CASE WHEN i %% 2 = 1 THEN 'x' ELSE 'y' END, 'n', i %% 5)
        FROM generate_series(0, %s - 1) AS i""", (count,))
    sql(where, "ANALYZE threads")


def _plan(where: tuple[str, str], wanted: dict[str, Any], *settings: str,
          order: str = thread_order("updated_at", ascending=False)) -> dict[str, Any]:
    """Postgres's plan (EXPLAIN, JSON) of the store's search statement for a page of ten, in
    `order` (by default the latest update first)."""
    params = [p for key, value in wanted.items() for p in (key, Jsonb(value))]
    statement = _sql.search_threads(len(wanted), order=order)
    with psycopg.connect(where[0], autocommit=True, options=f"-c search_path={where[1]}") as c:
        for setting in settings:
            c.execute(setting)
        ((found,),) = c.execute("EXPLAIN (FORMAT JSON) " + statement,
                                [*params, 10, 20]).fetchall()
    plan: dict[str, Any] = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan's nodes, depth first."""
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


def _walks_the_index(plan: dict[str, Any]) -> None:
    kinds = [(n["Node Type"], n.get("Index Name")) for n in _nodes(plan)]
    assert ("Index Scan", INDEX) in kinds, kinds
    assert not [kind for kind, _ in kinds if kind in ("Sort", "Incremental Sort", "Seq Scan")], (
        kinds)


def test_a_search_without_a_filter_is_planned_as_a_walk_of_the_index(
        where: tuple[str, str]) -> None:
    # The planner's own choice, on a table with statistics: a page of ten is a walk of a few
    # entries, where without the index it is a scan and a sort of all 2,000.
    PostgresSaver(where[0], schema=where[1]).close()
    _fill(where, THREADS)
    _walks_the_index(_plan(where, {}))


@pytest.mark.parametrize("wanted", FILTERS, ids=["no-filter", "one-key", "two-keys"])
def test_the_index_serves_the_order_of_any_search_without_a_sort(
        where: tuple[str, str], wanted: dict[str, Any]) -> None:
    # With a filter the planner's choice depends on its guess of how many threads match (one
    # in 200 per key: it keeps no statistics on metadata keys), and for a rare key it rightly
    # prefers a scan. So scans and sorts are priced out here: what is checked is that the
    # index can serve the statement's order (its columns, their directions, the tie-breaker),
    # so that no sort is needed. Without such an index the plan must still scan and sort.
    PostgresSaver(where[0], schema=where[1]).close()
    _fill(where, THREADS)
    _walks_the_index(_plan(where, wanted, "SET enable_seqscan = off", "SET enable_sort = off"))


def test_the_oldest_first_order_walks_the_same_index_backwards(
        where: tuple[str, str]) -> None:
    # Ascending is the exact reverse of the default order, ties included
    # (`updated_at, thread_id DESC`): the index serves it with no sort.
    PostgresSaver(where[0], schema=where[1]).close()
    _fill(where, THREADS)
    _walks_the_index(_plan(where, {}, order=thread_order("updated_at", ascending=True)))
    _walks_the_index(_plan(where, {"team": "x"}, "SET enable_seqscan = off",
                           "SET enable_sort = off",
                           order=thread_order("updated_at", ascending=True)))


def _indexed(where: tuple[str, str]) -> list[Any]:
    """The table `threads_by_update` indexes in the test's schema (none: no index)."""
    return sql(where, "SELECT tablename FROM pg_indexes WHERE schemaname = %s "
               "AND indexname = %s", (where[1], INDEX))


def _expected(where: tuple[str, str], wanted: dict[str, Any]) -> list[str]:
    """The ids a search for `wanted` answers, computed in Python from the rows: latest update
    first, ties by id."""
    found = [(updated_at, thread_id) for thread_id, updated_at, metadata in sql(
        where, "SELECT thread_id, updated_at, metadata FROM threads")
        if all(metadata.get(k) == v for k, v in wanted.items())]
    found.sort(key=lambda row: (-row[0].timestamp(), row[1]))
    return [thread_id for _, thread_id in found]


def test_a_schema_of_version_4_gains_the_index_and_its_threads_are_found_in_order(
        where: tuple[str, str]) -> None:
    make_old_schema(*where, 4)
    _fill(where, 40)
    assert _indexed(where) == []
    store = PostgresSaver(where[0], schema=where[1])  # migrates to version 5
    try:
        assert LATEST_VERSION == 5
        assert sql(where, "SELECT version FROM tether_schema ORDER BY 1") == [
            (v,) for v in range(1, LATEST_VERSION + 1)]
        assert _indexed(where) == [("threads",)]
        for wanted in FILTERS:
            expected = _expected(where, wanted)
            assert len(expected) > 3, wanted  # more than a page
            for size in (1, 2, 3, 7):  # pages that end inside a group of ties, and between
                found: list[str] = []
                while page := store.search_threads(metadata=wanted, limit=size,
                                                   offset=len(found)):
                    found += [t.thread_id for t in page]
                assert found == expected, (wanted, size)
        updated = store.put_thread("t00000", {"moved": True})  # now the latest
        assert store.search_threads(limit=1) == [updated]
    finally:
        store.close()


def test_the_migration_can_be_applied_again(where: tuple[str, str]) -> None:
    # A schema taken back to version 4 with its index still there (as the reapplying
    # conformance test of checksums does) migrates again without an error.
    PostgresSaver(where[0], schema=where[1]).close()
    sql(where, "DELETE FROM tether_schema WHERE version = 5")
    store = PostgresSaver(where[0], schema=where[1])
    try:
        store.put_thread("t", {"a": 1})
        assert [t.thread_id for t in store.search_threads()] == ["t"]
    finally:
        store.close()
    assert sql(where, "SELECT max(version) FROM tether_schema") == [(LATEST_VERSION,)]
