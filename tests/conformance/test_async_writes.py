"""The async thread and run writes (`aput_thread`, `adelete_thread`, `adelete_run`) do exactly
what their sync twins do, on every backend: the same records, the same stored data, the same
answers for unknown ids and the same errors for bad input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tether.checkpoint.base import CheckpointStore, RunFinish, ThreadRecord
from tether.errors import RunError
from tether.types import RunEvent, RunStatus, utcnow

from .conftest import Chain, new_run, write

pytestmark = pytest.mark.anyio

Outcome = tuple[str, Any]


def outcome(call: Callable[[], Any]) -> Outcome:
    """("ok", value) or ("raised", (type, message)) of a sync call."""
    try:
        return "ok", call()
    except Exception as exc:  # noqa: BLE001 - compared with the async twin's
        return "raised", (type(exc), str(exc))


async def aoutcome(call: Callable[[], Awaitable[Any]]) -> Outcome:
    """`outcome` of an async call."""
    try:
        return "ok", await call()
    except Exception as exc:  # noqa: BLE001 - compared with the sync twin's
        return "raised", (type(exc), str(exc))


def shape(record: ThreadRecord | None) -> tuple[Any, ...] | None:
    """A thread record without its id and times (which differ between two threads)."""
    if record is None:
        return None
    return record.metadata, record.created_at <= record.updated_at


def stored(store: CheckpointStore, thread_id: str) -> dict[str, Any]:
    """Everything the store holds of a thread, as its sync API reads it."""
    checkpoint = store.get_checkpoint(thread_id)
    return {
        "thread": shape(store.get_thread(thread_id)),
        "runs": [(r.status, r.thread_id == thread_id) for r in store.list_runs(
            thread_id=thread_id)],
        "checkpoint": None if checkpoint is None else (
            checkpoint.values, checkpoint.step,
            [(w.channel, w.value) for w in checkpoint.pending_writes]),
        "history": len(list(store.list_checkpoints(thread_id))),
        "listed": thread_id in store.list_threads(),
        "found": thread_id in [t.thread_id for t in store.search_threads(limit=100)],
    }


def busy_thread(store: CheckpointStore, thread_id: str) -> str:
    """A thread with metadata, an ended run with events, two checkpoints and pending writes;
    the run's id."""
    store.put_thread(thread_id, {"owner": "ada"})
    info = new_run(store, thread_id, run_id=f"run-of-{thread_id}")
    store.mark_running(info.run_id, [RunEvent("request", utcnow(), detail="x")])
    chain = Chain(store, thread_id, run_id=info.run_id)
    chain.put({"a": 1}, nxt=("n",))
    head = chain.put({"a": 2, "b": [1, 2]}, nxt=("n",))
    store.put_writes(thread_id, "", head.id, [write("task-1", "a", 3)])
    store.finish_run(info.run_id, RunFinish(status=RunStatus.SUCCESS, checkpoint_id=head.id))
    return info.run_id


async def test_aput_thread_creates_then_merges_metadata_as_put_thread(
        store: CheckpointStore) -> None:
    made = await store.aput_thread("async", {"owner": "ada", "n": 1})
    assert made.thread_id == "async"
    assert shape(made) == shape(store.put_thread("sync", {"owner": "ada", "n": 1}))
    merged = await store.aput_thread("async", {"n": 2, "tag": ["x"]})
    assert shape(merged) == shape(store.put_thread("sync", {"n": 2, "tag": ["x"]}))
    assert merged.metadata == {"owner": "ada", "n": 2, "tag": ["x"]}
    assert merged.created_at == made.created_at and merged.updated_at >= made.updated_at
    assert store.get_thread("async") == merged
    untouched = await store.aput_thread("async")
    assert shape(untouched) == shape(store.put_thread("sync"))
    assert untouched.metadata == merged.metadata
    assert stored(store, "async") == stored(store, "sync")


async def test_aput_thread_gives_a_thread_known_by_its_runs_a_record_as_put_thread(
        store: CheckpointStore) -> None:
    for thread_id in ("async", "sync"):
        new_run(store, thread_id)
        Chain(store, thread_id).put({"a": 1})
    made = await store.aput_thread("async", {"k": "v"})
    assert shape(made) == shape(store.put_thread("sync", {"k": "v"}))
    assert stored(store, "async") == stored(store, "sync")


