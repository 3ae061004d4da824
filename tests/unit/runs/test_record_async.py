"""A run started under `records_async` makes its record in its own task, through the store's
async API, never with the sync call on the starting loop; `Run.recorded()` tells when the record
exists; a cancel by id made before then is kept and applied; a store that refuses the record
ends the run with the store's error."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether.checkpoint.sqlite import SqliteSaver
from tether.errors import RunCancelled
from tether.graph import END, START, StateGraph
from tether.runs.handle import records_async
from tether.runs.registry import REGISTRY
from tether.types import RunInfo, RunStatus

pytestmark = pytest.mark.anyio


class S(TypedDict):
    n: int


class Watched(SqliteSaver):
    """Notes the thread of every sync `create_run`, and of every async one's caller."""

    def __init__(self, path: Path, *, refuse: bool = False) -> None:
        super().__init__(path)
        self.sync_creates: list[int] = []
        self.async_creates = 0
        self.refuse = refuse

    def create_run(self, info: RunInfo) -> RunInfo:
        self.sync_creates.append(threading.get_ident())
        return super().create_run(info)

    async def acreate_run(self, info: RunInfo) -> RunInfo:
        self.async_creates += 1
        if self.refuse:
            raise OSError("disk full")
        return await super().acreate_run(info)


def _graph(store: SqliteSaver, gate: asyncio.Event | None = None) -> Any:
    async def step(state: S) -> dict[str, int]:
        if gate is not None:
            await gate.wait()
        return {"n": state["n"] + 1}

    builder = StateGraph(S)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=store)


async def test_the_record_is_made_by_the_run_through_the_async_api(tmp_path: Path) -> None:
    store = Watched(tmp_path / "r.db")
    try:
        graph = _graph(store)
        with records_async():
            run = graph.start({"n": 0}, {"configurable": {"thread_id": "t"}})
        await run.recorded()
        assert store.get_run(run.run_id) is not None
        assert await run.result() == {"n": 1}
        assert store.sync_creates == [] and store.async_creates == 1
        # Outside the block, `start` makes the record before it returns, as ever.
        later = graph.start({"n": 0}, {"configurable": {"thread_id": "t2"}})
        assert store.get_run(later.run_id) is not None
        await later.result()
        assert store.sync_creates == [threading.get_ident()]
    finally:
        store.close()


async def test_a_cancel_before_the_record_exists_is_kept_and_applied(tmp_path: Path) -> None:
    store = Watched(tmp_path / "r.db")
    try:
        graph = _graph(store, asyncio.Event())
        with records_async():
            run = graph.start({"n": 0}, {"configurable": {"thread_id": "t"}})
        receipt = await graph.acancel(run.run_id, "early", wait=False)  # no record yet
        assert receipt.status is RunStatus.PENDING
        await run.recorded()
        with pytest.raises(RunCancelled):
            await run.result()
        final = store.get_run(run.run_id)
        assert final is not None and final.status is RunStatus.CANCELLED
        assert final.reason is not None and final.reason.message == "early"
    finally:
        store.close()


async def test_a_refused_record_ends_the_run_with_the_stores_error(tmp_path: Path) -> None:
    store = Watched(tmp_path / "r.db", refuse=True)
    try:
        graph = _graph(store)
        with records_async():
            run = graph.start({"n": 0}, {"configurable": {"thread_id": "t"}})
        with pytest.raises(OSError, match="disk full"):
            await run.recorded()
        with pytest.raises(OSError, match="disk full"):
            await run.result()
        assert REGISTRY.live(run.run_id) is None
        assert store.get_run(run.run_id) is None
        # Its admission slot was given back, and the thread is free for the next run.
        store.refuse = False
        again = graph.start({"n": 0}, {"configurable": {"thread_id": "t"}})
        assert await again.result() == {"n": 1}
    finally:
        store.close()


async def test_a_cancel_from_another_thread_while_the_record_is_made_is_applied(
        tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = Watched(path)
    try:
        graph = _graph(store, asyncio.Event())
        held = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        held.execute("BEGIN IMMEDIATE")  # the record waits in the writer thread
        with records_async():
            run = graph.start({"n": 0}, {"configurable": {"thread_id": "t"}})
        for _ in range(20):
            await asyncio.sleep(0)
        receipt = await asyncio.to_thread(graph.cancel, run.run_id, "from a thread")
        assert receipt.status is RunStatus.PENDING  # kept: no record to write it to yet
        held.execute("ROLLBACK")
        held.close()
        await run.recorded()
        with pytest.raises(RunCancelled):
            await run.result()
        final = store.get_run(run.run_id)
        assert final is not None and final.status is RunStatus.CANCELLED
        assert final.reason is not None and final.reason.message == "from a thread"
    finally:
        store.close()
