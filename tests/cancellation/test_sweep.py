"""The cancel semantics checked at every await point of a node, racing completion, in parallel
steps, in paused runs, and over a thousand concurrent runs."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
from typing import Any

import pytest

import tether
from tether import RunCancelled, RunStatus
from tether.graph import END, START, StateGraph

from ._graphs import Count, Log, phases, thread_config

pytestmark = pytest.mark.anyio

POINTS = 4


def pointed_graph(points: list[asyncio.Event], reached: list[asyncio.Event], calls: list[int],
                  hooks: list[int]) -> Any:
    """Three steps; the middle node has `POINTS` awaits the test can hold it at."""

    async def first(state: Log) -> dict[str, list[str]]:
        return {"log": ["first"]}

    async def middle(state: Log) -> dict[str, list[str]]:
        calls.append(1)
        tether.on_cancel(lambda: hooks.append(1))
        for gate, mark in zip(points, reached, strict=True):
            mark.set()
            await gate.wait()
        return {"log": ["middle"]}

    async def last(state: Log) -> dict[str, list[str]]:
        return {"log": ["last"]}

    b = StateGraph(Log).add_node("first", first).add_node("middle", middle)
    b.add_node("last", last).add_edge(START, "first").add_edge("first", "middle")
    b.add_edge("middle", "last").add_edge("last", END)
    return b


@pytest.mark.parametrize("point", range(POINTS))
async def test_cancel_at_each_await_point_keeps_every_invariant(point: int, store: Any) -> None:
    points = [asyncio.Event() for _ in range(POINTS)]
    reached = [asyncio.Event() for _ in range(POINTS)]
    calls: list[int] = []
    hooks: list[int] = []
    graph = pointed_graph(points, reached, calls, hooks).compile(checkpointer=store)
    config = thread_config(f"sweep-{point}")
    run = graph.astream({"log": []}, config)
    for gate in points[:point]:
        gate.set()
    await asyncio.wait_for(reached[point].wait(), 5)
    info = await run.cancel("sweep")

    # status, reason, and the audit trail
    assert info.status is RunStatus.CANCELLED
    assert phases(store.events(run.run_id))[-6:] == [
        "request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]
    # the checkpoint is the last completed superstep; nothing partial was written
    snapshot = store.load(run.run_id)
    assert snapshot.values == {"log": ["first"]}
    assert snapshot.next == ("middle",)
    assert snapshot.cancelled_tasks == ("middle",)
    assert snapshot.pending_writes == ()
    assert graph.get_state(config).values == {"log": ["first"]}
    # the cleanup hook ran exactly once
    assert hooks == [1]
    # a resume reaches the same final state as an uncancelled run
    for gate in points:
        gate.set()
    resumed = graph.resume(run.run_id)
    assert await resumed.result() == {"log": ["first", "middle", "last"]}
    assert calls == [1, 1]
    assert hooks == [1]


async def test_cancel_racing_completion_ends_consistently(store: Any) -> None:
    outcomes: dict[str, int] = {"success": 0, "cancelled": 0}
    for i in range(40):
        async def quick(state: Count) -> dict[str, int]:
            await asyncio.sleep(0)
            return {"count": state["count"] + 1}

        b = StateGraph(Count).add_node("q", quick).add_edge(START, "q")
        graph = b.compile(checkpointer=store)
        run = graph.astream({"count": 0}, thread_config(f"race-{i}"))
        for _ in range(i % 5):
            await asyncio.sleep(0)
        info = await run.cancel("race")
        final = store.get_run(run.run_id)
        assert final.status is info.status
        if final.status is RunStatus.SUCCESS:
            assert await run.result() == {"count": 1}
            assert final.reason is None
        else:
            assert final.status is RunStatus.CANCELLED
            with pytest.raises(RunCancelled):
                await run.result()
        outcomes[final.status.value] += 1
    assert outcomes["cancelled"] > 0


async def test_finished_tasks_of_a_cancelled_step_are_not_redone_on_resume(store: Any) -> None:
    runs: dict[str, int] = {"fast": 0, "slow": 0}
    release = asyncio.Event()
    fast_done = asyncio.Event()

    async def fast(state: Log) -> dict[str, list[str]]:
        runs["fast"] += 1
        fast_done.set()
        return {"log": ["fast"]}

    async def slow(state: Log) -> dict[str, list[str]]:
        runs["slow"] += 1
        await release.wait()
        return {"log": ["slow"]}

    b = StateGraph(Log).add_node("fast", fast).add_node("slow", slow)
    b.add_edge(START, "fast").add_edge(START, "slow")
    graph = b.compile(checkpointer=store)
    config = thread_config("parallel")
    run = graph.astream({"log": []}, config)
    await asyncio.wait_for(fast_done.wait(), 5)
    await asyncio.sleep(0.01)
    await run.cancel()
    snapshot = store.load(run.run_id)
    assert snapshot.values == {"log": []}
    assert snapshot.cancelled_tasks == ("slow",)
    assert snapshot.next == ("slow",)
    assert [tuple(w) for w in snapshot.pending_writes] == [("fast", "log", ["fast"])]
    state = graph.get_state(config)
    assert state.values == {"log": ["fast"]} and state.next == ("slow",)
    release.set()
    assert await graph.resume(run.run_id).result() == {"log": ["fast", "slow"]}
    assert runs == {"fast": 1, "slow": 2}


async def test_cancel_of_an_interrupted_run_ends_it_cancelled(store: Any) -> None:
    def ask(state: Log) -> dict[str, list[str]]:
        return {"log": [tether.interrupt("why?")]}

    graph = StateGraph(Log).add_node("ask", ask).add_edge(START, "ask").compile(
        checkpointer=store)
    config = thread_config("paused")
    out = await graph.ainvoke({"log": []}, config)
    assert "__interrupt__" in out
    (paused,) = graph.list_runs(thread_id="paused")
    assert paused.status is RunStatus.INTERRUPTED
    info = await graph.acancel(paused.run_id, "not answering")
    assert info.status is RunStatus.CANCELLED
    assert phases(store.events(paused.run_id))[-5:] == [
        "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


async def test_recursion_limit_stops_the_run_through_the_cancel_path_and_resume_continues(
    store: Any,
) -> None:
    b = StateGraph(Count).add_node("inc", lambda s: {"count": s["count"] + 1})
    b.add_edge(START, "inc")
    b.add_conditional_edges("inc", lambda s: "inc" if s["count"] < 10 else END)
    graph = b.compile(checkpointer=store)
    with pytest.raises(tether.GraphRecursionError) as caught:
        await graph.ainvoke({"count": 0}, thread_config("limit", recursion_limit=5))
    assert isinstance(caught.value, RunCancelled)
    info = store.get_run(caught.value.run_id)  # type: ignore[attr-defined]
    assert info.status is RunStatus.CANCELLED
    assert info.reason.kind == "budget" and info.reason.evidence["value"] == 5
    assert store.load(info.run_id).values == {"count": 5}
    resumed = graph.resume(info.run_id, {"recursion_limit": 6})
    assert await resumed.result() == {"count": 10}


async def test_a_thousand_concurrent_runs_cancelled_at_random_leave_nothing_running() -> None:
    async def work(state: Count) -> dict[str, int]:
        await asyncio.sleep(random.uniform(0, 0.02))
        return {"count": state["count"] + 1}

    b = StateGraph(Count).add_node("w", work).add_edge(START, "w")
    b.add_conditional_edges("w", lambda s: "w" if s["count"] < 1000 else END)
    graph = b.compile()
    threads_before = threading.active_count()
    tasks_before = len(asyncio.all_tasks())
    runs = [graph.start({"count": 0}) for _ in range(1000)]

    async def cancel_later(run: Any) -> Any:
        await asyncio.sleep(random.uniform(0, 0.05))
        return await run.cancel("random")

    infos = await asyncio.gather(*(cancel_later(r) for r in runs))
    assert {i.status for i in infos} == {RunStatus.CANCELLED}
    assert all(r.status is RunStatus.CANCELLED for r in runs)
    del runs, infos
    gc.collect()
    await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) <= tasks_before
    assert threading.active_count() <= threads_before + 2
    assert all(info.terminal for info in graph.list_runs())
