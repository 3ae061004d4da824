"""Every stop runs the same lifecycle: hooks on every stop, all six phases in the audit log,
and an idle timeout that holds for sync nodes under a sync `invoke`."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import tether
from tether import RunStatus
from tether.graph import START, StateGraph
from tether.lifecycle import CANCEL_PHASES, NOTHING_TO_DO, complete
from tether.types import RunEvent, TimeoutPolicy, utcnow

from ._graphs import Log, phases, thread_config

pytestmark = pytest.mark.anyio


def cancel_phases(events: list[Any]) -> list[str]:
    """The cancel phases of an audit log, in order."""
    return [p for p in phases(events) if p in CANCEL_PHASES]


async def test_a_sibling_failure_runs_the_stopped_nodes_cleanup_hook_once(store: Any) -> None:
    hooks: list[str] = []
    slow_started = asyncio.Event()

    async def bad(state: Log) -> dict[str, list[str]]:
        await slow_started.wait()
        raise ValueError("boom")

    async def slow(state: Log) -> dict[str, list[str]]:
        tether.on_cancel(lambda: hooks.append("hook"))
        try:
            slow_started.set()
            await asyncio.sleep(60)
        finally:
            hooks.append("finally")
        return {"log": ["slow"]}

    b = StateGraph(Log).add_node("bad", bad).add_node("slow", slow)
    graph = b.add_edge(START, "bad").add_edge(START, "slow").compile(checkpointer=store)
    run = graph.astream({"log": []}, thread_config("sibling"))
    with pytest.raises(ValueError, match="boom"):
        await run.result()
    assert sorted(hooks) == ["finally", "hook"]
    info = store.get_run(run.run_id)
    assert info.status is RunStatus.ERROR
    events = store.events(run.run_id)
    (stopped,) = [e for e in events if e.phase == "terminate_node"]
    (cleanup,) = [e for e in events if e.phase == "cleanup"]
    assert stopped.node == "slow" and cleanup.node == "slow"
    assert cleanup.detail["outcome"] == "ok"
    assert phases(events)[-1] == "finish"


async def test_a_budget_stop_before_any_step_records_all_six_phases(store: Any) -> None:
    async def work(state: Log) -> dict[str, list[str]]:
        return {"log": ["work"]}

    graph = StateGraph(Log).add_node("work", work).add_edge(START, "work").compile(
        checkpointer=store, budget={"steps": 0})
    run = graph.astream({"log": []}, thread_config("budget"))
    with pytest.raises(tether.RunCancelled) as stopped:
        await run.result()
    assert stopped.value.reason.kind == "budget"
    events = store.events(run.run_id)
    assert cancel_phases(events) == list(CANCEL_PHASES)
    by_phase = {e.phase: e for e in events}
    assert by_phase["terminate_node"].detail == dict(NOTHING_TO_DO["terminate_node"])
    assert by_phase["cleanup"].detail == dict(NOTHING_TO_DO["cleanup"])
    stamps = [e.at for e in events if e.phase in CANCEL_PHASES]
    assert stamps == sorted(stamps)


async def test_a_cancel_of_a_paused_run_records_all_six_phases(store: Any) -> None:
    def ask(state: Log) -> dict[str, list[str]]:
        return {"log": [tether.interrupt("why?")]}

    graph = StateGraph(Log).add_node("ask", ask).add_edge(START, "ask").compile(
        checkpointer=store)
    await graph.ainvoke({"log": []}, thread_config("paused-six"))
    (paused,) = graph.list_runs(thread_id="paused-six")
    await graph.acancel(paused.run_id, "not answering")
    assert cancel_phases(store.events(paused.run_id)) == list(CANCEL_PHASES)


def test_an_idle_timeout_holds_for_a_sync_node_under_sync_invoke(store: Any) -> None:
    release = threading.Event()

    def stuck(state: Log) -> dict[str, list[str]]:
        release.wait(60)  # no sign of life, no check of `cancelled()`
        return {"log": ["stuck"]}

    graph = StateGraph(Log).add_node("stuck", stuck, timeout=TimeoutPolicy(idle_timeout=0.2))
    graph = graph.add_edge(START, "stuck").compile(checkpointer=store)
    began = time.monotonic()
    try:
        with pytest.raises(tether.NodeTimeoutError):
            graph.invoke({"log": []}, thread_config("idle", cancel_grace=0.2))
        took = time.monotonic() - began
    finally:
        release.set()
    assert took < 30, "the sync node was waited for, not abandoned"
    (info,) = graph.list_runs(thread_id="idle")
    assert info.status is RunStatus.TIMEOUT
    assert info.reason is not None and info.reason.kind == "timeout"
    events = store.events(info.run_id)
    assert cancel_phases(events) == list(CANCEL_PHASES)
    (stopped,) = [e for e in events if e.phase == "terminate_node"]
    assert stopped.node == "stuck" and stopped.detail["how"] == "abandoned"


def test_complete_fills_each_missing_phase_in_its_place() -> None:
    now = utcnow()
    events = (RunEvent("terminate_node", now, "n", {"how": "abandoned"}),
              RunEvent("propagate", now, None, {"kind": "timeout"}),
              RunEvent("checkpoint", now), RunEvent("terminate", now))
    done = complete(events, now)
    assert [e.phase for e in done] == list(CANCEL_PHASES[1:])
    assert done[2].detail == {"hooks": 0, "detail": "0 hooks"}
    assert complete(done, now) == done


async def test_a_sibling_failure_runs_a_sync_nodes_cleanup_hook_once(store: Any) -> None:
    hooks: list[str] = []
    started = threading.Event()

    def bad(state: Log) -> dict[str, list[str]]:
        started.wait(30)
        raise ValueError("boom")

    def slow(state: Log) -> dict[str, list[str]]:
        tether.on_cancel(lambda: hooks.append("hook"))
        started.set()
        tether.sleep_sync(60)  # wakes on the cancel the failure sends its siblings
        return {"log": ["slow"]}

    b = StateGraph(Log).add_node("bad", bad).add_node("slow", slow)
    graph = b.add_edge(START, "bad").add_edge(START, "slow").compile(checkpointer=store)
    run = graph.astream({"log": []}, thread_config("sync-sibling"))
    with pytest.raises(ValueError, match="boom"):
        await run.result()
    assert hooks == ["hook"]
    assert store.get_run(run.run_id).status is RunStatus.ERROR


@pytest.mark.parametrize("stop", ["user", "timeout", "budget", "shutdown"])
async def test_every_stop_runs_the_hook_of_the_node_in_flight_and_records_six_phases(
        stop: str) -> None:
    from tether.checkpoint.memory import InMemorySaver
    from tether.runs.shutdown import cancel_all, shutdown_reason

    store = InMemorySaver()
    hooks: list[str] = []
    inside = asyncio.Event()

    async def work(state: Log) -> dict[str, list[str]]:
        tether.on_cancel(lambda: hooks.append("hook"))
        inside.set()
        if stop == "budget":
            tether.charge(tokens=100)  # over the budget: the run is cancelled at once
        await asyncio.sleep(60)
        return {"log": ["work"]}

    graph = StateGraph(Log).add_node("work", work).add_edge(START, "work").compile(
        checkpointer=store, budget={"tokens": 10})
    config = thread_config(f"every-{stop}", **({"timeout": 0.2} if stop == "timeout" else {}))
    run = graph.astream({"log": []}, config)
    await asyncio.wait_for(inside.wait(), 30)
    if stop == "user":
        await run.cancel("enough")
    elif stop == "shutdown":
        await asyncio.to_thread(cancel_all, shutdown_reason("test"))
    with pytest.raises(tether.RunCancelled) as stopped:
        await run.result()
    assert stopped.value.reason.kind == stop
    assert hooks == ["hook"]
    assert cancel_phases(store.events(run.run_id)) == list(CANCEL_PHASES)
