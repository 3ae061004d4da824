"""Thread records: created explicitly with metadata, found by metadata, deleted with the thread."""

from __future__ import annotations

import math
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tether.checkpoint.base import CheckpointStore, ThreadRecord

from .conftest import Chain, new_run


def test_put_thread_creates_a_record_then_merges_metadata_into_it(
        store: CheckpointStore) -> None:
    created = store.put_thread("t", {"owner": "ada", "n": 1})
    assert created.thread_id == "t" and created.metadata == {"owner": "ada", "n": 1}
    updated = store.put_thread("t", {"n": 2, "tag": ["x"]})
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    assert updated.metadata == {"owner": "ada", "n": 2, "tag": ["x"]}
    assert store.get_thread("t") == updated


def test_get_thread_gives_a_bare_record_for_a_thread_known_only_by_its_runs_or_checkpoints(
        store: CheckpointStore) -> None:
    info = new_run(store, "by-run")
    Chain(store, "by-checkpoint").put({"a": 1})
    by_run = store.get_thread("by-run")
    assert by_run is not None and by_run.metadata == {}
    assert by_run.created_at == info.created_at
    by_checkpoint = store.get_thread("by-checkpoint")
    assert by_checkpoint is not None and by_checkpoint.metadata == {}
    assert store.get_thread("unknown") is None


def test_search_threads_matches_every_given_key_latest_first_with_offset_and_limit(
        store: CheckpointStore) -> None:
    store.put_thread("a", {"team": "x", "env": "prod"})
    store.put_thread("b", {"team": "y"})
    store.put_thread("c", {"team": "x"})
    store.put_thread("a", {"touched": True})
    assert [t.thread_id for t in store.search_threads(metadata={"team": "x"})] == ["a", "c"]
    assert [t.thread_id for t in store.search_threads(
        metadata={"team": "x", "env": "prod"})] == ["a"]
    assert [t.thread_id for t in store.search_threads()] == ["a", "c", "b"]
    assert [t.thread_id for t in store.search_threads(limit=1, offset=1)] == ["c"]
    assert store.search_threads(metadata={"team": "z"}) == []


_CLOCKS = ("tether.checkpoint.memory", "tether.checkpoint.sqlite.threads",
           "tether.checkpoint.postgres.threads")
"""The modules whose `utcnow` stamps a thread's record, one per backend."""


