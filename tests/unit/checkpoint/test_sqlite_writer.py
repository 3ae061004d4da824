"""The SQLite store's async API runs off the event loop (its writer thread), commits concurrent
transactions together, and keeps the contract of an inline call: whole, and a cancel delivered
at the caller's next await.

The slow part is made deterministic: another connection holds the file's write lock, so the
store's next write waits (in SQLite's busy handler) until the test lets it go.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from sqlite_lock import WriteLock
from tether.checkpoint.base import CheckpointRecord, RunFinish, ThreadRecord, WriteRecord
from tether.checkpoint.ids import uuid7
from tether.checkpoint.query import Op, Query
from tether.checkpoint.sqlite import SqliteSaver
from tether.checkpoint.sqlite.connection import Connection
from tether.errors import CheckpointNotFound, RunError
from tether.types import CancelReason, RunInfo, RunStatus

pytestmark = pytest.mark.anyio

TURNS = 50
"""Loop turns the test takes while the store's write is held: any number > 0 would do."""


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


@pytest.fixture
def store(path: str) -> Iterator[SqliteSaver]:
    # A long busy timeout: the held write must wait for the test, never give up.
    opened = SqliteSaver(path, busy_timeout=60.0)
    yield opened
    opened.close()


def record(thread_id: str = "t", parent_id: str | None = None, value: int = 1) -> CheckpointRecord:
    checkpoint_id = uuid7()
    return CheckpointRecord(
        thread_id=thread_id, ns="", id=checkpoint_id, parent_id=parent_id, step=0,
        source="loop", refs={"a": checkpoint_id}, blobs={"a": value}, next=(), metadata={},
        run_id=None)


async def test_a_held_write_does_not_block_the_event_loop(store: SqliteSaver, path: str) -> None:
    store.put_checkpoint(record())  # the file exists, the connection is warm
    ticks = 0
    with WriteLock(path):
        # Inline, this call would hold the loop inside SQLite's busy handler until the lock
        # went away (here: never, since only the loop could let it go).
        write = asyncio.ensure_future(store.aput_checkpoint(second := record(value=2)))
        for _ in range(TURNS):
            await asyncio.sleep(0)
            ticks += 1
        assert not write.done()
        assert ticks == TURNS
    await asyncio.wait_for(write, 60)
    stored = await store.aget_checkpoint("t")
    assert stored is not None and stored.id == second.id and stored.values == {"a": 2}


async def test_concurrent_transactions_commit_together_and_fail_alone(
        store: SqliteSaver, path: str) -> None:
    first = record("a")
    store.put_checkpoint(first)
    with WriteLock(path):
        # Queued behind the held lock: the writer takes them as one group.
        calls = [store.aput_checkpoint(record(f"t{n}", value=n)) for n in range(20)]
        doomed = store.aput_writes("a", "", "no-such-checkpoint",
                                   [WriteRecord("task", "x", 0, "c", 1)])
        good = store.aput_writes("a", "", first.id, [WriteRecord("task", "x", 0, "c", 1)])
        gathered = asyncio.gather(*calls, doomed, good, return_exceptions=True)
        for _ in range(TURNS):
            await asyncio.sleep(0)
        assert not gathered.done()
    outcomes = await asyncio.wait_for(gathered, 60)
    assert outcomes[:20] == [None] * 20
    assert isinstance(outcomes[20], CheckpointNotFound)
    assert outcomes[21] is None
    for n in range(20):
        stored = store.get_checkpoint(f"t{n}")
        assert stored is not None and stored.values == {"a": n}
    stored = store.get_checkpoint("a")
    assert stored is not None and [w.value for w in stored.pending_writes] == [1]


