"""LangChain's batch calls on a compiled graph (`batch`, `abatch`, `batch_as_completed`,
`abatch_as_completed`): the same outputs, errors and order as LangGraph's; and, tether's own,
no run of a batch is left going when the call returns, raises or is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import operator
import threading
from typing import Annotated, Any, TypedDict

import anyio
import pytest

from ._support import Lib, Raised, load

pytestmark = pytest.mark.anyio


class State(TypedDict):
    x: int
    seen: Annotated[list[int], operator.add]


def _graph(lib: Lib, *, checkpointer: Any = None, node: Any = None) -> Any:
    def double(state: State) -> dict[str, Any]:
        if state["x"] < 0:
            raise ValueError(f"negative: {state['x']}")
        return {"x": state["x"] * 2, "seen": [state["x"]]}

    builder = lib.StateGraph(State)
    builder.add_node("double", node or double)
    builder.add_edge(lib.START, "double")
    builder.add_edge("double", lib.END)
    return builder.compile(checkpointer=checkpointer)


def _inputs(*xs: int) -> list[dict[str, Any]]:
    return [{"x": x, "seen": []} for x in xs]


def _shown(outcomes: list[Any]) -> list[Any]:
    return [Raised(o) if isinstance(o, Exception) else o for o in outcomes]


@pytest.mark.parametrize("sync", [True, False], ids=["batch", "abatch"])
async def test_a_batch_answers_each_input_in_order_as_langgraph(
        lib: Lib, lg: Lib, sync: bool) -> None:
    async def batch(graph: Any, *args: Any, **kwargs: Any) -> Any:
        return graph.batch(*args, **kwargs) if sync else await graph.abatch(*args, **kwargs)

    got, expected = (await batch(_graph(lib), _inputs(1, 2, 3)),
                     await batch(_graph(lg), _inputs(1, 2, 3)))
    assert got == expected == [{"x": 2, "seen": [1]}, {"x": 4, "seen": [2]},
                               {"x": 6, "seen": [3]}]
    assert await batch(_graph(lib), []) == await batch(_graph(lg), []) == []
    assert await batch(_graph(lib), _inputs(5)) == await batch(_graph(lg), _inputs(5))
    mixed = _inputs(1, -2, 3, -4)
    outcomes = await batch(_graph(lib), mixed, return_exceptions=True)
    assert _shown(outcomes) == _shown(await batch(_graph(lg), mixed, return_exceptions=True))
    assert _shown(outcomes)[1] == "ValueError" and "negative: -2" in str(outcomes[1])
    for graph in (_graph(lib), _graph(lg)):
        with pytest.raises(ValueError, match="negative: -2"):  # the first, in input order
            await batch(graph, mixed)


@pytest.mark.parametrize("sync", [True, False], ids=["batch", "abatch"])
async def test_one_config_per_input_runs_each_on_its_thread(
        lib: Lib, lg: Lib, sync: bool) -> None:
    async def histories(of: Lib) -> list[Any]:
        graph = _graph(of, checkpointer=of.InMemorySaver())
        configs = [{"configurable": {"thread_id": f"t{i}"}} for i in range(3)]
        for _ in range(2):
            if sync:
                graph.batch(_inputs(1, 2, 3), configs)
            else:
                await graph.abatch(_inputs(1, 2, 3), configs)
        return [graph.get_state(c).values for c in configs]

    assert await histories(lib) == await histories(lg) == [
        {"x": 2, "seen": [1, 1]}, {"x": 4, "seen": [2, 2]}, {"x": 6, "seen": [3, 3]}]
    one = {"configurable": {"thread_id": "t"}}
    graph = _graph(lib)
    with pytest.raises(ValueError, match="2 configs"):  # for 3 inputs: refused by both
        if sync:
            graph.batch(_inputs(1, 2, 3), [one, one])
        else:
            await graph.abatch(_inputs(1, 2, 3), [one, one])


async def test_the_as_completed_forms_answer_every_input_once_as_langgraph(
        lib: Lib, lg: Lib) -> None:
    def collected(of: Lib, **kwargs: Any) -> list[Any]:
        return sorted(_graph(of).batch_as_completed(_inputs(1, -2, 3), **kwargs),
                      key=lambda pair: pair[0])

    async def acollected(of: Lib, **kwargs: Any) -> list[Any]:
        found = [pair async for pair in _graph(of).abatch_as_completed(_inputs(1, -2, 3),
                                                                       **kwargs)]
        return sorted(found, key=lambda pair: pair[0])

    for gather in (collected, acollected):
        result = gather(lib, return_exceptions=True)
        got = await result if asyncio.iscoroutine(result) else result
        result = gather(lg, return_exceptions=True)
        expected = await result if asyncio.iscoroutine(result) else result
        assert [(i, _shown([o])[0]) for i, o in got] == [
            (i, _shown([o])[0]) for i, o in expected]
        assert [i for i, _ in got] == [0, 1, 2]
    with pytest.raises(ValueError, match="negative"):
        collected(lib)
    with pytest.raises(ValueError, match="negative"):
        await acollected(lib)


@pytest.mark.parametrize("sync", [True, False], ids=["batch", "abatch"])
async def test_max_concurrency_bounds_the_runs_going_at_once(sync: bool) -> None:
    tether = load("tether")
    lock, going, most = threading.Lock(), [0], [0]

    async def slow(state: State) -> dict[str, Any]:
        with lock:
            going[0] += 1
            most[0] = max(most[0], going[0])
        await asyncio.sleep(0.02)
        with lock:
            going[0] -= 1
        return {"x": state["x"]}

    graph = _graph(tether, node=slow)
    inputs, config = _inputs(*range(7)), {"max_concurrency": 2}
    outputs = graph.batch(inputs, config) if sync else await graph.abatch(inputs, config)
    assert [o["x"] for o in outputs] == list(range(7))
    assert most[0] == 2
    with pytest.raises(ValueError, match="max_concurrency must be a positive integer"):
        graph.batch(inputs, {"max_concurrency": 0})


async def test_a_cancelled_async_batch_cancels_each_of_its_runs() -> None:
    tether = load("tether")
    started = anyio.Event()

    async def waits(state: State) -> dict[str, Any]:
        started.set()
        await anyio.sleep(60)
        return {"x": state["x"]}

    graph = _graph(tether, node=waits)
    with anyio.move_on_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: graph.abatch(_inputs(1, 2, 3)))
            await started.wait()
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()
    runs = graph.list_runs()
    assert len(runs) == 3
    assert {info.status.value for info in runs} == {"cancelled"}


async def test_a_failing_run_returns_only_once_the_others_have_ended() -> None:
    tether = load("tether")
    ended: list[int] = []

    async def node(state: State) -> dict[str, Any]:
        if state["x"] < 0:
            raise ValueError("fails first")
        await anyio.sleep(0.05)
        ended.append(state["x"])
        return {"x": state["x"]}

    graph = _graph(tether, node=node)
    with pytest.raises(ValueError, match="fails first"):
        await graph.abatch(_inputs(1, -1, 2))
    assert sorted(ended) == [1, 2]
    assert sorted(info.status.value for info in graph.list_runs()) == [
        "error", "success", "success"]


@pytest.mark.parametrize("after", [0, 1, 2, 3], ids=lambda n: f"after-{n}-ended")
async def test_a_batch_cancelled_at_any_point_leaves_no_run_going(after: int) -> None:
    # Runs of 0, 10, 20 and 30 ms; the caller is cancelled once `after` of them have ended
    # (0: before any has), twice over. Every run is then at rest: ended, or cancelled.
    tether = load("tether")
    ended: list[int] = []
    done = anyio.Event()

    async def node(state: State) -> dict[str, Any]:
        await anyio.sleep(state["x"] / 100)
        ended.append(state["x"])
        if len(ended) >= after:
            done.set()
        return {"x": state["x"]}

    graph = _graph(tether, node=node)
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: graph.abatch(_inputs(0, 1, 2, 3)))
        if after:
            await done.wait()
        group.cancel_scope.cancel()
        group.cancel_scope.cancel()
    runs = graph.list_runs()
    assert all(info.status.at_rest for info in runs), [i.status for i in runs]
    statuses = sorted(info.status.value for info in runs)
    assert statuses.count("success") == len(ended) >= after
    assert set(statuses) <= {"success", "cancelled"}


async def test_leaving_an_as_completed_loop_early_cancels_the_runs_still_going() -> None:
    tether = load("tether")

    async def node(state: State) -> dict[str, Any]:
        await anyio.sleep(state["x"])
        return {"x": state["x"]}

    graph = _graph(tether, node=node)
    async with contextlib.aclosing(graph.abatch_as_completed(_inputs(0, 60, 60))) as answers:
        async for at, output in answers:
            assert (at, output) == (0, {"x": 0, "seen": []})
            break
    assert sorted(info.status.value for info in graph.list_runs()) == [
        "cancelled", "cancelled", "success"]
