"""A new run on a busy thread, and a process at its cap: each strategy does what it says."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import tether
from tether import RunStatus
from tether.errors import OverloadError, ThreadBusyError
from tether.runs.admission import ADMISSION

from ._graphs import Count, counter, thread

pytestmark = pytest.mark.anyio


def slow_counter(store: Any, delay: float = 0.02, until: int = 1000) -> Any:
    async def tick(state: Count) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"count": state["count"] + 1, "log": ["tick"]}

    return counter(tick, until=until, checkpointer=store)


async def test_reject_is_the_default_and_names_the_run_in_flight(store: Any) -> None:
    graph = slow_counter(store)
    first = graph.start({"count": 0}, thread("busy"))
    with pytest.raises(ThreadBusyError, match=first.run_id):
        graph.start({"count": 0}, thread("busy"))
    await first.cancel()


async def test_enqueue_runs_after_the_run_in_flight(store: Any) -> None:
    graph = slow_counter(store, until=3)
    first = graph.start({"count": 0}, thread("q"))
    second = graph.start(None, thread("q", multitask_strategy="enqueue"))
    assert second.status is RunStatus.PENDING
    assert (await first.result())["count"] == 3
    await second.result()
    assert store.get_run(second.run_id).started_at >= store.get_run(first.run_id).ended_at


async def test_interrupt_supersedes_the_old_run_and_keeps_its_progress(store: Any) -> None:
    graph = slow_counter(store)
    first = graph.start({"count": 0}, thread("i"))
    await asyncio.sleep(0.07)
    second = graph.start({"count": 100}, thread("i", multitask_strategy="interrupt"))
    old = await graph.await_run(first.run_id, timeout=5)
    assert old.status is RunStatus.CANCELLED and old.reason.kind == "superseded"
    assert old.reason.requested_by == second.run_id
    assert store.load(first.run_id).values["count"] >= 1
    await second.cancel()


async def test_rollback_removes_the_old_runs_checkpoints(store: Any) -> None:
    graph = slow_counter(store)
    first = graph.start({"count": 0}, thread("r"))
    await asyncio.sleep(0.07)
    second = graph.start({"count": 50}, thread("r", multitask_strategy="rollback"))
    old = await graph.await_run(first.run_id, timeout=5)
    assert old.status is RunStatus.CANCELLED
    await asyncio.sleep(0.05)
    ids = [c.run_id for c in store.list_checkpoints("r")]
    assert first.run_id not in ids and second.run_id in ids
    await second.cancel()


async def test_cancelling_a_queued_run_keeps_it_from_ever_starting(store: Any) -> None:
    graph = slow_counter(store, until=2)
    first = graph.start({"count": 0}, thread("c"))
    second = graph.start(None, thread("c", multitask_strategy="enqueue"))
    info = await second.cancel("not needed")
    assert info.status is RunStatus.CANCELLED and info.started_at is None
    await first.result()


@pytest.fixture
def capped() -> Iterator[None]:
    yield
    ADMISSION.configure(None)


async def test_past_the_cap_new_runs_wait_until_a_slot_frees(capped: None) -> None:
    tether.limit_runs(2)
    graph = slow_counter(None, until=3)
    runs = [graph.start({"count": 0}) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert [r.status for r in runs] == [RunStatus.RUNNING, RunStatus.RUNNING, RunStatus.PENDING]
    results = await asyncio.gather(*(r.result() for r in runs))
    assert [r["count"] for r in results] == [3, 3, 3]
    assert ADMISSION.running == 0


async def test_past_the_cap_new_runs_can_be_refused(capped: None) -> None:
    tether.limit_runs(1, when_full="refuse")
    graph = slow_counter(None)
    first = graph.start({"count": 0})
    with pytest.raises(OverloadError, match="max_runs=1"):
        graph.start({"count": 0})
    await first.cancel()


async def test_shedding_cancels_the_lowest_priority_run_for_a_higher_one(capped: None) -> None:
    tether.limit_runs(2, shed=True)
    graph = slow_counter(None)
    low = graph.start({"count": 0}, {"priority": 1})
    mid = graph.start({"count": 0}, {"priority": 5})
    high = graph.start({"count": 0}, {"priority": 9})
    shed = await graph.await_run(low.run_id, timeout=5)
    assert shed.status is RunStatus.CANCELLED and shed.reason.kind == "overload"
    assert shed.reason.evidence["for_priority"] == 9
    await asyncio.sleep(0.05)
    assert high.status is RunStatus.RUNNING and mid.status is RunStatus.RUNNING
    await asyncio.gather(mid.cancel(), high.cancel())
