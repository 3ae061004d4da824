"""Sync fan-outs (many sync tasks in one step, run as a batch): concurrency, order, failures,
interrupts and every rung of the cancel ladder."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import tether
from tether import RunStatus
from tether.graph import START, StateGraph
from tether.types import utcnow

from ._graphs import Log, phases, thread_config

pytestmark = pytest.mark.anyio

WIDTH = 6


def fan(node: Any, width: int = WIDTH, **compile_kw: Any) -> Any:
    b = StateGraph(Log)
    for i in range(width):
        b.add_node(f"w{i}", node(i))
        b.add_edge(START, f"w{i}")
    return b.compile(**compile_kw)


async def test_sync_fan_out_runs_concurrently_and_applies_writes_in_task_order() -> None:
    barrier = threading.Barrier(WIDTH, timeout=5)

    def node(i: int) -> Any:
        def run(state: Log) -> dict[str, Any]:
            barrier.wait()  # deadlocks unless all run at once
            time.sleep(0.001 * (WIDTH - i))  # finish in reverse order
            return {"log": [f"w{i}"]}
        return run

    out = await fan(node).ainvoke({"log": []})
    assert out == {"log": [f"w{i}" for i in range(WIDTH)]}


async def test_a_failing_sync_task_fails_the_step_and_stops_its_siblings() -> None:
    stopped: list[int] = []
    reasons: list[Any] = []

    def node(i: int) -> Any:
        def run(state: Log) -> dict[str, Any]:
            if i == 0:
                time.sleep(0.02)
                raise RuntimeError("w0 broke")
            while not tether.cancelled():
                time.sleep(0.001)
            stopped.append(i)
            reasons.append(tether.cancel_reason())
            return {"log": [f"w{i}"]}
        return run

    began = utcnow()
    with pytest.raises(RuntimeError, match="w0 broke"):
        await fan(node).ainvoke({"log": []})
    assert sorted(stopped) == list(range(1, WIDTH))
    # The siblings' reason is made at the failure (not once, when tether was imported).
    assert {(r.kind, r.requested_by) for r in reasons} == {("parent", "engine")}
    assert all(r.requested_at >= began for r in reasons)


async def test_cancel_during_a_sync_fan_out_stops_cooperative_nodes_and_keeps_finished_ones(
    store: Any,
) -> None:
    started = threading.Event()
    hooks: list[int] = []

    def node(i: int) -> Any:
        def run(state: Log) -> dict[str, Any]:
            if i % 2 == 0:
                return {"log": [f"w{i}"]}  # finishes before the cancel
            tether.on_cancel(lambda: hooks.append(i))
            started.set()
            tether.sleep_sync(30)
            return {"log": [f"late{i}"]}
        return run

    graph = fan(node, checkpointer=store)
    run = graph.astream({"log": []}, thread_config("fan"))
    assert await asyncio.to_thread(started.wait, 5)
    await asyncio.sleep(0.05)
    info = await run.cancel("stop the fan")
    assert info.status is RunStatus.CANCELLED
    assert info.cancel_latency_ms is not None and info.cancel_latency_ms < 500
    snapshot = store.load(run.run_id)
    assert snapshot.values == {"log": []}
    assert sorted(w.value[0] for w in snapshot.pending_writes) == ["w0", "w2", "w4"]
    assert snapshot.cancelled_tasks == ("w1", "w3", "w5")
    assert sorted(hooks) == [1, 3, 5]
    hows = [e.detail["how"] for e in store.events(run.run_id) if e.phase == "terminate_node"]
    assert hows == ["cooperative"] * 3
    assert phases(store.events(run.run_id))[-1] == "terminate"


async def test_a_deaf_sync_node_in_a_fan_out_is_abandoned_after_the_grace() -> None:
    started = threading.Event()

    def node(i: int) -> Any:
        def run(state: Log) -> dict[str, Any]:
            if i == 0:
                started.set()
                time.sleep(0.5)  # never checks
            return {"log": [f"w{i}"]}
        return run

    graph = fan(node)
    run = graph.astream({"log": []}, {"cancel_grace": 0.05})
    assert await asyncio.to_thread(started.wait, 5)
    began = time.monotonic()
    await run.cancel()
    assert time.monotonic() - began < 0.4
    stops = {e.node: e.detail["how"] for e in graph.ledger.events(run.run_id)
             if e.phase == "terminate_node"}
    # The deaf node is abandoned; a quick sibling the cancel caught before it returned (a busy
    # machine delays their threads) stops cooperatively — never abandoned.
    assert stops.pop("w0") == "abandoned"
    assert set(stops.values()) <= {"cooperative"}


async def test_an_interrupt_in_a_sync_fan_out_pauses_the_step(store: Any) -> None:
    def node(i: int) -> Any:
        def run(state: Log) -> dict[str, Any]:
            if i == 1:
                return {"log": [tether.interrupt("ok?")]}
            return {"log": [f"w{i}"]}
        return run

    graph = fan(node, width=3, checkpointer=store)
    out = await graph.ainvoke({"log": []}, thread_config("pause"))
    assert [i.value for i in out["__interrupt__"]] == ["ok?"]
    assert out["log"] == ["w0", "w2"]
    done = await graph.ainvoke(tether.Command(resume="yes"), thread_config("pause"))
    assert done == {"log": ["w0", "yes", "w2"]}
