"""Random stops over a scripted multi-turn agent (hypothesis): whatever model call or tool call
is stopped, and whether the thread then goes on by a resume or by the user's next message, the
model is only ever given a valid conversation, a tool call that finished never runs again, and
the thread ends with every call answered exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import StructuredTool
from pydantic import PrivateAttr

import tether
from tether.checkpoint.sqlite import SqliteSaver
from tether.errors import RunCancelled
from tether.prebuilt import create_react_agent
from tether.prebuilt.scripted import ScriptedChatModel, check_tool_results

from .test_agent_turns import WAIT, tool_call

TURNS = ("first question", "second question", "third question")


class WatchedModel(ScriptedChatModel):
    """A scripted model that says when it stalls (a stop point)."""

    _stalled: threading.Event = PrivateAttr(default_factory=threading.Event)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> Any:
        if len(self.calls) in self.stalls:
            self._stalled.set()
        return await super()._agenerate(messages, stop, run_manager, **kwargs)


def responses() -> list[Any]:
    """Model turns with unique call ids: two calls, one call, an answer; over and over."""
    out: list[Any] = []
    for i in range(40):
        if i % 3 == 0:
            out.append(AIMessage(content="", tool_calls=[
                tool_call("lookup", f"c{i}a", q=10 * i + 1),
                tool_call("lookup", f"c{i}b", q=10 * i + 2)]))
        elif i % 3 == 1:
            out.append(AIMessage(content="", tool_calls=[
                tool_call("lookup", f"c{i}", q=10 * i + 3)]))
        else:
            out.append(f"answer {i}")
    return out


class Lookup:
    """The agent's tool: the `n`-th invocation blocks (until cancelled) when `n` is a stop
    point; counts starts and finishes per call id."""

    def __init__(self, stops: set[int]) -> None:
        self.stops = stops
        self.invocations = 0
        self.started: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()
        self.blocked: set[str] = set()  # blocked at a stop, ever (never cleared)
        self.stalled = threading.Event()

    def tool(self) -> StructuredTool:
        async def run(q: int) -> str:
            n = self.invocations
            self.invocations += 1
            key = f"q{q}"
            self.started[key] += 1
            if n in self.stops:
                self.blocked.add(key)
                self.stalled.set()
                await tether.sleep(WAIT * 4)
            self.finished[key] += 1
            return f"r{q}"

        return StructuredTool.from_function(coroutine=run, name="lookup", description="Look up.")


async def quiet(tools: Lookup, graph: Any, thread: str) -> None:
    """Wait until every tool call started in the stopped step either blocks or has finished
    and been kept (so that the stop lands on a known set of finished calls)."""
    for _ in range(int(WAIT / 0.01)):
        running = {k for k in tools.started if tools.finished[k] < tools.started[k]}
        if running <= tools.blocked:
            latest = await graph.checkpointer.aget_checkpoint(thread, "", None)
            kept = {c for w in (latest.pending_writes if latest is not None else ())
                    for c in _contents(w.value)}
            fresh = [k for k in tools.finished if k not in tools.blocked]
            if all(f"r{k[1:]}" in kept or _answered(latest, k) for k in fresh):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the stopped step did not settle")


def _contents(value: Any) -> set[str]:
    if isinstance(value, ToolMessage):
        return {str(value.content)}
    if isinstance(value, list):
        return {c for item in value for c in _contents(item)}
    return set()


def _answered(latest: Any, key: str) -> bool:
    messages = (latest.values.get("messages") or []) if latest is not None else []
    return any(isinstance(m, ToolMessage) and m.content == f"r{key[1:]}" for m in messages)


async def scenario(db: Path, model_stops: set[int], tool_stops: set[int],
                   resumes: list[bool]) -> None:
    model = WatchedModel(responses=responses(), stalls=dict.fromkeys(model_stops, 0))
    tools = Lookup(tool_stops)
    store = SqliteSaver(str(db))
    graph = create_react_agent(model, [tools.tool()], checkpointer=store)
    config = {"configurable": {"thread_id": "h"}, "multitask_strategy": "enqueue"}
    turns, choices = list(TURNS), list(resumes)
    run = graph.start({"messages": [("user", turns.pop(0))]}, config)
    try:
        for _ in range(20):
            waiter = asyncio.ensure_future(run.result())
            while not waiter.done() and not model._stalled.is_set() \
                    and not tools.stalled.is_set():
                await asyncio.sleep(0.005)
            if waiter.done():
                await waiter  # a run that was not stopped succeeds (the model never refused)
                if not turns:
                    break
                run = graph.start({"messages": [("user", turns.pop(0))]}, config)
                continue
            if tools.stalled.is_set():
                await quiet(tools, graph, "h")
            model._stalled.clear()
            tools.stalled.clear()
            await graph.acancel(run.run_id)
            with contextlib.suppress(RunCancelled):
                await waiter
            if (choices.pop(0) if choices else True) or not turns:
                run = graph.resume(run.run_id)
            else:
                run = graph.start({"messages": [("user", turns.pop(0))]}, config)
        state = await graph.aget_state(config)
    finally:
        store.close()
    messages = state.values["messages"]
    check_tool_results(messages)
    for call in model.calls:
        check_tool_results(call)
    assert all(n == 1 for n in tools.finished.values()), tools.finished  # never run again
    asked = {c["id"]: c["args"]["q"] for m in messages for c in getattr(m, "tool_calls", ())}
    for message in messages:
        if isinstance(message, ToolMessage):
            finished = tools.finished[f"q{asked[message.tool_call_id]}"]
            if message.content.startswith("Cancelled: "):
                assert finished == 0  # a call that finished is answered with its result
            else:
                assert message.content == f"r{asked[message.tool_call_id]}" and finished == 1


@settings(max_examples=30, deadline=None)
@given(model_stops=st.sets(st.integers(0, 8), max_size=3),
       tool_stops=st.sets(st.integers(0, 10), max_size=3),
       resumes=st.lists(st.booleans(), max_size=8))
def test_random_stops_keep_the_conversation_valid(model_stops: set[int], tool_stops: set[int],
                                                  resumes: list[bool]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(asyncio.wait_for(
            scenario(Path(tmp) / "h.db", model_stops, tool_stops, resumes), WAIT * 2))