def _threads_with_ties(store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six threads, some created or updated in the same instant: created f, then c, a and b
    together, then e and d together, when a is updated (beside e and d)."""
    now = [datetime(2024, 1, 1, tzinfo=UTC)]
    for name in _CLOCKS:
        module = sys.modules.get(name)  # the store's own is imported; others may not be
        if module is not None:
            monkeypatch.setattr(module, "utcnow", lambda: now[0])
    store.put_thread("f", {"team": "x", "tags": ["t"]})
    now[0] += timedelta(seconds=1)
    for thread_id in ("c", "a", "b"):
        store.put_thread(thread_id, {"team": "x", "tags": ["t"]})
    now[0] += timedelta(seconds=1)
    store.put_thread("e", {"team": "y"})
    store.put_thread("d", {"team": "x"})
    store.put_thread("a", {"touched": True})  # moves up beside the newest, d and e


def _ids(found: list[ThreadRecord]) -> list[str]:
    return [t.thread_id for t in found]


def test_search_threads_breaks_ties_on_the_update_by_id_so_pages_hold_each_thread_once(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Threads updated in the same instant: every store orders them by id (`updated_at DESC,
    # thread_id`), whatever order they were made in, so that a page taken after another
    # neither repeats nor skips one.
    _threads_with_ties(store, monkeypatch)
    newest_first = ["a", "d", "e", "b", "c", "f"]
    assert _ids(store.search_threads()) == newest_first
    for size in (1, 2, 4):
        pages = [store.search_threads(limit=size, offset=offset)
                 for offset in range(0, len(newest_first), size)]
        assert [t.thread_id for page in pages for t in page] == newest_first, size
    assert _ids(store.search_threads(metadata={"team": "x"}, limit=2, offset=1)) == ["d", "b"]
    # A list value: SQLite filters it in Python (not in SQL), in the same order.
    assert _ids(store.search_threads(metadata={"tags": ["t"]})) == ["a", "b", "c", "f"]
    assert _ids(store.search_threads(metadata={"tags": ["t"]}, limit=2, offset=1)) == [
        "b", "c"]


_ORDERS = {
    ("updated_at", False): ["a", "d", "e", "b", "c", "f"],
    ("updated_at", True): ["f", "c", "b", "e", "d", "a"],
    ("created_at", False): ["d", "e", "a", "b", "c", "f"],
    ("created_at", True): ["f", "c", "b", "a", "e", "d"],
    ("thread_id", False): ["f", "e", "d", "c", "b", "a"],
    ("thread_id", True): ["a", "b", "c", "d", "e", "f"],
}


@pytest.mark.parametrize(("sort_by", "ascending"), list(_ORDERS),
                         ids=[f"{by}-{'asc' if up else 'desc'}" for by, up in _ORDERS])
def test_search_threads_orders_by_each_field_either_way_with_ties_by_id_reversed(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch, sort_by: str,
        ascending: bool) -> None:
    # An ascending order is the exact reverse of the descending one, ties included: pages
    # taken one after another hold each thread once, in SQL and in Python alike.
    _threads_with_ties(store, monkeypatch)
    expected = _ORDERS[sort_by, ascending]
    order = {"sort_by": sort_by, "ascending": ascending}
    assert _ids(store.search_threads(**order)) == expected
    for size in (1, 2, 4):
        pages = [store.search_threads(**order, limit=size, offset=offset)
                 for offset in range(0, len(expected), size)]
        assert [t.thread_id for page in pages for t in page] == expected, size
    team_x = [t for t in expected if t != "e"]
    assert _ids(store.search_threads(metadata={"team": "x"}, **order)) == team_x
    tagged = [t for t in expected if t in "abcf"]  # a list value: SQLite matches in Python
    assert _ids(store.search_threads(metadata={"tags": ["t"]}, **order, limit=3)) == tagged[:3]
    assert _ids(store.search_threads(metadata={"tags": ["t"]}, **order, offset=1)) == tagged[1:]
    assert _ids(store.search_threads(ids=["e", "a", "zz", "a"], **order)) == [
        t for t in expected if t in "ae"]


def test_search_threads_by_ids_matches_metadata_too_and_no_ids_find_nothing(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _threads_with_ties(store, monkeypatch)
    assert _ids(store.search_threads(ids=("f", "e", "a"))) == ["a", "e", "f"]
    assert _ids(store.search_threads(ids={"f", "e", "a"}, metadata={"team": "x"})) == ["a", "f"]
    assert _ids(store.search_threads(ids=["b", "d"], metadata={"tags": ["t"]})) == ["b"]
    assert _ids(store.search_threads(ids=["f", "e", "a"], limit=1, offset=1)) == ["e"]
    assert store.search_threads(ids=[]) == []
    assert store.search_threads(ids=[], metadata={"tags": ["t"]}) == []
    assert store.search_threads(ids=["nobody"]) == []


def test_count_threads_counts_what_a_search_finds(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _threads_with_ties(store, monkeypatch)
    new_run(store, "known-by-its-run")  # no record: neither found nor counted
    cases: list[dict[str, Any]] = [
        {}, {"metadata": {"team": "x"}}, {"metadata": {"team": "x", "touched": True}},
        {"metadata": {"tags": ["t"]}}, {"metadata": {"team": "z"}}, {"ids": ["a", "e", "zz"]},
        {"ids": ["a", "e"], "metadata": {"team": "x"}}, {"ids": ["b", "d"],
                                                         "metadata": {"tags": ["t"]}},
        {"ids": []}]
    for case in cases:
        found = store.search_threads(**case, limit=1000)
        assert store.count_threads(**case) == len(found), case
    assert [store.count_threads(**case) for case in cases] == [6, 5, 1, 4, 0, 2, 1, 1, 0]
    with pytest.raises(ValueError, match="filter cannot be stored"):
        store.count_threads(metadata={"score": math.nan})


def test_the_default_count_pages_through_the_search(store: CheckpointStore) -> None:
    # A store that does not override `count_threads` counts the pages of its own search.
    for index in range(5):
        store.put_thread(f"t{index}", {"odd": index % 2})
    counted = CheckpointStore.count_threads
    assert counted(store) == 5
    assert counted(store, metadata={"odd": 1}) == 2
    assert counted(store, ids=["t1", "t4", "nobody"]) == 2


@pytest.mark.parametrize("sort_by", ["status", "metadata", "updated_at; DROP TABLE threads"])
def test_search_threads_refuses_an_order_it_does_not_know_by_name(
        store: CheckpointStore, sort_by: str) -> None:
    store.put_thread("t", {})
    with pytest.raises(ValueError, match=re.escape(f"cannot be sorted by {sort_by!r}")):
        store.search_threads(sort_by=sort_by)
    assert _ids(store.search_threads()) == ["t"]


def test_delete_thread_removes_its_record(store: CheckpointStore) -> None:
    store.put_thread("t", {"a": 1})
    store.delete_thread("t")
    assert store.get_thread("t") is None
    assert store.search_threads() == []


@pytest.mark.parametrize(("metadata", "where"), [
    ({"score": math.nan}, "a number that is not finite (nan) at .score"),
    ({"deep": {"x": [1, -math.inf]}}, "a number that is not finite (-inf) at .deep.x[1]"),
    ({"note": "a\x00b"}, "a NUL character at .note"),
    ({"bad": "\ud800"}, "a lone surrogate (text that is not valid Unicode) at .bad"),
])
def test_every_store_refuses_the_same_unstorable_thread_metadata_and_keeps_what_it_had(
        store: CheckpointStore, metadata: dict[str, Any], where: str) -> None:
    store.put_thread("t", {"kept": 1})
    with pytest.raises(ValueError, match=re.escape(f"thread metadata cannot be stored: {where}")):
        store.put_thread("t", metadata)
    with pytest.raises(ValueError, match=re.escape(f"filter cannot be stored: {where}")):
        store.search_threads(metadata=metadata)
    kept = store.get_thread("t")
    assert kept is not None and kept.metadata == {"kept": 1}


@pytest.mark.anyio
async def test_the_async_thread_write_refuses_it_too(store: CheckpointStore) -> None:
    with pytest.raises(ValueError, match="not finite"):
        await store.aput_thread("t", {"score": math.inf})
    assert store.get_thread("t") is None
