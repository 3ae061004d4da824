"""`tether.testing.cancel_sweep`: it passes on correct graphs, and it catches broken stops."""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, Any, TypedDict

import pytest

import tether
from tether.checkpoint.memory import InMemorySaver
from tether.engine import loop, outcome
from tether.graph import END, START, MessagesState, StateGraph
from tether.testing import CancelPoint, acancel_sweep, cancel_sweep
from tether.types import Send

pytestmark = pytest.mark.anyio


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def pipeline(hook_registrations: int = 1) -> Any:
    """first -> (middle, side) -> last; `middle` awaits twice and registers a cleanup hook."""
    ran: list[str] = []

    async def first(state: Log) -> dict[str, list[str]]:
        await asyncio.sleep(0)
        return {"log": ["first"]}

    async def middle(state: Log) -> dict[str, list[str]]:
        for _ in range(hook_registrations):
            tether.on_cancel(lambda: ran.append("hook"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return {"log": ["middle"]}

    async def side(state: Log) -> dict[str, list[str]]:
        return {"log": ["side"]}

    def last(state: Log) -> dict[str, list[str]]:
        return {"log": ["last"]}

    b = StateGraph(Log).add_node("first", first).add_node("middle", middle)
    b.add_node("side", side).add_node("last", last).add_edge(START, "first")
    b.add_edge("first", "middle").add_edge("first", "side").add_edge(["middle", "side"], "last")
    return b.add_edge("last", END).compile(checkpointer=InMemorySaver())


def test_a_correct_graph_passes_at_every_cancel_point() -> None:
    result = cancel_sweep(pipeline(), {"log": []}, show=False)
    assert result.ok
    # in the order reached: `side` starts once `middle` first waits
    assert [str(p) for p in result.points] == [
        "first @ step 1, start", "first @ step 1, await #1", "middle @ step 2, start",
        "middle @ step 2, await #1", "side @ step 2, start", "middle @ step 2, await #2",
        "last @ step 3, start"]
    assert [r.point for r in result.tried] == result.points


async def test_the_async_sweep_passes_on_a_fan_out_of_sends_and_sync_nodes() -> None:
    async def fan(state: Log) -> dict[str, list[str]]:
        return {"log": ["fan"]}

    async def work(item: str) -> dict[str, list[str]]:
        await asyncio.sleep(0)
        return {"log": [item]}

    def count(state: Log) -> dict[str, list[str]]:
        tether.check_cancelled()
        return {"log": [str(len(state["log"]))]}

    b = StateGraph(Log).add_node("fan", fan).add_node("work", work).add_node("count", count)
    b.add_edge(START, "fan")
    b.add_conditional_edges("fan", lambda s: [Send("work", x) for x in ("a", "b")])
    b.add_edge("work", "count").add_edge("count", END)
    graph = b.compile(checkpointer=InMemorySaver())
    result = await acancel_sweep(graph, {"log": []}, show=False)
    assert result.ok
    assert CancelPoint(2, "work", 1, 1) in result.points  # the second Send, at its await


def tool_agent() -> Any:
    """A deterministic agent: it asks for two tool calls, then answers with their results."""
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool

    from tether.prebuilt import ToolNode

    @tool
    async def lookup(city: str) -> str:
        """The weather in a city."""
        await asyncio.sleep(0)
        return f"sunny in {city}"

    async def model(state: MessagesState) -> dict[str, Any]:
        await asyncio.sleep(0)
        if state["messages"][-1].type == "tool":
            return {"messages": [AIMessage("done", id="answer")]}
        calls = [{"name": "lookup", "args": {"city": c}, "id": f"call-{c}"}
                 for c in ("Oslo", "Lima")]
        return {"messages": [AIMessage("", tool_calls=calls, id="ask")]}

    b = StateGraph(MessagesState).add_node("model", model).add_node("tools", ToolNode([lookup]))
    b.add_edge(START, "model").add_edge("tools", "model")
    b.add_conditional_edges("model", lambda s: "tools" if s["messages"][-1].tool_calls else END)
    return b.compile(checkpointer=InMemorySaver())


def test_an_agent_with_tool_calls_passes_and_leaves_no_dangling_call() -> None:
    pytest.importorskip("langchain_core")
    result = cancel_sweep(tool_agent(), {"messages": [("user", "weather?")]}, show=False)
    assert result.ok and len(result.tried) >= 4


def test_random_points_are_a_subset_of_the_reference_points() -> None:
    result = cancel_sweep(pipeline(), {"log": []}, points="random", max_examples=3, show=False)
    assert 1 <= len(result.tried) <= 3
    assert all(r.point in result.points for r in result.tried)


def test_a_hook_registered_twice_is_caught_at_the_point_that_shows_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AssertionError, match=r"cancelling at middle @ step 2, start .*"
                                             r"ran 2 times"):
        cancel_sweep(pipeline(hook_registrations=2), {"log": []})
    # the table was printed too: the points tried, the first counterexample last
    table = capsys.readouterr().out.splitlines()
    assert table[-1].startswith("middle @ step 2, start") and "FAILED" in table[-1]


def test_an_engine_that_drops_a_finished_write_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = outcome.task_writes

    def drop_done(task: Any) -> Any:
        return [] if task.outcome == "done" else kept(task)

    # Neither at the task's end (a step of several tasks keeps each as it finishes) nor in
    # the run's final transaction.
    monkeypatch.setattr(loop, "task_writes", drop_done)
    monkeypatch.setattr(outcome, "task_writes", drop_done)
    result = cancel_sweep(pipeline(), {"log": []}, raise_on_failure=False, show=False)
    (failed,) = result.failures
    assert failed.point == CancelPoint(2, "middle", 0, 2)  # once `side` has finished
    assert failed.failure == "side finished before the cancel but its writes were not kept"


def test_a_graph_without_a_checkpointer_is_refused() -> None:
    graph = StateGraph(Log).add_node("n", lambda s: {"log": ["n"]}).add_edge(START, "n")
    with pytest.raises(ValueError, match="checkpointer"):
        cancel_sweep(graph.compile(), {"log": []})


def test_a_nondeterministic_graph_is_reported() -> None:
    async def clock(state: Log) -> dict[str, list[str]]:
        if time.monotonic_ns() % 2:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        return {"log": ["tick"]}

    graph = StateGraph(Log).add_node("clock", clock).add_edge(START, "clock").compile(
        checkpointer=InMemorySaver())
    result = cancel_sweep(graph, {"log": []}, raise_on_failure=False, show=False)
    for tried in result.failures:
        assert "never reached" in (tried.failure or "") or "reference" in (tried.failure or "")


def react_agent() -> Any:
    """`create_react_agent` with a chat model whose answer depends only on the conversation
    (a scripted model keeps its place across runs: a sweep needs the same answer every run)."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool

    from tether.prebuilt import create_react_agent

    class Deterministic(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "deterministic"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _generate(self, messages: list[BaseMessage], stop: Any = None,
                      run_manager: Any = None, **kwargs: Any) -> ChatResult:
            if messages[-1].type == "tool":
                answer = AIMessage("it is sunny in both")
            else:
                answer = AIMessage("", tool_calls=[
                    {"name": "weather", "args": {"city": c}, "id": f"call-{c}"}
                    for c in ("Oslo", "Lima")])
            return ChatResult(generations=[ChatGeneration(message=answer)])

    @tool
    async def weather(city: str) -> str:
        """The weather in a city."""
        tether.on_cancel(lambda: None)
        await asyncio.sleep(0)
        return f"sunny in {city}"

    return create_react_agent(Deterministic(), [weather], checkpointer=InMemorySaver())


def test_a_react_agent_keeps_every_invariant_at_every_point() -> None:
    pytest.importorskip("langchain_core")
    result = cancel_sweep(react_agent(), {"messages": [("user", "weather?")]}, show=False)
    assert {p.node for p in result.points} == {"agent", "tools"}