def test_a_group_rolls_back_only_the_operation_that_failed(path: str) -> None:
    db = Connection(path, synchronous="normal", busy_timeout=5.0)
    db.run(_statement("CREATE TABLE t (x INTEGER PRIMARY KEY)"))

    def insert(x: int) -> Op[int]:
        yield Query("INSERT INTO t VALUES (?)", (x,), "none")
        return x

    def insert_then_fail() -> Op[None]:
        yield Query("INSERT INTO t VALUES (?)", (99,), "none")
        raise ValueError("refused")

    outcomes = db.run_group([lambda: insert(1), insert_then_fail, lambda: insert(1),
                             lambda: insert(2)])
    assert outcomes[0] == (True, 1) and outcomes[3] == (True, 2)
    assert isinstance(outcomes[1][1], ValueError) and outcomes[1][0] is False
    assert outcomes[2][0] is False and isinstance(outcomes[2][1], sqlite3.IntegrityError)
    assert db.all("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    db.close()


def _statement(sql: str) -> Op[None]:
    yield Query(sql, (), "none")


async def test_a_plain_cancel_waits_for_the_write_and_lands_at_the_next_await(
        store: SqliteSaver, path: str) -> None:
    after_write: list[str] = []

    async def checkpointing() -> None:
        await store.aput_checkpoint(held)
        after_write.append("recorded")  # as inline: the caller records what it stored
        await asyncio.sleep(3600)
        after_write.append("never")

    held = record()
    with WriteLock(path):
        task = asyncio.ensure_future(checkpointing())
        for _ in range(TURNS):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(TURNS):
            await asyncio.sleep(0)
        assert not task.done()  # it waits for the write it handed over
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 60)
    assert after_write == ["recorded"]
    assert task.cancelled()
    stored = store.get_checkpoint("t")
    assert stored is not None and stored.id == held.id


async def test_a_scope_cancel_waits_for_the_write_and_lands_at_the_next_await(
        store: SqliteSaver, path: str) -> None:
    after_write: list[str] = []
    held = record()
    scope = anyio.CancelScope()

    async def checkpointing() -> None:
        with scope:
            await store.aput_checkpoint(held)
            after_write.append("recorded")
            await asyncio.sleep(3600)
            after_write.append("never")

    lock = WriteLock(path).__enter__()
    async with anyio.create_task_group() as group:
        group.start_soon(checkpointing)
        for _ in range(TURNS):
            await asyncio.sleep(0)
        scope.cancel()
        for _ in range(TURNS):
            await asyncio.sleep(0)
        assert after_write == []  # it waits for the write it handed over
        lock.__exit__()
    assert after_write == ["recorded"]
    assert scope.cancelled_caught
    stored = store.get_checkpoint("t")
    assert stored is not None and stored.id == held.id


async def test_a_cancelled_batch_of_cancel_requests_is_recorded_whole(
        store: SqliteSaver, path: str) -> None:
    # `arequest_cancels` hands every request over at once and waits for all: a cancel of the
    # caller meanwhile waits for them, as one `transaction` would, and lands after.
    for n in range(3):
        store.create_run(RunInfo(f"r{n}", None, RunStatus.RUNNING))
    answers: list[object] = []

    async def requesting() -> None:
        answers.extend(await store.arequest_cancels(
            [(f"r{n}", CancelReason("user", "now", "test")) for n in range(3)]))
        await asyncio.sleep(3600)

    with WriteLock(path):
        task = asyncio.ensure_future(requesting())
        for _ in range(TURNS):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(TURNS):
            await asyncio.sleep(0)
        assert not task.done()  # it waits for the requests it handed over
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 60)
    assert [a[1] for a in answers if isinstance(a, tuple)] == [True, True, True]
    for n in range(3):
        found = store.get_run(f"r{n}")
        assert found is not None and found.status is RunStatus.CANCELLING


async def test_a_batch_after_close_runs_inline_and_each_request_fails_alone(path: str) -> None:
    store = SqliteSaver(path)
    store.create_run(RunInfo("r0", None, RunStatus.RUNNING))
    store.close()
    answers = await store.arequest_cancels(
        [("r0", CancelReason("user", "now", "test")), ("r1", CancelReason("user", "now", "t"))])
    assert len(answers) == 2 and all(isinstance(a, sqlite3.ProgrammingError) for a in answers)


async def test_reads_see_the_writes_queued_before_them(store: SqliteSaver) -> None:
    records = [record("t", value=n) for n in range(5)]
    writes = [store.aput_checkpoint(r) for r in records]
    latest = store.aget_checkpoint("t")
    await asyncio.gather(*writes)
    stored = await latest
    assert stored is not None and stored.id == records[-1].id


async def test_calls_after_close_run_inline_and_fail_as_before(path: str) -> None:
    store = SqliteSaver(path)
    await store.aput_checkpoint(record())
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await store.aget_run("r")


