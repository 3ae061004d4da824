"""How nodes stop: async (level-triggered), sync cooperative, sync abandoned, process-killed;
cleanup hooks, shields, subgraphs and node timeouts."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, TypedDict

import pytest

import tether
from tether import NodeTimeoutError, RunCancelled, RunStatus
from tether.graph import START, StateGraph

from ._graphs import Count, Log, looping, phases
from .process_nodes import busy_loop, cooperative_sleeper, sleeper

pytestmark = pytest.mark.anyio


async def started(flag: threading.Event | asyncio.Event) -> None:
    """Wait (at most 5 s) until a node reports it is running."""
    if isinstance(flag, threading.Event):
        assert await asyncio.to_thread(flag.wait, 5)
    else:
        await asyncio.wait_for(flag.wait(), 5)


def events_of(graph: Any, run_id: str, phase: str) -> list[Any]:
    return [e for e in graph.ledger.events(run_id) if e.phase == phase]


async def test_node_that_swallows_the_cancel_is_cancelled_again_and_never_writes() -> None:
    entered = asyncio.Event()
    swallowed: list[int] = []

    async def stubborn(state: Count) -> dict[str, int]:
        entered.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed.append(1)
        await asyncio.sleep(10)  # level-triggered: cancelled again right here
        return {"count": 999}

    graph = looping(stubborn).compile()
    run = graph.astream({"count": 0})
    await started(entered)
    info = await run.cancel()
    assert info.status is RunStatus.CANCELLED and swallowed == [1]


async def test_value_returned_after_swallowing_the_cancel_is_never_applied(store: Any) -> None:
    entered = asyncio.Event()

    async def liar(state: Count) -> dict[str, int]:
        entered.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return {"count": 999}
        return {"count": 1}

    graph = looping(liar).compile(checkpointer=store)
    run = graph.astream({"count": 0}, {"configurable": {"thread_id": "t"}})
    await started(entered)
    await run.cancel()
    snapshot = store.load(run.run_id)
    assert snapshot.values == {"count": 0}
    assert snapshot.pending_writes == ()
    assert snapshot.cancelled_tasks == ("work",)


async def test_sync_node_polling_cancelled_stops_cooperatively_within_milliseconds() -> None:
    entered = threading.Event()

    def polite(state: Count) -> dict[str, int]:
        entered.set()
        while not tether.cancelled():
            time.sleep(0.0005)
        return {"count": state["count"] + 1}

    graph = looping(polite).compile()
    run = graph.astream({"count": 0})
    await started(entered)
    info = await run.cancel()
    assert info.cancel_latency_ms is not None and info.cancel_latency_ms < 100
    stops = events_of(graph, run.run_id, "terminate_node")
    assert [e.detail["how"] for e in stops] == ["cooperative"]


async def test_sync_sleep_wakes_on_cancel_with_node_cancelled() -> None:
    entered = threading.Event()
    raised: list[BaseException] = []

    def sleepy(state: Count) -> dict[str, int]:
        entered.set()
        try:
            tether.sleep_sync(30)
        except tether.NodeCancelled as exc:
            raised.append(exc)
            raise
        return {"count": 1}

    run = looping(sleepy).compile().astream({"count": 0})
    await started(entered)
    info = await run.cancel("stop sleeping")
    assert info.cancel_latency_ms is not None and info.cancel_latency_ms < 100
    assert raised and raised[0].reason is not None  # type: ignore[attr-defined]


async def test_sync_node_ignoring_the_cancel_is_abandoned_after_its_grace() -> None:
    entered = threading.Event()
    finished = threading.Event()

    def deaf(state: Count) -> dict[str, int]:
        entered.set()
        time.sleep(0.6)
        finished.set()
        return {"count": 999}

    graph = looping(deaf).compile()
    run = graph.astream({"count": 0}, {"cancel_grace": 0.1})
    await started(entered)
    began = time.monotonic()
    info = await run.cancel()
    assert time.monotonic() - began < 0.5
    assert [e.detail["how"] for e in events_of(graph, run.run_id, "terminate_node")] == [
        "abandoned"]
    assert info.status is RunStatus.CANCELLED
    # The abandoned thread does not starve other runs: a new run's sync node gets a thread.
    quick = looping(lambda s: {"count": s["count"] + 1}, until=3).compile()
    assert await asyncio.wait_for(quick.ainvoke({"count": 0}), 2) == {"count": 3}
    assert await asyncio.to_thread(finished.wait, 2)


class Marked(TypedDict):
    count: int
    marker: str


async def node_started(marker: Path) -> None:
    """Wait until a process node has written its marker file."""
    for _ in range(1000):
        if marker.exists():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the process node never started")


async def test_process_node_in_a_cpu_loop_is_killed_within_grace(tmp_path: Path) -> None:
    b = StateGraph(Marked).add_node("work", busy_loop, isolation="process", cancel_grace=0.2)
    b.add_edge(START, "work")
    graph = b.compile()
    marker = tmp_path / "started"
    run = graph.astream({"count": 0, "marker": str(marker)})
    await node_started(marker)
    began = time.monotonic()
    info = await run.cancel()
    assert time.monotonic() - began < 0.2 + 0.5
    hows = [e.detail["how"] for e in events_of(graph, run.run_id, "terminate_node")]
    assert hows in (["killed"], ["terminated"])
    assert info.status is RunStatus.CANCELLED


async def test_process_node_sees_cancelled_and_stops_cooperatively(tmp_path: Path) -> None:
    b = StateGraph(Marked).add_node("work", cooperative_sleeper, isolation="process")
    b.add_edge(START, "work")
    graph = b.compile()
    marker = tmp_path / "started"
    run = graph.astream({"count": 0, "marker": str(marker)})
    await node_started(marker)
    await run.cancel()
    hows = [e.detail["how"] for e in events_of(graph, run.run_id, "terminate_node")]
    assert hows == ["cooperative"]


async def test_process_node_returns_its_result() -> None:
    b = StateGraph(Count).add_node("work", sleeper, isolation="process").add_edge(START, "work")
    assert await b.compile().ainvoke({"count": 4}) == {"count": 5}


async def test_process_node_with_unpicklable_function_fails_clearly() -> None:
    b = StateGraph(Count).add_node("work", lambda s: {"count": 1}, isolation="process")
    b.add_edge(START, "work")
    with pytest.raises(tether.errors.NodeError, match="Node 'work': process nodes take and "
                                                      "return picklable values"):
        await b.compile().ainvoke({"count": 0})


async def test_on_cancel_hooks_fire_once_for_the_cancelled_task_only() -> None:
    fired: list[str] = []
    holding = asyncio.Event()

    async def finished_node(state: Log) -> dict[str, list[str]]:
        tether.on_cancel(lambda: fired.append("finished"))
        return {"log": ["a"]}

    async def held(state: Log) -> dict[str, list[str]]:
        async def async_hook() -> None:
            fired.append("async")

        tether.on_cancel(lambda: fired.append("sync"))
        tether.on_cancel(async_hook)
        holding.set()
        await asyncio.sleep(10)
        return {"log": ["b"]}

    b = StateGraph(Log).add_node("a", finished_node).add_node("b", held)
    b.add_edge(START, "a").add_edge("a", "b")
    graph = b.compile()
    run = graph.astream({"log": []})
    await started(holding)
    await run.cancel()
    await run.cancel()
    assert sorted(fired) == ["async", "sync"]
    cleanup = events_of(graph, run.run_id, "cleanup")
    assert sorted(e.detail["outcome"] for e in cleanup) == ["ok", "ok"]
    assert phases(graph.ledger.events(run.run_id)).index("cleanup") < phases(
        graph.ledger.events(run.run_id)).index("checkpoint")


async def test_failing_and_slow_hooks_are_reported_not_raised() -> None:
    holding = asyncio.Event()

    async def held(state: Count) -> dict[str, int]:
        def broken() -> None:
            raise RuntimeError("cleanup broke")

        async def slow() -> None:
            await asyncio.sleep(10)

        tether.on_cancel(broken)
        tether.on_cancel(slow)
        holding.set()
        await asyncio.sleep(10)
        return {"count": 1}

    graph = looping(held).compile()
    run = graph.astream({"count": 0}, {"cleanup_grace": 0.1})
    await started(holding)
    info = await run.cancel()
    assert info.status is RunStatus.CANCELLED
    outcomes = {e.detail["hook"].split(".")[-1]: e.detail["outcome"]
                for e in events_of(graph, run.run_id, "cleanup")}
    assert outcomes == {"broken": "error", "slow": "timeout"}


async def test_shield_lets_a_critical_write_finish_before_the_cancel_lands() -> None:
    inside = asyncio.Event()
    completed: list[str] = []

    async def careful(state: Count) -> dict[str, int]:
        with tether.shield():
            inside.set()
            await asyncio.sleep(0.05)
            completed.append("write")
        await asyncio.sleep(10)
        return {"count": 1}

    run = looping(careful).compile().astream({"count": 0})
    await started(inside)
    await run.cancel()
    assert completed == ["write"]


async def test_shield_gives_way_after_the_grace() -> None:
    inside = asyncio.Event()

    async def hog(state: Count) -> dict[str, int]:
        with tether.shield():
            inside.set()
            await asyncio.sleep(10)
        return {"count": 1}

    run = looping(hog).compile().astream({"count": 0}, {"cancel_grace": 0.05})
    await started(inside)
    began = time.monotonic()
    await run.cancel()
    assert time.monotonic() - began < 1.0


@pytest.mark.parametrize("source", ["deadline", "other thread"])
def test_shield_gives_way_after_the_grace_when_the_cancel_comes_from_a_callback(
        source: str) -> None:
    # Under a sync invoke, a deadline's timer and a cancel from another thread reach the run's
    # loop as plain callbacks, outside any task: the shield must still be bounded by its grace.
    inside = threading.Event()

    async def hog(state: Count) -> dict[str, int]:
        with tether.shield():
            inside.set()
            await asyncio.sleep(10)
        return {"count": 1}

    graph = looping(hog).compile()
    config: dict[str, Any] = {"cancel_grace": 0.05, "run_id": f"shielded-{source}"}
    if source == "deadline":
        config["timeout"] = 0.1
    else:
        def cancel_when_inside() -> None:
            assert inside.wait(5)
            graph.cancel(config["run_id"], "from another thread")

        threading.Thread(target=cancel_when_inside, daemon=True).start()
    began = time.monotonic()
    with pytest.raises(RunCancelled):
        graph.invoke({"count": 0}, config)
    assert time.monotonic() - began < 1.5


async def test_cancel_reaches_a_node_inside_a_subgraph() -> None:
    inside = asyncio.Event()
    cleaned: list[str] = []

    async def deep(state: Count) -> dict[str, int]:
        tether.on_cancel(lambda: cleaned.append("deep"))
        inside.set()
        await asyncio.sleep(10)
        return {"count": 1}

    child = StateGraph(Count).add_node("deep", deep).add_edge(START, "deep").compile()
    parent = StateGraph(Count).add_node("child", child).add_edge(START, "child").compile()
    run = parent.astream({"count": 0})
    await started(inside)
    info = await run.cancel()
    assert info.status is RunStatus.CANCELLED and cleaned == ["deep"]


async def test_node_timeout_fails_the_attempt_and_ends_the_run_as_timeout() -> None:
    async def slow(state: Count) -> dict[str, int]:
        await asyncio.sleep(10)
        return {"count": 1}

    b = StateGraph(Count).add_node("slow", slow, timeout=0.05).add_edge(START, "slow")
    graph = b.compile()
    with pytest.raises(NodeTimeoutError, match="Node 'slow' exceeded its run timeout"):
        await graph.ainvoke({"count": 0})
    (info,) = graph.list_runs()
    assert info.status is RunStatus.TIMEOUT and info.reason is not None
    assert info.reason.kind == "timeout"


async def test_node_timeout_is_retried_by_a_retry_policy() -> None:
    attempts: list[int] = []

    async def slow_once(state: Count) -> dict[str, int]:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(10)
        return {"count": len(attempts)}

    policy = tether.RetryPolicy(initial_interval=0.001, jitter=False)
    b = StateGraph(Count).add_node("s", slow_once, timeout=0.05, retry_policy=policy)
    b.add_edge(START, "s")
    assert await b.compile().ainvoke({"count": 0}) == {"count": 2}


async def test_sync_node_timeout_holds_for_a_cooperative_sync_node() -> None:
    def polite(state: Count) -> dict[str, int]:
        tether.sleep_sync(10)
        return {"count": 1}

    b = StateGraph(Count).add_node("p", polite, timeout=0.05).add_edge(START, "p")
    began = time.monotonic()
    with pytest.raises(NodeTimeoutError):
        b.compile().invoke({"count": 0})
    assert time.monotonic() - began < 1.0


async def test_deadline_is_visible_inside_the_node() -> None:
    seen: list[float | None] = []

    async def look(state: Count) -> dict[str, int]:
        seen.append(tether.deadline())
        return {"count": 1}

    graph = looping(look, until=1).compile()
    before = time.monotonic()
    await graph.ainvoke({"count": 0}, {"timeout": 5})
    deadline = seen[0]
    assert deadline is not None and before + 4 < deadline < before + 6


async def test_run_cancelled_exception_carries_run_id_and_checkpoint(store: Any) -> None:
    entered = asyncio.Event()

    async def wait_forever(state: Count) -> dict[str, int]:
        if state["count"] == 1:
            entered.set()
            await asyncio.sleep(10)
        return {"count": state["count"] + 1}

    graph = looping(wait_forever).compile(checkpointer=store)
    run = graph.astream({"count": 0}, {"configurable": {"thread_id": "x"}})
    await started(entered)
    await run.cancel()
    with pytest.raises(RunCancelled) as caught:
        await run.result()
    assert caught.value.run_id == run.run_id
    assert caught.value.checkpoint_id == store.get_run(run.run_id).checkpoint_id
    assert caught.value.checkpoint_id is not None


def test_repeated_sync_runs_with_a_timeout_each_end_as_timeout() -> None:
    # Regression: a node that sees the deadline before the run's timer fires must still end
    # the run as `timeout`, never as a success with its writes dropped, run after run.
    def crawl(state: Count) -> dict[str, int]:
        pages = state["count"]
        while not tether.cancelled():
            pages += 1
            tether.sleep_sync(0.01)
        return {"count": pages}

    graph = looping(crawl).compile()
    for _ in range(8):
        with pytest.raises(tether.RunTimeout):
            graph.invoke({"count": 0}, {"timeout": 0.05})
    assert {r.status for r in graph.list_runs()} == {RunStatus.TIMEOUT}


async def test_a_node_raising_cancelled_error_by_itself_fails_as_a_node_error() -> None:
    async def odd(state: Count) -> dict[str, int]:
        raise asyncio.CancelledError

    graph = looping(odd).compile()
    with pytest.raises(tether.errors.NodeError, match="raised CancelledError without being "
                                                      "cancelled"):
        await graph.ainvoke({"count": 0})
    assert graph.list_runs()[0].status is RunStatus.ERROR