@pytest.mark.parametrize("metadata", [
    {"plain": "text", "n": 1.5, "nested": {"list": [1, None, True]}},
    {"x": float("nan")},
    {"x": b"bytes"},
    {1: "a key that is no string"},
    {"x": object()},
], ids=["json", "nan", "bytes", "int-key", "object"])
async def test_aput_thread_answers_odd_metadata_as_put_thread(
        store: CheckpointStore, metadata: dict[Any, Any]) -> None:
    # Each backend has its own rule for what JSON cannot hold (stored as text, refused...);
    # the async twin follows its backend's rule exactly, stored data included.
    sync = outcome(lambda: shape(store.put_thread("sync", metadata)))
    done = await aoutcome(lambda: _shaped(store.aput_thread("async", metadata)))
    if sync[0] == "ok":
        assert done[0] == "ok"
        assert _same(done[1], sync[1])
        assert _same(shape(store.get_thread("async")), shape(store.get_thread("sync")))
    else:
        assert done == sync
        assert store.get_thread("async") is None and store.get_thread("sync") is None


async def test_adelete_thread_removes_what_delete_thread_removes(
        store: CheckpointStore) -> None:
    busy_thread(store, "async")
    busy_thread(store, "sync")
    busy_thread(store, "other")
    kept = stored(store, "other")
    assert stored(store, "async") == stored(store, "sync") == kept
    assert await store.adelete_thread("async") is None
    store.delete_thread("sync")
    assert stored(store, "async") == stored(store, "sync")
    assert store.get_thread("async") is None and store.get_checkpoint("async") is None
    assert store.get_run("run-of-async") is None and store.events("run-of-async") == []
    assert stored(store, "other") == kept
    # The thread can start again from nothing: no cached head of the old one survives.
    for thread_id in ("async", "sync"):
        Chain(store, thread_id).put({"z": 9})
    assert stored(store, "async") == stored(store, "sync")
    again = store.get_checkpoint("async")
    assert again is not None and again.values == {"z": 9} and again.pending_writes == ()


async def test_adelete_thread_of_an_unknown_thread_answers_as_delete_thread(
        store: CheckpointStore) -> None:
    assert await aoutcome(lambda: store.adelete_thread("nope")) == outcome(
        lambda: store.delete_thread("nope"))
    assert await aoutcome(lambda: store.adelete_thread("nope")) == ("ok", None)


async def test_adelete_run_forgets_an_ended_run_and_keeps_its_checkpoints_as_delete_run(
        store: CheckpointStore) -> None:
    async_run = busy_thread(store, "async")
    sync_run = busy_thread(store, "sync")
    assert await store.adelete_run(async_run) is store.delete_run(sync_run) is True
    assert store.get_run(async_run) is None and store.events(async_run) == []
    assert stored(store, "async") == stored(store, "sync")
    checkpoint = store.get_checkpoint("async")
    assert checkpoint is not None and checkpoint.values == {"a": 2, "b": [1, 2]}
    # A repeat, and an id never seen, answer False as the sync call does.
    assert await store.adelete_run(async_run) is store.delete_run(sync_run) is False
    assert await store.adelete_run("nope") is store.delete_run("nope") is False


@pytest.mark.parametrize("status", [RunStatus.PENDING, RunStatus.RUNNING])
async def test_adelete_run_refuses_a_run_in_flight_with_delete_runs_error(
        store: CheckpointStore, status: RunStatus) -> None:
    run_id = new_run(store, "t", run_id="live").run_id
    if status is RunStatus.RUNNING:
        store.mark_running(run_id)
    sync = outcome(lambda: store.delete_run(run_id))
    assert sync[0] == "raised" and sync[1][0] is RunError
    assert await aoutcome(lambda: store.adelete_run(run_id)) == sync
    still = store.get_run(run_id)
    assert still is not None and still.status is status


async def _shaped(made: Awaitable[ThreadRecord]) -> tuple[Any, ...] | None:
    return shape(await made)


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN included (compared by their text: both hold the very same values)."""
    return repr(a) == repr(b)
