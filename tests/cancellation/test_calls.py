"""Calls (a `@task`, a unit a node launches) under a stop: each is its own cancellable unit; a
stop keeps the results of the calls that finished; a resume runs only the unfinished ones."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

import tether
from tether import RunCancelled, RunStatus
from tether.constants import RETURN
from tether.func import entrypoint, task
from tether.graph import START, StateGraph

from ._graphs import thread_config

pytestmark = pytest.mark.anyio


def build_pipeline(store: Any, ran: list[int], reached: asyncio.Event,
                   *, sync: bool) -> Any:
    """Three steps, one task each; step 2 waits until cancelled."""
    loop = asyncio.get_running_loop()

    if sync:
        @task
        def step(i: int) -> int:
            ran.append(i)
            if i == 2:
                loop.call_soon_threadsafe(reached.set)
                tether.sleep_sync(30)
            return i * 10

        @entrypoint(checkpointer=store)
        def pipeline(n: int) -> list[int]:
            return [step(i).result() for i in range(n)]
    else:
        @task
        async def step(i: int) -> int:  # type: ignore[misc]
            ran.append(i)
            if i == 2:
                reached.set()
                await tether.sleep(30)
            return i * 10

        @entrypoint(checkpointer=store)
        async def pipeline(n: int) -> list[int]:
            return [await step(i) for i in range(n)]

    return pipeline


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_a_cancelled_functional_run_keeps_finished_tasks_and_resume_skips_them(
        store: Any, sync: bool) -> None:
    ran: list[int] = []
    reached = asyncio.Event()
    graph = build_pipeline(store, ran, reached, sync=sync)
    run = graph.start(4, thread_config(f"pipeline-{sync}"))
    await asyncio.wait_for(reached.wait(), 5)
    await run.cancel("enough")
    with pytest.raises(RunCancelled):
        await run.result()
    info = store.get_run(run.run_id)
    assert info.status is RunStatus.CANCELLED
    kept = {w.value for w in store.load(run.run_id).pending_writes if w.key == RETURN}
    assert kept == {0, 10}
    assert ran == [0, 1, 2]
    reached.clear()
    ran.clear()
    resumed = graph.resume(run.run_id)
    # The resumed step asks for 2 again: let it finish this time.
    waiter = asyncio.ensure_future(reached.wait())
    await asyncio.wait_for(waiter, 5)
    await resumed.cancel("again")
    with pytest.raises(RunCancelled):
        await resumed.result()
    assert ran == [2]


async def test_a_task_that_finishes_after_the_cancel_is_not_kept(store: Any) -> None:
    started = threading.Event()
    release = threading.Event()

    @task
    def deaf(i: int) -> int:
        started.set()
        release.wait(5)  # ignores the cancel, returns late
        return i

    @entrypoint(checkpointer=store)
    def main(n: int) -> int:
        return deaf(n).result()

    run = main.start(1, {**thread_config("late"), "cancel_grace": 0.2})
    await asyncio.to_thread(started.wait, 5)
    await run.cancel("stop")
    release.set()
    with pytest.raises(RunCancelled):
        await run.result()
    assert not [w for w in store.load(run.run_id).pending_writes if w.key == RETURN]


async def test_cancelling_a_run_stops_its_parallel_tasks_and_keeps_the_finished_ones(
        store: Any) -> None:
    done = asyncio.Event()

    @task
    async def quick(i: int) -> int:
        return i

    @task
    async def slow(i: int) -> int:
        done.set()
        await asyncio.sleep(30)
        return i

    @entrypoint(checkpointer=store)
    async def fan(n: int) -> list[int]:
        futures = [quick(i) for i in range(n)] + [slow(99)]
        return list(await asyncio.gather(*futures))

    run = fan.start(3, thread_config("fan"))
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.05)
    info = await fan.acancel(run.run_id, "by id")
    assert info.status is RunStatus.CANCELLED
    kept = sorted(w.value for w in store.load(run.run_id).pending_writes if w.key == RETURN)
    assert kept == [0, 1, 2]


async def test_a_functional_run_stops_at_its_deadline(store: Any) -> None:
    @task
    async def forever(i: int) -> int:
        await asyncio.sleep(30)
        return i

    @entrypoint(checkpointer=store)
    async def main(n: int) -> int:
        return await forever(n)

    with pytest.raises(tether.RunTimeout):
        await main.ainvoke(1, {**thread_config("deadline"), "timeout": 0.2})


class Calls(TypedDict):
    results: Annotated[list[int], operator.add]


async def test_a_node_running_units_keeps_the_finished_ones_across_a_cancel(store: Any) -> None:
    """What a ToolNode does: one unit per tool call, launched from one node."""
    hold = asyncio.Event()
    ran: list[int] = []

    @task
    async def tool(i: int) -> int:
        ran.append(i)
        if i == 1 and not hold.is_set():
            await asyncio.sleep(30)
        return i

    async def tools(state: Calls) -> dict[str, list[int]]:
        return {"results": list(await asyncio.gather(*[tool(i) for i in range(3)]))}

    graph = StateGraph(Calls).add_node("tools", tools).add_edge(START, "tools")
    compiled = graph.compile(checkpointer=store)
    config = thread_config("units")
    run = compiled.start({"results": []}, config)
    while sorted(ran) != [0, 1, 2]:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await run.cancel("stop")
    with pytest.raises(RunCancelled):
        await run.result()
    hold.set()
    ran.clear()
    resumed = compiled.resume(run.run_id)
    assert await resumed.result() == {"results": [0, 1, 2]}
    assert ran == [1]


async def test_a_failing_task_is_retried_alone(store: Any) -> None:
    attempts: list[str] = []

    @task(retry_policy=tether.RetryPolicy(max_attempts=3, initial_interval=0.001,
                                          jitter=False))
    async def flaky(i: int) -> int:
        attempts.append("flaky")
        if attempts.count("flaky") < 3:
            raise ConnectionError("down")
        return i

    @entrypoint(checkpointer=store)
    async def main(n: int) -> int:
        attempts.append("main")
        return await flaky(n)

    assert await main.ainvoke(5, thread_config("retry")) == 5
    assert attempts == ["main", "flaky", "flaky", "flaky"]


async def test_a_task_timeout_fails_the_task_with_node_timeout_error(store: Any) -> None:
    @task(timeout=0.05)
    async def slow(i: int) -> int:
        await asyncio.sleep(5)
        return i

    @entrypoint(checkpointer=store)
    async def main(n: int) -> str:
        try:
            await slow(n)
        except tether.NodeTimeoutError as exc:
            return f"timed out: {exc.node}"
        return "no"

    assert await main.ainvoke(1, thread_config("timeout")) == "timed out: slow"


async def test_a_task_future_in_async_code_is_an_asyncio_future(store: Any) -> None:
    @task
    async def later(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    @entrypoint(checkpointer=store)
    async def main(n: int) -> str:
        future = later(n)
        assert isinstance(future, asyncio.Future)
        try:
            future.result()
        except asyncio.InvalidStateError:
            return f"{await future}: not ready"
        return "no"

    assert await main.ainvoke(3, thread_config("await")) == "3: not ready"


async def test_a_functional_run_stops_on_its_budget_through_the_cancel_path(store: Any) -> None:
    finished: list[int] = []

    @task
    async def step(i: int) -> int:
        if i == 1:
            await asyncio.sleep(30)
        finished.append(i)
        return i

    @entrypoint(checkpointer=store)
    async def main(n: int) -> list[int]:
        return [await step(i) for i in range(n)]

    config = {**thread_config("budget"), "budget": {"wall_time": 0.2}}
    with pytest.raises(RunCancelled) as caught:
        await main.ainvoke(3, config)
    assert caught.value.reason is not None and caught.value.reason.kind == "budget"
    kept = [w.value for w in store.load(caught.value.run_id).pending_writes if w.key == RETURN]
    assert kept == [0] and finished == [0]


async def test_a_wall_time_budget_holds_when_the_loop_fires_its_timer_early(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # uvloop rounds timers to milliseconds, so a timer may run before the budget is spent by
    # the clock it is counted in: the budget must still end the run, not lapse.
    loop = asyncio.get_running_loop()
    on_time = loop.call_later
    monkeypatch.setattr(loop, "call_later",
                        lambda delay, callback, *args: on_time(delay / 2, callback, *args))

    @entrypoint(checkpointer=store)
    async def main(n: int) -> int:
        await asyncio.sleep(30)
        return n

    config = {**thread_config("early"), "budget": {"wall_time": 0.2}}
    with pytest.raises(RunCancelled) as caught:
        await asyncio.wait_for(main.ainvoke(1, config), 20)
    assert caught.value.reason is not None and caught.value.reason.kind == "budget"
