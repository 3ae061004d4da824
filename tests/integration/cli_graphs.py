"""Graphs the CLI tests load by reference (`cli_graphs:counter`...), from this directory."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, TypedDict

from tether.config import get_store
from tether.graph import END, StateGraph
from tether.types import interrupt

if os.environ.get("CLI_GRAPHS_SLOW_IMPORT"):  # a module that takes long to import
    print("importing slowly", flush=True)
    time.sleep(30)


class Count(TypedDict, total=False):
    """A counter that stops at `target`."""

    count: int
    target: int
    step_seconds: float


async def tick(state: Count) -> dict[str, Any]:
    """One step: wait a little (a cancel point), then count."""
    await asyncio.sleep(state.get("step_seconds", 0.05))
    return {"count": state.get("count", 0) + 1}


def _route(state: Count) -> str:
    return END if state.get("count", 0) >= state.get("target", 3) else "tick"


def _counter() -> StateGraph[Count]:
    builder = StateGraph(Count)
    builder.add_node("tick", tick)
    builder.set_entry_point("tick")
    builder.add_conditional_edges("tick", _route)
    return builder


counter = _counter().compile()
"""Counts to `target` (default 3), `step_seconds` (default 0.05) per step."""

counter_builder = _counter()
"""The same graph, not compiled (the CLI compiles it)."""


def stubborn_sleep(state: Count) -> dict[str, Any]:
    """A sync node that ignores cancellation for a long time."""
    time.sleep(20)
    return {"count": 1}


def _stubborn() -> StateGraph[Count]:
    builder = StateGraph(Count)
    builder.add_node("stubborn_sleep", stubborn_sleep)
    builder.set_entry_point("stubborn_sleep")
    builder.set_finish_point("stubborn_sleep")
    return builder


stubborn = _stubborn().compile()


def explode(state: Count) -> dict[str, Any]:
    """A node that fails."""
    raise ValueError("the node failed on purpose")


def _failing() -> StateGraph[Count]:
    builder = StateGraph(Count)
    builder.add_node("explode", explode)
    builder.set_entry_point("explode")
    builder.set_finish_point("explode")
    return builder


failing = _failing().compile()


class Approval(TypedDict, total=False):
    """A question for a human and the answer."""

    question: str
    answer: str


def ask(state: Approval) -> dict[str, Any]:
    """Pause for a human answer."""
    answer = interrupt({"question": state.get("question", "proceed?")})
    return {"answer": answer}


def _approval() -> StateGraph[Approval]:
    builder = StateGraph(Approval)
    builder.add_node("ask", ask)
    builder.set_entry_point("ask")
    builder.set_finish_point("ask")
    return builder


approval = _approval().compile()

not_a_graph = 42


class Visit(TypedDict, total=False):
    """Who came, and how many times they had come before."""

    user: str
    visits: int


def count_visit(state: Visit) -> dict[str, Any]:
    """Count the user's visits in the long-term store (the CLI gives it one in `--db`)."""
    store = get_store()
    seen = store.get(("visits",), state["user"])
    visits = seen.value["n"] + 1 if seen is not None else 1
    store.put(("visits",), state["user"], {"n": visits})
    return {"visits": visits}


visits = StateGraph(Visit).add_node("count_visit", count_visit).set_entry_point(
    "count_visit").compile()


def _chat() -> Any:
    """A chat model node (a scripted model: it runs offline)."""
    from tether.graph import MessagesState
    from tether.prebuilt.scripted import ScriptedChatModel

    llm = ScriptedChatModel(responses=["Hello from the model"], cycle=True)

    def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    return StateGraph(MessagesState).add_node("model", model).set_entry_point(
        "model").compile()


chat = _chat()