async def test_sync_reads_do_not_wait_for_a_write_in_progress(store: SqliteSaver,
                                                              path: str) -> None:
    # The server reads with the sync API on its loop: a write the writer thread is in the
    # middle of (here: waiting for the file's lock) must not hold such a read.
    first = record()
    store.put_checkpoint(first)
    with WriteLock(path):
        write = asyncio.ensure_future(store.aput_checkpoint(record(value=2)))
        await asyncio.sleep(0.1)  # time for the writer thread to take its lock (not asserted)
        read = await asyncio.wait_for(asyncio.to_thread(store.get_checkpoint, "t"), 30)
        assert read is not None and read.id == first.id
        assert store.get_run("nobody") is None
        assert not write.done()
    await asyncio.wait_for(write, 60)


def test_a_sync_invoke_checkpoints_inline_without_the_writer_thread(path: str) -> None:
    # `invoke` from sync code runs on tether's private loop, which serves that one call only
    # (`tether.checkpoint.loops`): its checkpoints are written in the calling thread, with no
    # hop to the writer thread and back per superstep, so that thread never starts.
    from typing import TypedDict

    from tether.graph import END, START, StateGraph

    class Count(TypedDict):
        count: int

    def tick(state: Count) -> Count:
        return {"count": state["count"] + 1}

    builder = StateGraph(Count)
    builder.add_node("tick", tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda s: "tick" if s["count"] < 3 else END)
    store = SqliteSaver(path)
    try:
        graph = builder.compile(checkpointer=store)
        config = {"configurable": {"thread_id": "t"}}
        assert graph.invoke({"count": 0}, config) == {"count": 3}
        assert not [t for t in threading.enumerate() if t.name.endswith(f"-writer {path}")]
        assert len(list(graph.get_state_history(config))) >= 4  # every step's checkpoint
    finally:
        store.close()


async def test_an_async_call_on_a_shared_loop_still_goes_to_the_writer_thread(
        store: SqliteSaver, path: str) -> None:
    await store.aput_checkpoint(record())
    assert [t for t in threading.enumerate() if t.name.endswith(f"-writer {path}")]


def test_only_a_sync_callers_private_loop_may_be_blocked_by_a_store() -> None:
    # The guarantee of DESIGN.md §7 holds for every shared loop: tether's background loop and
    # any loop a caller (or a server) runs are never marked; the private loop of a sync call is.
    from tether.checkpoint import loops
    from tether.runs import portal

    assert loops.may_block(portal.private_runner().get_loop())
    assert not loops.may_block(portal.background_loop())
    fresh = asyncio.new_event_loop()
    try:
        assert not loops.may_block(fresh)
    finally:
        fresh.close()


async def test_thread_and_run_writes_have_twins_in_the_writers_groups(
        store: SqliteSaver, path: str) -> None:
    # The server's thread writes: through the writer thread, in one group with checkpoints,
    # each answered (or refused) alone, as the sync calls are.
    store.put_thread("kept", {"a": 1})
    store.put_checkpoint(record("gone"))
    store.create_run(RunInfo("done", "kept", RunStatus.PENDING))
    store.finish_run("done", RunFinish(RunStatus.SUCCESS))
    store.create_run(RunInfo("going", "kept", RunStatus.PENDING))
    with WriteLock(path):
        gathered = asyncio.gather(
            store.aput_thread("kept", {"b": 2}), store.adelete_thread("gone"),
            store.adelete_run("done"), store.adelete_run("going"), store.adelete_run("nope"),
            store.aput_checkpoint(record("other")), return_exceptions=True)
        for _ in range(TURNS):
            await asyncio.sleep(0)
        assert not gathered.done()  # queued for the writer, not run on the loop
    merged, deleted, gone, refused, unknown, put = await asyncio.wait_for(gathered, 60)
    assert isinstance(merged, ThreadRecord) and merged.metadata == {"a": 1, "b": 2}
    assert deleted is None and store.get_checkpoint("gone") is None
    assert gone is True and store.get_run("done") is None
    assert isinstance(refused, RunError) and store.get_run("going") is not None
    assert unknown is False and put is None
    thread = store.get_thread("kept")
    assert thread is not None and thread.metadata == {"a": 1, "b": 2}
