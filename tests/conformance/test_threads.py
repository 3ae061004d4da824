"""Thread records: created explicitly with metadata, found by metadata, deleted with the thread."""

from __future__ import annotations

from tether.checkpoint.base import CheckpointStore

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


def test_delete_thread_removes_its_record(store: CheckpointStore) -> None:
    store.put_thread("t", {"a": 1})
    store.delete_thread("t")
    assert store.get_thread("t") is None
    assert store.search_threads() == []
