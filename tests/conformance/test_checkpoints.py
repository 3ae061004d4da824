"""Checkpoints, pending writes, threads, deletion, and `load(run_id)`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.checkpoint.base import CheckpointRecord, CheckpointStore, RunFinish
from tether.checkpoint.ids import uuid7
from tether.constants import CANCELLED, ERROR, NULL_TASK_ID, RESUME
from tether.errors import RunNotFound, SerializationError
from tether.types import CancelReason, PendingWrite, RunStatus

from .conftest import Backend, Chain, close, new_run, write

AT = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)

# -- storing and reading --------------------------------------------------------------------


def test_get_checkpoint_returns_every_field_latest_or_by_id(store: CheckpointStore) -> None:
    first = CheckpointRecord(
        thread_id="t", ns="", id=uuid7(), parent_id=None, step=-1, source="input",
        refs={}, blobs={}, next=("__start__",), metadata={"source": "input", "n": [1]},
        run_id="r", created_at=AT)
    store.put_checkpoint(first)
    second_id = uuid7()
    second = CheckpointRecord(
        thread_id="t", ns="", id=second_id, parent_id=first.id, step=0, source="loop",
        refs={"a": second_id, "b": second_id}, blobs={"a": 1, "b": "two"}, next=("x", "y"),
        metadata={"step": 0}, run_id="r", created_at=AT)
    store.put_checkpoint(second)
    latest = store.get_checkpoint("t")
    assert latest is not None
    assert (latest.thread_id, latest.ns, latest.id, latest.parent_id, latest.step,
            latest.source, latest.created_at, latest.next, latest.metadata, latest.run_id) == (
        "t", "", second_id, first.id, 0, "loop", AT, ("x", "y"), {"step": 0}, "r")
    assert latest.values == {"a": 1, "b": "two"}
    assert latest.refs == {"a": second_id, "b": second_id}
    assert latest.pending_writes == ()
    by_id = store.get_checkpoint("t", "", first.id)
    assert by_id is not None and by_id.values == {} and by_id.next == ("__start__",)
    assert by_id.metadata == {"source": "input", "n": [1]}


def test_get_checkpoint_of_an_unknown_thread_or_id_is_none(store: CheckpointStore) -> None:
    Chain(store).put({"a": 1})
    assert store.get_checkpoint("other") is None
    assert store.get_checkpoint("t", "", uuid7()) is None
    assert store.get_checkpoint("t", "sub") is None


def test_a_channel_unchanged_for_many_steps_still_resolves(store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put({"constant": "set once", "counter": 0, "big": "x" * 20_000})
    ids = [chain.head]
    for i in range(1, 60):
        chain.put({"counter": i, f"k{i % 7}": [i]})
        ids.append(chain.head)
    latest = store.get_checkpoint("t")
    assert latest is not None
    assert latest.values["constant"] == "set once" and latest.values["big"] == "x" * 20_000
    assert latest.values["counter"] == 59
    assert latest.refs["constant"] == ids[0] and latest.refs["counter"] == ids[-1]
    for step in (0, 1, 16, 17, 33, 59):
        old = store.get_checkpoint("t", "", ids[step])
        assert old is not None and old.values["counter"] == step
        assert old.values["constant"] == "set once"
        assert set(old.values) == {"constant", "counter", "big"} | {
            f"k{i % 7}" for i in range(1, step + 1)}


def test_a_removed_channel_is_absent_from_later_checkpoints_only(store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put({"a": 1, "b": 2})
    before = chain.head
    chain.put({"c": 3}, removed=("a",))
    latest = store.get_checkpoint("t")
    assert latest is not None and latest.values == {"b": 2, "c": 3} and "a" not in latest.refs
    old = store.get_checkpoint("t", "", before)
    assert old is not None and old.values == {"a": 1, "b": 2}


def test_namespaces_and_threads_are_kept_apart(store: CheckpointStore) -> None:
    Chain(store, "t").put({"v": "root"})
    Chain(store, "t", ns="sub:1").put({"v": "sub"})
    Chain(store, "u").put({"v": "other thread"})
    got = {(t, ns): store.get_checkpoint(t, ns) for t, ns in [("t", ""), ("t", "sub:1"),
                                                               ("u", "")]}
    assert {k: c.values["v"] for k, c in got.items() if c is not None} == {
        ("t", ""): "root", ("t", "sub:1"): "sub", ("u", ""): "other thread"}


def test_list_checkpoints_is_newest_first_with_before_and_limit(store: CheckpointStore) -> None:
    chain = Chain(store)
    ids = []
    for i in range(5):
        chain.put({"i": i})
        ids.append(chain.head)
    Chain(store, "t", ns="sub").put({"i": 99})
    listed = list(store.list_checkpoints("t"))
    assert [c.id for c in listed] == ids[::-1]
    assert [c.values["i"] for c in listed] == [4, 3, 2, 1, 0]
    assert [c.id for c in store.list_checkpoints("t", limit=2)] == [ids[4], ids[3]]
    assert [c.id for c in store.list_checkpoints("t", before=ids[3])] == [ids[2], ids[1], ids[0]]
    assert [c.id for c in store.list_checkpoints("t", before=ids[3], limit=1)] == [ids[2]]
    assert [c.values["i"] for c in store.list_checkpoints("t", "sub")] == [99]
    assert list(store.list_checkpoints("nobody")) == []


# -- several at once: a run's input checkpoint and its first step's ---------------------------


def _chained(chain: Chain, *changes: dict[str, Any]) -> list[CheckpointRecord]:
    """The next checkpoints of `chain`, each the parent of the next, not stored."""
    records = []
    for change in changes:
        record = chain.record(change)
        chain.commit(record)
        records.append(record)
    return records


@pytest.mark.anyio
@pytest.mark.parametrize("call", ["sync", "async"])
async def test_put_checkpoints_stores_each_as_put_checkpoint_would(
        backend: Backend, store: CheckpointStore, tmp_path: Path, call: str) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    chain = Chain(store, run_id=run_id)
    chain.put({"kept": "x" * 100, "n": 0})
    first, second = _chained(chain, {"n": 1, "items": [1]}, {"n": 2})
    if call == "sync":
        store.put_checkpoints([first, second])
    else:
        await store.aput_checkpoints([first, second])
    info = store.get_run(run_id)
    assert info is not None and info.checkpoint_id == second.id
    chain.put({"n": 3})  # the next one continues from the last of them

    def check(reader: CheckpointStore) -> None:
        listed = list(reader.list_checkpoints("t"))
        assert [c.values["n"] for c in listed] == [3, 2, 1, 0]
        assert [c.id for c in listed[1:3]] == [second.id, first.id]
        assert listed[1].parent_id == first.id
        assert listed[1].values == {"kept": "x" * 100, "n": 2, "items": [1]}
        assert listed[0].values == {"kept": "x" * 100, "n": 3, "items": [1]}
        assert listed[0].refs["items"] == first.id and listed[0].refs["kept"] == listed[3].id

    check(store)
    if backend.reopen is not None:
        other = backend.reopen(store, tmp_path)
        try:
            check(other)
        finally:
            close(other)


@pytest.mark.anyio
@pytest.mark.parametrize("call", ["sync", "async"])
async def test_put_checkpoints_stores_none_when_one_cannot_be_stored(
        store: CheckpointStore, call: str) -> None:
    chain = Chain(store)
    chain.put({"fine": 1})
    good = chain.head
    first, second = _chained(chain, {"ok": 2}, {"the_bad_key": object()})
    with pytest.raises(SerializationError, match="the_bad_key"):
        if call == "sync":
            store.put_checkpoints([first, second])
        else:
            await store.aput_checkpoints([first, second])
    assert [c.id for c in store.list_checkpoints("t")] == [good]


# -- the run pointer ------------------------------------------------------------------------


def test_put_checkpoint_points_its_live_run_at_it_in_the_root_namespace_only(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    root = Chain(store, run_id=run_id)
    root.put({"a": 1})
    Chain(store, ns="child:1", run_id=run_id).put({"a": 2})
    info = store.get_run(run_id)
    assert info is not None and info.checkpoint_id == root.head


def test_put_checkpoint_leaves_an_ended_run_on_its_final_checkpoint(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    chain = Chain(store, run_id=run_id)
    chain.put({"a": 1})
    final = chain.head
    store.finish_run(run_id, RunFinish(status=RunStatus.CANCELLED, checkpoint_id=final,
                                       thread_id="t"))
    chain.put({"a": 2})
    info = store.get_run(run_id)
    assert info is not None and info.checkpoint_id == final


def test_a_live_run_reads_as_at_its_latest_root_checkpoint_after_each_of_many(
        backend: Backend, store: CheckpointStore, tmp_path: Path) -> None:
    # More checkpoints than a chain of deltas holds (`refs.MAX_DEPTH`): whatever a store does
    # to find a live run's latest, every read between two checkpoints sees the one just put.
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    other = backend.reopen(store, tmp_path) if backend.reopen is not None else store
    try:
        root = Chain(store, run_id=run_id)
        for i in range(40):
            root.put({"i": i})
            for reader in (store, other):
                info = reader.get_run(run_id)
                assert info is not None and info.checkpoint_id == root.head, i
            assert [r.checkpoint_id for r in store.list_runs(thread_id="t")] == [root.head]
    finally:
        if other is not store:
            close(other)


def test_runs_sharing_a_thread_each_read_as_at_their_own_latest_checkpoint(
        store: CheckpointStore) -> None:
    first, second = new_run(store).run_id, new_run(store).run_id
    ours, theirs = Chain(store, run_id=first), Chain(store, run_id=second)
    ours.put({"a": 0})
    for i in range(3):
        ours.put({"a": i})
    for i in range(40):  # the other run writes on: many newer checkpoints on the thread
        theirs.put({"b": i})
    info = store.get_run(first)
    assert info is not None and info.checkpoint_id == ours.head
    info = store.get_run(second)
    assert info is not None and info.checkpoint_id == theirs.head
    ours.put({"a": 99})
    info = store.get_run(first)
    assert info is not None and info.checkpoint_id == ours.head


def test_a_run_ended_without_naming_its_checkpoint_keeps_its_latest(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    chain = Chain(store, run_id=run_id)
    for i in range(21):
        chain.put({"i": i})
    latest = chain.head
    result = store.finish_run(run_id, RunFinish(status=RunStatus.ERROR, error="boom",
                                                thread_id="t"))
    assert result.applied and result.info.checkpoint_id == latest
    chain.put({"i": 99})  # after the end: no longer the run's
    info = store.get_run(run_id)
    assert info is not None and info.checkpoint_id == latest


def test_a_run_without_a_root_checkpoint_reads_as_at_none(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    Chain(store).put({"a": 1})  # the thread's, not the run's
    Chain(store, ns="child:1", run_id=run_id).put({"a": 2})
    info = store.get_run(run_id)
    assert info is not None and info.checkpoint_id is None


_STEPS = st.lists(st.tuples(st.sampled_from(["new", "put", "put", "put", "pause", "resume",
                                              "end"]), st.integers(0, 2), st.integers(0, 1)),
                  min_size=1, max_size=120)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=_STEPS)
def test_every_run_reads_as_at_its_latest_root_checkpoint_whatever_the_interleaving(
        store: CheckpointStore, steps: list[tuple[str, int, int]]) -> None:
    # Runs on two threads start, checkpoint, pause, resume and end in any order; after every
    # change each run reads as at the last root checkpoint it wrote (None before its first).
    prefix = uuid7()
    runs: list[tuple[str, Chain]] = []
    latest: dict[str, str | None] = {}
    status: dict[str, RunStatus] = {}
    for action, which, thread in steps:
        if action == "new" or not runs:
            info = new_run(store, f"{prefix}-{thread}")
            store.mark_running(info.run_id)
            runs.append((info.run_id, Chain(store, f"{prefix}-{thread}", run_id=info.run_id)))
            latest[info.run_id], status[info.run_id] = None, RunStatus.RUNNING
            continue
        run_id, chain = runs[which % len(runs)]
        now = status[run_id]
        if action == "put" and now is RunStatus.RUNNING:
            chain.put({"i": len(latest)})
            latest[run_id] = chain.head
        elif action == "pause" and now is RunStatus.RUNNING:
            store.finish_run(run_id, RunFinish(status=RunStatus.INTERRUPTED,
                                               thread_id=chain.thread_id))
            status[run_id] = RunStatus.INTERRUPTED
        elif action == "resume" and now is RunStatus.INTERRUPTED:
            store.mark_running(run_id)
            status[run_id] = RunStatus.RUNNING
        elif action == "end" and now is RunStatus.RUNNING:
            store.finish_run(run_id, RunFinish(status=RunStatus.SUCCESS,
                                               thread_id=chain.thread_id))
            status[run_id] = RunStatus.SUCCESS
        for known, expected in latest.items():
            info = store.get_run(known)
            assert info is not None and info.status is status[known]
            assert info.checkpoint_id == expected, (known, status[known])


# -- pending writes -------------------------------------------------------------------------


def _writes(store: CheckpointStore, checkpoint_id: str | None = None) -> list[tuple[Any, ...]]:
    stored = store.get_checkpoint("t", "", checkpoint_id)
    assert stored is not None
    return [(w.task_id, w.task_name, w.idx, w.channel, w.value) for w in stored.pending_writes]


def test_an_ordinary_pending_write_is_stored_once_and_the_first_one_wins(
        store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put({"a": 1})
    store.put_writes("t", "", chain.head, [write("t1", "a", "first"), write("t1", "b", "b0",
                                                                             idx=1)])
    store.put_writes("t", "", chain.head, [write("t1", "a", "retry")])
    assert _writes(store) == [("t1", "node", 0, "a", "first"), ("t1", "node", 1, "b", "b0")]


def test_a_control_write_replaces_the_previous_one_in_place(store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put({"a": 1})
    cid = chain.head
    store.put_writes("t", "", cid, [write("t1", ERROR, "boom", idx=-1),
                                    write("t2", "a", 5, task_name="other")])
    store.put_writes("t", "", cid, [write("t1", CANCELLED, None, idx=-1),
                                    write("t1", RESUME, ["yes"], idx=-2)])
    assert _writes(store) == [
        ("t1", "node", -1, CANCELLED, None),
        ("t2", "other", 0, "a", 5),
        ("t1", "node", -2, RESUME, ["yes"]),
    ]


def test_pending_writes_belong_to_their_checkpoint_only(store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put({"a": 1})
    first = chain.head
    store.put_writes("t", "", first, [write("t1", "a", 2)])
    chain.put({"a": 2})
    assert _writes(store) == []
    assert _writes(store, first) == [("t1", "node", 0, "a", 2)]


def test_get_writes_reads_one_channel_of_one_checkpoint_in_its_order(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    chain = Chain(store)
    chain.put({"a": 1})
    first = chain.head
    store.put_writes("t", "", first, [write("t1", "p", {"n": 1}), write("t1", "a", 5, idx=1)])
    store.put_writes("t", "", first, [write("t2", "p", {"n": 2}, task_name="other"),
                                      write("t1", "p", {"n": 3}, idx=-7)])
    chain.put({"a": 2})
    store.put_writes("t", "", chain.head, [write("t3", "p", {"n": 4})])
    Chain(store, "t", ns="sub").put({"a": 0})
    expected = [w for w in store.get_checkpoint("t", "", first).pending_writes  # type: ignore[union-attr]
                if w.channel == "p"]

    def whole(*args: Any) -> Any:
        raise AssertionError("get_writes read the whole checkpoint")

    monkeypatch.setattr(store, "get_checkpoint", whole)  # a point read, not the checkpoint
    found = store.get_writes("t", "", first, "p")
    assert list(found) == expected
    assert [(w.task_id, w.task_name, w.idx, w.value) for w in found] == [
        ("t1", "node", 0, {"n": 1}), ("t2", "other", 0, {"n": 2}), ("t1", "node", -7, {"n": 3})]
    assert store.get_writes("t", "", first, "q") == ()
    assert store.get_writes("t", "sub", first, "p") == ()
    assert store.get_writes("t", "", uuid7(), "p") == ()


@pytest.mark.anyio
async def test_aget_writes_answers_as_get_writes(store: CheckpointStore) -> None:
    chain = Chain(store)
    chain.put({"a": 1})
    store.put_writes("t", "", chain.head, [write("t1", "p", "x"), write("t2", "a", 1)])
    assert await store.aget_writes("t", "", chain.head, "p") == \
        store.get_writes("t", "", chain.head, "p")
    assert [w.value for w in await store.aget_writes("t", "", chain.head, "p")] == ["x"]


def test_put_writes_for_a_missing_checkpoint_raises_lookup_error(store: CheckpointStore) -> None:
    Chain(store).put({"a": 1})
    with pytest.raises(LookupError):
        store.put_writes("t", "", uuid7(), [write("t1", "a", 1)])
    assert _writes(store) == []


# -- threads and deletion -------------------------------------------------------------------


def test_list_threads_is_most_recently_checkpointed_first(store: CheckpointStore) -> None:
    Chain(store, "old").put({"a": 1})
    Chain(store, "mid").put({"a": 1})
    Chain(store, "new").put({"a": 1})
    Chain(store, "old", ns="sub").put({"a": 2})  # a subgraph's checkpoint is activity too
    new_run(store, "runs-only")
    threads = store.list_threads()
    assert threads[:3] == ["old", "new", "mid"]
    assert set(threads) == {"old", "new", "mid", "runs-only"}
    assert store.list_threads(limit=2) == ["old", "new"]


def test_delete_thread_removes_its_checkpoints_writes_runs_and_events_only(
        store: CheckpointStore) -> None:
    doomed = new_run(store, "t").run_id
    kept = new_run(store, "u").run_id
    store.request_cancel(doomed, CancelReason())
    store.request_cancel(kept, CancelReason())
    chain = Chain(store, "t", run_id=doomed)
    chain.put({"a": 1})
    store.put_writes("t", "", chain.head, [write("x", "a", 1)])
    Chain(store, "t", ns="sub").put({"a": 2})
    Chain(store, "u", run_id=kept).put({"a": 3})
    store.delete_thread("t")
    assert store.get_checkpoint("t") is None and store.get_checkpoint("t", "sub") is None
    assert list(store.list_checkpoints("t")) == []
    assert store.get_run(doomed) is None and store.events(doomed) == []
    assert store.list_runs(thread_id="t") == []
    assert "t" not in store.list_threads()
    other = store.get_checkpoint("u")
    assert other is not None and other.values == {"a": 3}
    assert store.get_run(kept) is not None and len(store.events(kept)) == 1


def test_delete_thread_then_a_new_run_starts_the_thread_afresh(store: CheckpointStore) -> None:
    Chain(store).put({"a": 1})
    store.delete_thread("t")
    Chain(store).put({"b": 2})
    latest = store.get_checkpoint("t")
    assert latest is not None and latest.values == {"b": 2}


def test_delete_run_checkpoints_removes_that_runs_checkpoints_only(
        store: CheckpointStore) -> None:
    first, second = new_run(store).run_id, new_run(store).run_id
    chain = Chain(store)
    chain.put({"a": 1}, run_id=first)
    kept = chain.head
    chain.put({"b": 2}, run_id=second)
    chain.put({"c": 3}, run_id=second)
    store.put_writes("t", "", chain.head, [write("x", "c", 4)])
    store.delete_run_checkpoints(second)
    assert [c.id for c in store.list_checkpoints("t")] == [kept]
    latest = store.get_checkpoint("t")
    assert latest is not None and latest.values == {"a": 1} and latest.pending_writes == ()
    assert store.get_run(second) is not None


def test_a_thread_continues_after_its_newest_run_is_rolled_back(store: CheckpointStore) -> None:
    first, second, third = (new_run(store).run_id for _ in range(3))
    chain = Chain(store)
    for i in range(20):
        chain.put({"i": i, "first": True}, run_id=first)
    base = chain.head
    chain.put({"i": 100}, run_id=second)
    store.delete_run_checkpoints(second)
    resumed = Chain(store)
    latest = store.get_checkpoint("t")
    assert latest is not None and latest.id == base
    resumed.refs, resumed.last, resumed.step = dict(latest.refs), latest.id, latest.step
    for i in range(20, 25):
        resumed.put({"i": i}, run_id=third)
    final = store.get_checkpoint("t")
    assert final is not None and final.values == {"i": 24, "first": True}


# -- load(run_id) ---------------------------------------------------------------------------


def test_load_shows_the_state_a_cancelled_run_stopped_in(store: CheckpointStore) -> None:
    run_id = new_run(store, metadata={"checkpoint_ns": ""}).run_id
    store.mark_running(run_id)
    chain = Chain(store, run_id=run_id)
    chain.put({"topic": "x", "branch:to:a": None}, nxt=("a", "b", "c"))
    reason = CancelReason("user", "stop", requested_at=AT)
    store.request_cancel(run_id, reason)
    store.finish_run(run_id, RunFinish(
        status=RunStatus.CANCELLED, checkpoint_id=chain.head, thread_id="t",
        writes=(write("ta", "topic", "done by a", task_name="a"),
                write("ta", "branch:to:c", None, idx=1, task_name="a"),
                write("tb", CANCELLED, None, idx=-1, task_name="b"),
                write(NULL_TASK_ID, "topic", "input", task_name="__input__"))))
    snap = store.load(run_id)
    assert snap.run_id == run_id and snap.status is RunStatus.CANCELLED
    assert snap.reason == reason and snap.checkpoint_id == chain.head and snap.step == 0
    assert snap.values == {"topic": "x"}
    assert snap.cancelled_tasks == ("b",)
    assert snap.pending_writes == (PendingWrite("a", "topic", "done by a"),)
    assert snap.next == ("b", "c")


def test_load_of_a_run_that_never_checkpointed_is_empty(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.request_cancel(run_id, CancelReason())
    store.finish_run(run_id, RunFinish(status=RunStatus.CANCELLED))
    snap = store.load(run_id)
    assert (snap.values, snap.next, snap.step, snap.status, snap.checkpoint_id) == (
        {}, (), -1, RunStatus.CANCELLED, None)


def test_load_of_an_unknown_run_raises_run_not_found(store: CheckpointStore) -> None:
    with pytest.raises(RunNotFound):
        store.load("nope")


@pytest.mark.anyio
async def test_async_twins_give_the_same_answers(store: CheckpointStore) -> None:
    info = new_run(store, metadata={"checkpoint_ns": ""})
    assert await store.aget_run(info.run_id) == info
    assert await store.amark_running(info.run_id) is not None
    record = Chain(store, run_id=info.run_id).record({"a": 1})
    await store.aput_checkpoint(record)
    await store.aput_writes("t", "", record.id, [write("x", "a", 2)])
    got = await store.aget_checkpoint("t")
    assert got is not None and got.values == {"a": 1} and len(got.pending_writes) == 1
    _, first = await store.arequest_cancel(info.run_id, CancelReason())
    assert first is True
    result = await store.afinish_run(info.run_id, RunFinish(status=RunStatus.CANCELLED,
                                                            checkpoint_id=record.id))
    assert result.applied
    assert [e.phase for e in await store.aevents(info.run_id)] == ["request"]
    assert (await store.aload(info.run_id)).values == {"a": 1}
    assert [r.run_id for r in await store.alist_runs(thread_id="t")] == [info.run_id]
    await store.adelete_run_checkpoints(info.run_id)
    assert await store.aget_checkpoint("t") is None
