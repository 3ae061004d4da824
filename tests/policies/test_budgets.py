"""Budgets stop a run exactly at their limit, through the cancel path, with the evidence."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import tether
from tether import RunCancelled, RunStatus
from tether.errors import ConfigError
from tether.graph import START, StateGraph

from ._graphs import Count, counter, thread

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("limit", [1, 3, 7])
async def test_step_budget_allows_exactly_its_steps(limit: int, store: Any) -> None:
    graph = counter(checkpointer=store)
    with pytest.raises(RunCancelled) as caught:
        await graph.ainvoke({"count": 0}, thread("t", budget={"steps": limit}))
    info = store.get_run(caught.value.run_id)
    assert info.status is RunStatus.CANCELLED
    assert info.reason.kind == "budget"
    assert info.reason.evidence["limit"] == "steps"
    assert info.reason.evidence["value"] == limit
    assert info.reason.evidence["usage"]["steps"] == limit
    assert store.load(info.run_id).values["count"] == limit


async def test_budget_cancelled_run_resumes_with_a_raised_budget(store: Any) -> None:
    graph = counter(until=5, checkpointer=store)
    with pytest.raises(RunCancelled) as caught:
        await graph.ainvoke({"count": 0}, thread("t", budget={"steps": 2}))
    resumed = graph.resume(caught.value.run_id, {"budget": {"steps": 10}})
    assert (await resumed.result())["count"] == 5


async def test_compile_time_budget_applies_and_config_overrides_it() -> None:
    graph = counter(until=4, budget={"steps": 2})
    with pytest.raises(RunCancelled):
        await graph.ainvoke({"count": 0})
    out = await graph.ainvoke({"count": 0}, {"budget": {"steps": 5}})
    assert out["count"] == 4


async def test_node_call_budget_per_node() -> None:
    graph = counter(budget={"node_calls": {"step": 4}})
    with pytest.raises(RunCancelled) as caught:
        await graph.ainvoke({"count": 0})
    evidence = caught.value.reason.evidence
    assert evidence["limit"] == "node_calls" and evidence["node"] == "step"
    assert evidence["usage"]["node_calls"] == {"step": 4}


@pytest.mark.parametrize("sync", [True, False])
async def test_token_budget_cancels_the_step_that_crosses_it(sync: bool) -> None:
    if sync:
        def spend(state: Count) -> dict[str, Any]:
            tether.charge(tokens=40)
            return {"count": state["count"] + 1}
    else:
        async def spend(state: Count) -> dict[str, Any]:  # type: ignore[misc]
            tether.charge(tokens=40)
            await asyncio.sleep(0)
            return {"count": state["count"] + 1}

    graph = counter(spend)
    with pytest.raises(RunCancelled) as caught:
        await graph.ainvoke({"count": 0}, {"budget": {"tokens": 100}})
    evidence = caught.value.reason.evidence
    assert evidence["limit"] == "tokens" and evidence["value"] == 100
    assert evidence["usage"]["tokens"] == 120


async def test_usage_is_visible_inside_nodes() -> None:
    seen: list[tether.Usage] = []

    def look(state: Count) -> dict[str, Any]:
        tether.charge(tokens=5, cost=0.5, tool_calls=1)
        seen.append(tether.usage())
        return {"count": state["count"] + 1}

    await counter(look, until=3).ainvoke({"count": 0})
    assert [u.tokens for u in seen] == [5, 10, 15]
    assert seen[-1].steps == 3 and seen[-1].tool_calls == 3


async def test_cost_budget_message_shows_amounts_as_a_person_writes_them() -> None:
    def spend(state: Count) -> dict[str, Any]:
        tether.charge(cost=0.02)
        return {"count": state["count"] + 1}

    with pytest.raises(RunCancelled) as caught:
        await counter(spend).ainvoke({"count": 0}, {"budget": {"cost": 0.1}})
    assert caught.value.reason.message == "cost budget of 0.1 exceeded (0.12)"
    assert caught.value.reason.evidence["usage"]["cost"] == pytest.approx(0.12)


async def test_wall_time_budget_cancels_with_kind_budget() -> None:
    async def slow(state: Count) -> dict[str, Any]:
        await asyncio.sleep(0.02)
        return {"count": state["count"] + 1}

    began = time.monotonic()
    with pytest.raises(RunCancelled) as caught:
        await counter(slow).ainvoke({"count": 0}, {"budget": {"wall_time": 0.1}})
    assert time.monotonic() - began < 1.0
    assert caught.value.reason.kind == "budget"
    assert caught.value.reason.evidence["limit"] == "wall_time"


async def test_subgraph_steps_draw_from_the_parent_budget() -> None:
    child = counter(until=3)
    b = StateGraph(Count).add_node("child", child).add_edge(START, "child")
    with pytest.raises(RunCancelled) as caught:
        await b.compile().ainvoke({"count": 0}, {"budget": {"steps": 3}})
    assert caught.value.reason.evidence["usage"]["steps"] == 3


async def test_errors_per_minute_stops_a_run_that_keeps_failing() -> None:
    def flaky(state: Count) -> dict[str, Any]:
        raise ConnectionError("down")

    policy = tether.RetryPolicy(initial_interval=0.001, max_interval=0.001, jitter=False,
                                max_attempts=50)
    b = StateGraph(Count).add_node("f", flaky, retry_policy=policy).add_edge(START, "f")
    with pytest.raises(RunCancelled) as caught:
        await b.compile().ainvoke({"count": 0}, {"budget": {"errors_per_minute": 5}})
    reason = caught.value.reason
    assert reason.kind == "policy" and reason.evidence["rate"] == 6
    assert reason.evidence["error"] == "ConnectionError: down"


async def test_tool_calls_per_minute_limit() -> None:
    def tools(state: Count) -> dict[str, Any]:
        tether.charge(tool_calls=2)
        return {"count": state["count"] + 1}

    with pytest.raises(RunCancelled) as caught:
        await counter(tools).ainvoke({"count": 0}, {"budget": {"tool_calls_per_minute": 5}})
    assert caught.value.reason.evidence["limit"] == "tool_calls_per_minute"


@pytest.mark.parametrize("budget", [{"stepz": 1}, {"steps": -1}, {"tokens": "many"}])
async def test_bad_budgets_are_refused_clearly(budget: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="budget"):
        await counter().ainvoke({"count": 0}, {"budget": budget})


async def test_idle_node_without_signs_of_life_times_out() -> None:
    async def stuck(state: Count) -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"count": 1}

    policy = tether.TimeoutPolicy(idle_timeout=0.05)
    b = StateGraph(Count).add_node("stuck", stuck, timeout=policy).add_edge(START, "stuck")
    graph = b.compile()
    with pytest.raises(tether.NodeTimeoutError, match="idle timeout"):
        await graph.ainvoke({"count": 0})
    (info,) = graph.list_runs()
    assert info.status is RunStatus.TIMEOUT


async def test_heartbeats_keep_an_idle_limited_node_alive() -> None:
    # Busy for 0.8 s, well past the 0.3 s idle timeout, with a sign of life every 0.02 s: the
    # margin (15x) holds on a loaded machine, where the thread may start or wake late.
    def busy(state: Count) -> dict[str, Any]:
        for _ in range(40):
            time.sleep(0.02)
            tether.heartbeat()
        return {"count": 1}

    b = StateGraph(Count).add_node("busy", busy).add_edge(START, "busy")
    assert await b.compile().ainvoke({"count": 0}, {"idle_timeout": 0.3}) == {
        "count": 1, "log": []}


async def test_stream_chunks_count_as_signs_of_life() -> None:
    async def chatty(state: Count) -> dict[str, Any]:
        writer = tether.get_stream_writer()
        for i in range(20):  # 0.6 s in all, twice the idle timeout, a chunk every 0.03 s
            await asyncio.sleep(0.03)
            writer(i)
        return {"count": 1}

    b = StateGraph(Count).add_node("chatty", chatty).add_edge(START, "chatty")
    out = await b.compile().ainvoke({"count": 0}, {"idle_timeout": 0.3})
    assert out["count"] == 1
