"""A worker's claim is its run's start: the claim statement records the run `running` with its
`start` event, so the run has nothing left to record before its first step (one round trip from
the queue to the graph, not two)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

from conformance.conftest import fresh_schema
from tether.checkpoint.postgres import PostgresSaver
from tether.checkpoint.postgres.queue import Order
from tether.graph import END, START, StateGraph
from tether.types import RunStatus
from tether.worker import Worker, WorkerOptions

pytestmark = [pytest.mark.postgres, pytest.mark.anyio, pytest.mark.timeout(60)]


class Count(TypedDict, total=False):
    n: int


async def bump(state: Count) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1}


@pytest.fixture
def store() -> Iterator[PostgresSaver]:
    with fresh_schema() as (dsn, schema):
        made = PostgresSaver(dsn, schema=schema)
        yield made
        made.close()


def _order(thread: str) -> Order:
    return Order(graph="bump", thread_id=thread, input={"n": 0},
                 config={"configurable": {"thread_id": thread}}, multitask="enqueue")


def test_a_claim_that_starts_records_the_run_running_with_its_start(
        store: PostgresSaver) -> None:
    queued = store.queue.enqueue(_order("a"))
    (job,) = asyncio.run(store.queue.aclaim("w", ["bump"], 30.0, 1, start=True))
    assert job.started is not None and job.started.status is RunStatus.RUNNING
    assert job.started.started_at is not None and not job.resumed
    assert store.get_run(queued.run_id) == job.started
    assert [e.phase for e in store.events(queued.run_id)] == ["create", "claim", "start"]


async def test_a_worker_records_nothing_between_its_claim_and_the_runs_first_step(
        store: PostgresSaver) -> None:
    graph = StateGraph(Count).add_node("bump", bump).add_edge(START, "bump")
    graph.add_edge("bump", END)
    marked: list[str] = []
    original = store.amark_running

    async def mark_running(run_id: str, *args: Any, **kwargs: Any) -> Any:
        marked.append(run_id)
        return await original(run_id, *args, **kwargs)

    store.amark_running = mark_running  # type: ignore[method-assign]
    worker = Worker(store, {"bump": graph.compile().rebind(store, name="bump")}, WorkerOptions(
        poll=0.05, owner=f"start-{uuid.uuid4().hex[:6]}"))
    task = asyncio.get_running_loop().create_task(worker.run())
    try:
        run_id = store.queue.enqueue(_order(uuid.uuid4().hex)).run_id
        deadline = time.monotonic() + 20
        while (info := store.get_run(run_id)) is not None and not info.terminal:
            assert time.monotonic() < deadline, "the run did not end"
            await asyncio.sleep(0.02)
    finally:
        worker.drain(force=True)
        await asyncio.wait_for(task, 30)
    assert info is not None and info.status is RunStatus.SUCCESS
    assert marked == []
    phases = [e.phase for e in store.events(run_id)]
    assert phases[:3] == ["create", "claim", "start"] and phases.count("start") == 1
    assert store.get_checkpoint(info.thread_id or "").values == {"n": 1}  # type: ignore[union-attr]
