"""`copy_thread`: a thread's history under another id, in every store: the same checkpoints
(every namespace, the same ids), values and pending writes, none of them a run's; the source's
later changes (a rollback, its deletion) leave the copy as it was."""

from __future__ import annotations

import dataclasses

import pytest

from tether.checkpoint.base import CheckpointStore, RunFinish, StoredCheckpoint
from tether.types import RunStatus

from .conftest import Chain, new_run, write


def _history(store: CheckpointStore, thread_id: str, ns: str = "") -> list[StoredCheckpoint]:
    return list(store.list_checkpoints(thread_id, ns))


def _as_copied(stored: StoredCheckpoint, thread_id: str) -> StoredCheckpoint:
    return dataclasses.replace(stored, thread_id=thread_id, run_id=None)


def _filled(store: CheckpointStore) -> tuple[str, str]:
    """Thread "src": a run's three checkpoints (a value changed, one carried, one removed), a
    subgraph's two, pending writes on the last; another run's checkpoint after. The ids of the
    two runs."""
    store.put_thread("src", {"owner": "ada"})
    first = new_run(store, "src")
    chain = Chain(store, "src", run_id=first.run_id)
    chain.put({"a": 1, "b": [1, 2], "gone": "x"}, nxt=("n",))
    chain.put({"a": 2}, nxt=("n",), metadata={"step": 1})
    head = chain.put({"c": {"deep": [None, 1.5]}}, removed=("gone",), nxt=("n", "m"))
    store.put_writes("src", "", head.id, [write("task-1", "a", 3),
                                          write("task-1", "b", [9], idx=1),
                                          write("task-2", "__error__", "boom", idx=-1)])
    sub = Chain(store, "src", ns="child:1", run_id=first.run_id)
    sub.put({"x": 1})
    sub.put({"x": 2, "y": "z"})
    store.finish_run(first.run_id, RunFinish(status=RunStatus.SUCCESS, checkpoint_id=head.id))
    second = new_run(store, "src")
    Chain(store, "src", run_id=second.run_id).put({"a": 5})  # a thread of its own: a new chain
    return first.run_id, second.run_id


def test_a_copy_has_the_same_checkpoints_values_and_writes_under_the_new_id(
        store: CheckpointStore) -> None:
    _filled(store)
    store.copy_thread("src", "dst")
    for ns in ("", "child:1"):
        source = _history(store, "src", ns)
        assert source, ns
        assert _history(store, "dst", ns) == [_as_copied(s, "dst") for s in source], ns
    latest = store.get_checkpoint("dst")
    assert latest is not None and latest.values == {"a": 5}
    older = _history(store, "dst")[1]
    assert older.values == {"a": 2, "b": [1, 2], "c": {"deep": [None, 1.5]}}
    assert [(w.task_id, w.channel, w.value) for w in older.pending_writes] == [
        ("task-1", "a", 3), ("task-1", "b", [9]), ("task-2", "__error__", "boom")]
    assert store.get_writes("dst", "", older.id, "b") == store.get_writes("src", "", older.id,
                                                                          "b")
    assert store.list_runs(thread_id="dst") == []  # runs are not copied
    bare = store.get_thread("dst")  # nor its record (the caller makes it): a bare one
    assert bare is not None and bare.metadata == {}
    assert store.search_threads(ids=["dst"]) == []


def test_the_copy_outlives_what_happens_to_its_source(store: CheckpointStore) -> None:
    first, second = _filled(store)
    store.copy_thread("src", "dst")
    copied = {ns: _history(store, "dst", ns) for ns in ("", "child:1")}
    store.delete_run_checkpoints(second)  # a rollback of the source's last run
    assert [c.values["a"] for c in _history(store, "src")] == [2, 2, 1]
    Chain(store, "src").put({"a": 7})
    store.delete_thread("src")
    assert _history(store, "src") == []
    assert {ns: _history(store, "dst", ns) for ns in ("", "child:1")} == copied
    store.delete_run_checkpoints(first)  # a run whose record went with its thread
    assert {ns: _history(store, "dst", ns) for ns in ("", "child:1")} == copied


def test_a_copy_onto_a_thread_with_checkpoints_is_refused_and_changes_nothing(
        store: CheckpointStore) -> None:
    _filled(store)
    Chain(store, "dst").put({"mine": True})
    before = _history(store, "dst")
    with pytest.raises(ValueError, match="'dst' already has checkpoints"):
        store.copy_thread("src", "dst")
    assert _history(store, "dst") == before
    assert _history(store, "dst", "child:1") == []


def test_copying_a_thread_without_checkpoints_copies_nothing(store: CheckpointStore) -> None:
    store.put_thread("empty", {})
    store.copy_thread("empty", "dst")
    store.copy_thread("unknown", "dst")
    assert _history(store, "dst") == []
    Chain(store, "dst").put({"a": 1})  # the target is still free to start its own
    assert [c.values for c in _history(store, "dst")] == [{"a": 1}]


@pytest.mark.anyio
async def test_the_async_copy_copies_as_the_sync_one(store: CheckpointStore) -> None:
    _filled(store)
    await store.acopy_thread("src", "dst")
    store.copy_thread("src", "sync")
    for ns in ("", "child:1"):
        assert _history(store, "dst", ns) == [
            _as_copied(s, "dst") for s in _history(store, "sync", ns)]
    with pytest.raises(ValueError, match="already has checkpoints"):
        await store.acopy_thread("src", "dst")
