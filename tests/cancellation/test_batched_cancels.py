"""Cancels made together are recorded together, and each run still stops as if cancelled
alone: all six phases, its final checkpoint and reason, `cancel()` returning once the run is
terminal. Races: a cancel racing completion, a double cancel in one batch, a cancel before the
run starts, a batch where some runs already ended, a caller that gives up while it waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tether import CancelReason, RunStatus
from tether.checkpoint.base import CheckpointStore
from tether.types import RunInfo

from ._graphs import Count, looping, phases, thread_config

pytestmark = pytest.mark.anyio

SIX = ["request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


class _Counted:
    """Counts the store's cancel calls: batches and single requests."""

    def __init__(self, store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[int] = []
        self.singles = 0
        many, one = store.arequest_cancels, store.arequest_cancel

        async def arequest_cancels(requests: Any) -> Any:
            self.batches.append(len(requests))
            return await many(requests)

        async def arequest_cancel(run_id: str, reason: CancelReason) -> Any:
            self.singles += 1
            return await one(run_id, reason)

        monkeypatch.setattr(store, "arequest_cancels", arequest_cancels)
        monkeypatch.setattr(store, "arequest_cancel", arequest_cancel)


class _Parked:
    """How many runs of `graph()` have parked in their node."""

    def __init__(self) -> None:
        self.count = 0
        self.entered = asyncio.Event()

    def graph(self) -> Any:
        """A loop whose node parks at its second call, after one checkpointed step (a run
        started with a count of 1000 or more ends after one step instead)."""

        async def work(state: Count) -> dict[str, int]:
            if state["count"] >= 1000:
                return {"count": 100_000}
            if state["count"] == 1:
                self.count += 1
                self.entered.set()
                await asyncio.sleep(3600)
            return {"count": state["count"] + 1}

        return looping(work, until=10_000)

    async def all(self, n: int) -> None:
        """Wait until `n` runs have parked."""
        for _ in range(1000):
            if self.count >= n:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"{self.count} of {n} runs parked")


def _cancelled_whole(store: CheckpointStore, info: RunInfo) -> None:
    assert info.status is RunStatus.CANCELLED
    assert store.get_run(info.run_id).status is RunStatus.CANCELLED  # type: ignore[union-attr]
    assert phases(store.events(info.run_id))[-6:] == SIX
    assert phases(store.events(info.run_id)).count("request") == 1
    snapshot = store.load(info.run_id)
    assert snapshot.checkpoint_id == info.checkpoint_id is not None
    assert snapshot.values == {"count": 1}  # the last completed step, not the parked one
    assert list(snapshot.cancelled_tasks) == ["work"]


async def test_a_crowd_of_cancels_is_one_store_call_and_each_run_stops_whole(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    parked = _Parked()
    graph = parked.graph().compile(checkpointer=store)
    runs = [graph.start({"count": 0}, thread_config(f"t{i}")) for i in range(20)]
    await parked.all(20)
    counted = _Counted(store, monkeypatch)
    infos = await asyncio.gather(*(run.cancel("all at once") for run in runs))
    assert counted.batches == [20]
    for run, info in zip(runs, infos, strict=True):
        assert info.run_id == run.run_id
        assert run.status is RunStatus.CANCELLED  # no late answer overwrote the final record
        assert info.reason is not None and info.reason.message == "all at once"
        assert info.cancel_latency_ms is not None and info.cancel_latency_ms >= 0
        _cancelled_whole(store, info)


async def test_a_double_cancel_in_one_batch_keeps_the_first_reason(
        store: CheckpointStore) -> None:
    parked = _Parked()
    graph = parked.graph().compile(checkpointer=store)
    run = graph.start({"count": 0}, thread_config("t0"))
    await parked.all(1)
    first, second = await asyncio.gather(run.cancel("first"), run.cancel("second"))
    assert first == second
    assert first.reason is not None and first.reason.message == "first"
    _cancelled_whole(store, first)


async def test_a_batch_where_some_runs_already_ended_answers_them_with_their_end(
        store: CheckpointStore) -> None:
    parked = _Parked()
    graph = parked.graph().compile(checkpointer=store)
    going = [graph.start({"count": 0}, thread_config(f"t{i}")) for i in range(4)]
    ended = [graph.start({"count": 1000}, thread_config(f"e{i}")) for i in range(4)]
    for run in ended:
        assert await run.result() == {"count": 100_000}
    await parked.all(4)
    infos = await asyncio.gather(*(run.cancel() for run in [*ended, *going]))
    for info in infos[:4]:
        assert info.status is RunStatus.SUCCESS
        assert "request" not in phases(store.events(info.run_id))
    for info in infos[4:]:
        _cancelled_whole(store, info)


async def test_cancels_racing_completion_each_end_one_way_recorded_whole(
        store: CheckpointStore) -> None:
    async def quick(state: Count) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"count": state["count"] + 1}

    graph = looping(quick, until=3).compile(checkpointer=store)
    for delay in (0, 1, 2, 3, 5, 8):
        runs = [graph.start({"count": 0}, thread_config(f"r{delay}-{i}")) for i in range(6)]
        for _ in range(delay):
            await asyncio.sleep(0)
        infos = await asyncio.gather(*(run.cancel() for run in runs))
        for run, info in zip(runs, infos, strict=True):
            stored = store.get_run(run.run_id)
            assert stored is not None and stored.status is info.status is run.status
            assert info.status in (RunStatus.SUCCESS, RunStatus.CANCELLED)
            events = phases(store.events(run.run_id))
            if info.status is RunStatus.CANCELLED:
                assert events[-6:] == SIX and events.count("request") == 1
            else:
                assert await run.result() == {"count": 3}


async def test_a_cancel_in_a_batch_before_the_run_starts_keeps_it_from_starting(
        store: CheckpointStore) -> None:
    parked = _Parked()
    graph = parked.graph().compile(checkpointer=store)
    first = graph.start({"count": 0}, thread_config("busy", multitask_strategy="enqueue"))
    await parked.all(1)
    # Queued behind the first run on its thread: it has not started when the cancel comes.
    waiting = graph.start({"count": 0}, thread_config("busy", multitask_strategy="enqueue"))
    await asyncio.sleep(0.01)
    assert waiting.status is RunStatus.PENDING
    infos = await asyncio.gather(waiting.cancel("never mind"), first.cancel("stop"))
    assert [i.status for i in infos] == [RunStatus.CANCELLED, RunStatus.CANCELLED]
    events = phases(store.events(waiting.run_id))
    assert "start" not in events
    assert events[-6:] == SIX


async def test_a_caller_that_gives_up_waiting_leaves_its_cancel_to_proceed(
        store: CheckpointStore) -> None:
    parked = _Parked()
    graph = parked.graph().compile(checkpointer=store)
    run = graph.start({"count": 0}, thread_config("t0"))
    await parked.all(1)
    caller = asyncio.get_running_loop().create_task(run.cancel("given up"))
    await asyncio.sleep(0)  # the caller has queued its request; the batch has not run yet
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    info = await asyncio.wait_for(run.core.wait(), 5)
    assert info.reason is not None and info.reason.message == "given up"
    _cancelled_whole(store, info)
