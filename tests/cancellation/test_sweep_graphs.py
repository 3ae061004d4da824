"""The cancel sweep, through its pytest fixtures, over the shapes tether's suites use: loops of
async and of sync nodes, a join, a subgraph node, on every store."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest

import tether
from tether.graph import END, START, StateGraph

from ._graphs import Count, looping

pytestmark = pytest.mark.anyio


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


async def test_a_looping_async_node_keeps_every_invariant(store: Any, acancel_sweep: Any) -> None:
    async def work(state: Count) -> dict[str, int]:
        await tether.sleep(0)
        return {"count": state["count"] + 1}

    graph = looping(work, until=3).compile(checkpointer=store)
    result = await acancel_sweep(graph, {"count": 0})
    assert len(result.tried) == len(result.points) >= 6


def test_a_sync_loop_keeps_every_invariant(store: Any, cancel_sweep: Any) -> None:
    def step(state: Count) -> dict[str, int]:
        tether.check_cancelled()
        return {"count": state["count"] + 1}

    result = cancel_sweep(looping(step, until=4).compile(checkpointer=store), {"count": 0})
    assert [p.node for p in result.points] == ["work"] * 4


def test_a_subgraph_node_and_a_join_keep_every_invariant(store: Any, cancel_sweep: Any) -> None:
    async def inner(state: Log) -> dict[str, list[str]]:
        tether.on_cancel(lambda: None)
        await asyncio.sleep(0)
        return {"log": ["inner"]}

    child = StateGraph(Log).add_node("inner", inner).add_edge(START, "inner").compile()

    async def left(state: Log) -> dict[str, list[str]]:
        await asyncio.sleep(0)
        return {"log": ["left"]}

    def done(state: Log) -> dict[str, list[str]]:
        return {"log": ["done"]}

    b = StateGraph(Log).add_node("child", child).add_node("left", left).add_node("done", done)
    b.add_edge(START, "child").add_edge(START, "left").add_edge(["child", "left"], "done")
    result = cancel_sweep(b.add_edge("done", END).compile(checkpointer=store), {"log": []})
    assert {p.node for p in result.points} == {"left", "done"}  # a subgraph is not entered
