"""The async reads (`aget_thread`, `asearch_threads`, `alist_checkpoints`, and the older
`aget_run`, `alist_runs`, `aget_checkpoint`, `aevents`, `aload`, `acancel_requests`) answer
exactly as their sync twins, on every backend: the same records, in the same order, the same
`None` for unknown ids and the same errors."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tether.checkpoint.base import CheckpointStore, RunFinish, StoredCheckpoint
from tether.checkpoint.paging import PAGE
from tether.types import CancelReason, RunEvent, RunStatus, utcnow

from .conftest import Chain, new_run, write
from .test_async_writes import aoutcome, outcome

pytestmark = pytest.mark.anyio


def filled(store: CheckpointStore) -> dict[str, str]:
    """Threads of every kind (recorded with metadata, known by runs alone, by checkpoints
    alone), runs of every status, checkpoints with pending writes; the run ids by role."""
    store.put_thread("ada", {"owner": "ada", "n": 1, "tags": ["x", "y"]})
    store.put_thread("bob", {"owner": "bob", "n": 2, "nested": {"k": [1, None]}})
    store.put_thread("empty")
    ended = new_run(store, "ada", run_id="ended", metadata={"graph": "g"})
    store.mark_running(ended.run_id, [RunEvent("request", utcnow(), detail={"x": 1})])
    chain = Chain(store, "ada", run_id=ended.run_id)
    chain.put({"a": 1}, nxt=("n",))
    head = chain.put({"a": 2, "b": [1, 2]}, nxt=("n",))
    store.put_writes("ada", "", head.id, [write("task-1", "a", 3)])
    store.finish_run(ended.run_id, RunFinish(status=RunStatus.CANCELLED, checkpoint_id=head.id,
                                             thread_id="ada"))
    live = new_run(store, "ada", run_id="live")
    store.mark_running(live.run_id)
    store.request_cancel(live.run_id, CancelReason("user", "stop", "test"))
    new_run(store, "runs-only", run_id="pending")
    Chain(store, "checkpoints-only").put({"z": 0})
    Chain(store, "ada", ns="child").put({"c": 1})
    return {"ended": ended.run_id, "live": live.run_id, "pending": "pending"}


THREAD_IDS = ["ada", "bob", "empty", "runs-only", "checkpoints-only", "nope"]


async def test_aget_thread_answers_as_get_thread(store: CheckpointStore) -> None:
    filled(store)
    for thread_id in THREAD_IDS:
        got = await store.aget_thread(thread_id)
        sync = store.get_thread(thread_id)
        if thread_id == "checkpoints-only" and got is not None and sync is not None:
            # A bare record of a thread without runs is stamped when read.
            assert (got.thread_id, got.metadata) == (sync.thread_id, sync.metadata)
        else:
            assert got == sync, thread_id
    assert await store.aget_thread("nope") is None


@pytest.mark.parametrize(("metadata", "limit", "offset"), [
    (None, 10, 0),
    ({}, 100, 0),
    ({"owner": "ada"}, 10, 0),
    ({"n": 2}, 10, 0),
    ({"owner": "nobody"}, 10, 0),
    ({"tags": ["x", "y"]}, 10, 0),
    ({"nested": {"k": [1, None]}}, 10, 0),
    (None, 1, 0),
    (None, 2, 1),
    (None, 10, 50),
], ids=["all", "empty-filter", "owner", "number", "nobody", "list", "nested", "limit",
        "page", "past-the-end"])
async def test_asearch_threads_answers_as_search_threads(
        store: CheckpointStore, metadata: dict[str, Any] | None, limit: int,
        offset: int) -> None:
    filled(store)
    got = await aoutcome(lambda: store.asearch_threads(metadata=metadata, limit=limit,
                                                       offset=offset))
    assert got == outcome(lambda: store.search_threads(metadata=metadata, limit=limit,
                                                       offset=offset))
    assert got[0] == "ok"


@pytest.mark.parametrize("query", [
    {"ids": ["ada", "nobody"]}, {"ids": []}, {"ids": ("ada",), "metadata": {"owner": "bob"}},
    {"sort_by": "created_at"}, {"sort_by": "thread_id", "ascending": True, "limit": 1},
    {"sort_by": "updated_at", "ascending": True, "offset": 1}, {"sort_by": "status"},
], ids=["ids", "no-ids", "ids-and-metadata", "created", "by-id-ascending", "oldest-first",
        "unknown-order"])
async def test_asearch_threads_answers_as_search_threads_by_ids_and_in_every_order(
        store: CheckpointStore, query: dict[str, Any]) -> None:
    filled(store)
    got = await aoutcome(lambda: store.asearch_threads(**query))
    assert got == outcome(lambda: store.search_threads(**query))
    assert got[0] == ("raised" if query.get("sort_by") == "status" else "ok")


@pytest.mark.parametrize("query", [
    {}, {"metadata": {"owner": "ada"}}, {"metadata": {"tags": ["x", "y"]}}, {"ids": ["ada"]},
    {"ids": []}, {"metadata": {"n": math.inf}},
], ids=["all", "owner", "list", "ids", "no-ids", "unstorable"])
async def test_acount_threads_answers_as_count_threads(
        store: CheckpointStore, query: dict[str, Any]) -> None:
    filled(store)
    got = await aoutcome(lambda: store.acount_threads(**query))
    assert got == outcome(lambda: store.count_threads(**query))
    assert got[0] == ("raised" if query.get("metadata", {}).get("n") else "ok")


async def _listed(found: AsyncIterator[StoredCheckpoint]) -> list[StoredCheckpoint]:
    return [stored async for stored in found]


@pytest.mark.parametrize(("ns", "before", "limit"), [
    ("", None, None), ("", None, 1), ("", "first", None), ("", "second", 5),
    ("child", None, None), ("", None, 0),
], ids=["all", "newest", "before-first", "before-second", "namespace", "none"])
async def test_alist_checkpoints_answers_as_list_checkpoints(
        store: CheckpointStore, ns: str, before: str | None, limit: int | None) -> None:
    filled(store)
    ids = [c.id for c in store.list_checkpoints("ada")]
    cursor = {"first": ids[-1], "second": ids[0]}.get(before or "")
    got = await _listed(store.alist_checkpoints("ada", ns, before=cursor, limit=limit))
    assert got == list(store.list_checkpoints("ada", ns, before=cursor, limit=limit))
    assert await _listed(store.alist_checkpoints("nope")) == []


async def test_alist_checkpoints_reads_a_long_history_whole_and_in_order(
        store: CheckpointStore) -> None:
    # More than a page of checkpoints (the backends with I/O read them a page at a time).
    chain = Chain(store, "long")
    for step in range(PAGE * 2 + 3):
        chain.put({"step": step}, metadata={"step": step})
    sync = list(store.list_checkpoints("long"))
    assert len(sync) == PAGE * 2 + 3
    assert await _listed(store.alist_checkpoints("long")) == sync
    for limit in (PAGE, PAGE + 1, PAGE * 2 + 3, PAGE * 3):
        assert await _listed(store.alist_checkpoints("long", limit=limit)) == list(
            store.list_checkpoints("long", limit=limit))
    middle = sync[PAGE // 2].id
    assert await _listed(store.alist_checkpoints("long", before=middle)) == list(
        store.list_checkpoints("long", before=middle))
    # A caller that stops early gets what it read, and the rest stays unread.
    taken = []
    async for stored in store.alist_checkpoints("long"):
        taken.append(stored)
        if len(taken) == 3:
            break
    assert taken == sync[:3]


async def test_the_older_async_reads_answer_as_their_sync_twins(store: CheckpointStore) -> None:
    ids = filled(store)
    for run_id in (*ids.values(), "nope"):
        assert await store.aget_run(run_id) == store.get_run(run_id)
        assert await store.aevents(run_id) == store.events(run_id)
        assert await aoutcome(lambda r=run_id: store.aload(r)) == outcome(  # type: ignore[misc]
            lambda r=run_id: store.load(r))  # type: ignore[misc]
    for options in ({}, {"thread_id": "ada"}, {"status": RunStatus.RUNNING},
                    {"status": "cancelled"}, {"thread_id": "ada", "limit": 1},
                    {"thread_id": "nope"}):
        assert await store.alist_runs(**options) == store.list_runs(**options), options
    every = [*ids.values(), "nope"]
    assert await store.acancel_requests(every) == store.cancel_requests(every)
    assert await store.acancel_requests([]) == store.cancel_requests([]) == {}
    for thread_id, ns, checkpoint_id in (("ada", "", None), ("ada", "child", None),
                                         ("nope", "", None), ("ada", "", "no-such-id")):
        assert await store.aget_checkpoint(thread_id, ns, checkpoint_id) == \
            store.get_checkpoint(thread_id, ns, checkpoint_id)
    head = store.get_checkpoint("ada")
    assert head is not None and head.pending_writes
    assert await store.aget_checkpoint("ada", "", head.id) == head
