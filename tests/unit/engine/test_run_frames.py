"""What a run parked in an async node holds while it waits: its chain of coroutine frames and
the run's stream writer (runs are started by the thousand; each frame and cell is memory and
work for the collector)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypedDict

import pytest

from tether.config import get_config, get_stream_writer
from tether.engine.stream import CustomWriter
from tether.graph.state import StateGraph

pytestmark = pytest.mark.anyio


class Counter(TypedDict):
    count: int


def _chain(coro: Coroutine[Any, Any, Any]) -> list[str]:
    names: list[str] = []
    current: Any = coro
    while current is not None and hasattr(current, "cr_code"):
        names.append(current.cr_code.co_qualname)
        current = current.cr_await
    return names


async def test_a_lone_async_node_is_awaited_without_the_step_and_call_frames() -> None:
    entered = asyncio.Event()

    async def park(state: Counter) -> dict[str, int]:
        entered.set()
        await asyncio.sleep(3600)
        return {"count": state["count"] + 1}

    builder = StateGraph(Counter)
    builder.add_node("park", park)
    builder.set_entry_point("park")
    run = builder.compile().start({"count": 0})
    await entered.wait()
    chains = [_chain(t.get_coro()) for t in asyncio.all_tasks()]  # type: ignore[arg-type]
    chain = next(c for c in chains if any(name.endswith("park") for name in c))
    assert "run_step" not in chain
    assert "Executor._call" not in chain
    assert "Executor.run_task" not in chain
    # The supersteps are the loop's `run` itself, and the attempt's loop awaits the node: no
    # setup, step, attempt or call frame in between.
    assert chain.index("test_a_lone_async_node_is_awaited_without_the_step_and_call_frames"
                       ".<locals>.park") - chain.index("Executor.run_attempts") == 1
    assert chain.index("Executor.run_attempts") - chain.index("Loop.run") == 1
    await run.cancel()


async def test_each_async_task_of_a_fan_out_is_awaited_by_its_attempt() -> None:
    arrived: list[str] = []
    both = asyncio.Event()

    def parked(name: str) -> Any:
        async def park(state: Counter) -> dict[str, int]:
            arrived.append(name)
            if len(arrived) == 2:
                both.set()
            await asyncio.sleep(3600)
            return {"count": 1}

        return park

    builder = StateGraph(Counter)
    builder.add_node("a", parked("a"))
    builder.add_node("b", parked("b"))
    builder.set_entry_point("a")
    builder.add_edge("__start__", "b")
    run = builder.compile().start({"count": 0})
    await both.wait()
    chains = [_chain(t.get_coro()) for t in asyncio.all_tasks()]  # type: ignore[arg-type]
    node = ("test_each_async_task_of_a_fan_out_is_awaited_by_its_attempt"
            ".<locals>.parked.<locals>.park")
    found = [c for c in chains if node in c]
    assert len(found) == 2
    for chain in found:
        # Its scope bound to its asyncio task (a failed sibling cancels it), then the node.
        assert chain.index(node) - chain.index("Executor._bound") == 1
        assert chain.index("Executor._bound") - chain.index("Executor.run_attempts") == 1
        assert "Executor.run_task" not in chain  # no limit, no writes to keep
    await run.cancel()


async def test_the_custom_writer_is_one_object_without_closure_cells() -> None:
    seen: list[Any] = []

    async def write(state: Counter) -> dict[str, int]:
        writer = get_stream_writer()
        seen.append(writer)
        writer("hello")
        return {"count": 1}

    builder = StateGraph(Counter)
    builder.add_node("write", write)
    builder.set_entry_point("write")
    chunks = [c async for c in builder.compile().astream({"count": 0}, stream_mode="custom")]
    assert chunks == ["hello"]
    assert isinstance(seen[0], CustomWriter)
    assert not hasattr(seen[0], "__closure__")


def test_a_fresh_task_and_input_plan_share_their_empty_sequences() -> None:
    # Lists made only when a task is cancelled, resumed or answered: none for the common run.
    from tether.engine.interrupts import InputPlan
    from tether.engine.spec import NodeSpec
    from tether.engine.task import PULL, Task

    first, second = (Task(NodeSpec(name, _noop, False), {}, (PULL, name), 0) for name in ("a", "b"))
    for field in ("hooks", "resume", "claimed"):
        assert getattr(first, field) == () and getattr(first, field) is getattr(second, field)
    plan, other = InputPlan([]), InputPlan([])
    assert plan.resume_writes == () and plan.resume_writes is other.resume_writes
    assert plan.null_resume == () and plan.null_resume is other.null_resume


def _bump_spec() -> Any:
    """The spec of a graph of one node, `bump`, that writes nothing."""
    builder = StateGraph(Counter)
    builder.add_node("bump", _noop)
    builder.set_entry_point("bump")
    return builder.compile().spec


def _noop(state: Any) -> None:
    return None


async def test_an_attempt_context_builds_its_config_only_when_asked() -> None:
    from tether import node_context

    seen: list[Any] = []

    async def look(state: Counter) -> dict[str, int]:
        ctx = node_context.current()
        assert ctx is not None
        seen.append((ctx.make_config, ctx.interrupt))
        seen.append(get_config()["metadata"]["langgraph_node"])
        return {"count": 1}

    builder = StateGraph(Counter)
    builder.add_node("look", look)
    builder.set_entry_point("look")
    assert await builder.compile().ainvoke({"count": 0}) == {"count": 1}
    assert seen == [(None, None), "look"]


def test_runs_of_one_graph_share_its_key_set_and_their_stream_mode_set() -> None:
    from tether.engine.state import ChannelState
    from tether.engine.stream import Emitter

    spec = _bump_spec()
    first, second = ChannelState(spec), ChannelState(spec)
    assert first.state_keys == {"count"} and first.state_keys is second.state_keys
    one, other = Emitter(_noop, ("values", "updates")), Emitter(_noop, ["values", "updates"])
    assert one.modes == {"values", "updates"} and one.modes is other.modes


def test_a_run_makes_the_send_topic_only_on_its_first_send() -> None:
    from tether.constants import TASKS
    from tether.engine.state import ChannelState
    from tether.types import Send

    spec = _bump_spec()
    state = ChannelState(spec)
    assert TASKS in spec.channels and TASKS not in state.channels
    assert state.plan(None) == []  # an absent topic reads as one with nothing sent
    state.commit({TASKS: [Send("bump", {"count": 7})]})
    assert TASKS in state.channels
    (task,) = state.plan(None)
    assert (task.name, task.input) == ("bump", {"count": 7})


async def test_a_run_whose_nodes_never_ask_makes_no_runtime_and_no_writer() -> None:
    import gc

    from tether.runtime import Runtime

    entered = asyncio.Event()

    async def park(state: Counter) -> dict[str, int]:
        entered.set()
        await asyncio.sleep(3600)
        return {"count": 1}

    builder = StateGraph(Counter)
    builder.add_node("park", park)
    builder.set_entry_point("park")
    graph = builder.compile()

    def made() -> int:
        # type(), not isinstance(): the heap may hold weak proxies whose referent is gone,
        # and isinstance() asks a proxy for its class.
        return sum(1 for o in gc.get_objects() if type(o) in (Runtime, CustomWriter))

    before = made()
    run = graph.start({"count": 0})
    await entered.wait()
    assert made() == before
    await run.cancel()


@pytest.mark.parametrize("isolation", ["inline", "thread"])
async def test_the_runtime_and_writer_first_asked_for_by_a_sync_node_serve_the_run(
        isolation: str) -> None:
    from tether.runtime import Runtime, get_runtime

    seen: list[Runtime[Any]] = []

    def first(state: Counter) -> dict[str, int]:
        seen.append(get_runtime())
        get_stream_writer()({"from": "first"})
        return {"count": 1}

    async def second(state: Counter) -> dict[str, int]:
        seen.append(get_runtime())
        get_stream_writer()({"from": "second"})
        return {"count": 2}

    builder = StateGraph(Counter)
    builder.add_node("first", first, isolation=isolation)  # type: ignore[arg-type]
    builder.add_node("second", second)
    builder.set_entry_point("first")
    builder.add_edge("first", "second")
    graph = builder.compile()
    chunks = [chunk async for chunk in graph.astream({"count": 0}, context={"who": "me"},
                                                     stream_mode="custom")]
    assert chunks == [{"from": "first"}, {"from": "second"}]
    assert seen[0] is seen[1] and seen[0].context == {"who": "me"}
    assert seen[0].run_id is not None


def test_the_pull_tasks_of_a_node_share_one_path() -> None:
    from tether.engine.state import ChannelState
    from tether.engine.task import PULL

    spec = _bump_spec()
    first, second = ChannelState(spec), ChannelState(spec)
    for state in (first, second):
        state.commit({"branch:to:bump": [None]})
    (one,), (other,) = first.plan(None), second.plan(None)
    assert one.path == (PULL, "bump") and one.path is other.path
    # The live triggers of the two runs: one channel, one shared set.
    assert first.live == {"branch:to:bump"} and first.live is second.live


def test_the_frames_a_parked_run_holds_make_no_closure_cells() -> None:
    # A variable a nested generator or lambda reads becomes a cell: one object per run in
    # flight for the collector, for each such frame.
    from tether.engine.execute import Executor
    from tether.engine.loop import Loop

    for func in (Loop.run, Executor.run_attempts, Executor._bound):
        assert func.__code__.co_cellvars == (), func.__qualname__
