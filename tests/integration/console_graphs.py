"""Graphs the console's browser tests serve, as module attributes named as the server serves
them (so a `tether worker integration.console_graphs:counter ...` runs them under the same ids).

- `counter`: `tick` again and again until `count` reaches `limit`.
- `approval`: asks a question (`interrupt`) and records the answer.
- `failing`: one node that raises.
- `fanout`: two nodes in parallel, one quick and one slow (`pause` seconds), then a join.
- `chat`: a scripted chat model with tools: a question about the weather calls two tools (one
  answer arrives, the other was cancelled), "slowly" makes the model think for a minute.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, ToolMessage

import tether
from tether.graph import END, START, MessagesState, StateGraph

from .server_graphs import approval as _approval
from .server_graphs import counter as _counter
from .server_graphs import failing as _failing


class Fan(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    pause: float


async def quick(state: Fan) -> dict[str, list[str]]:
    await tether.sleep(0.03)
    return {"log": ["quick"]}


async def slow(state: Fan) -> dict[str, list[str]]:
    await tether.sleep(state.get("pause", 0.15))
    return {"log": ["slow"]}


def merge(state: Fan) -> dict[str, list[str]]:
    return {"log": ["merged"]}


def _fanout() -> Any:
    builder = StateGraph(Fan)
    builder.add_node("quick", quick)
    builder.add_node("slow", slow)
    builder.add_node("merge", merge)
    builder.add_edge(START, "quick")
    builder.add_edge(START, "slow")
    builder.add_edge(["quick", "slow"], "merge")
    builder.add_edge("merge", END)
    return builder.compile()


WEATHER_CALLS = [
    {"name": "weather", "args": {"city": "Paris"}, "id": "call_weather", "type": "tool_call"},
    {"name": "search", "args": {"q": "Paris forecast"}, "id": "call_search", "type": "tool_call"},
]


async def model(state: MessagesState) -> dict[str, Any]:
    last = state["messages"][-1]
    if last.type == "human" and "slowly" in str(last.content):
        await tether.sleep(60)
        return {"messages": [AIMessage("Done thinking.")]}
    if last.type == "human":
        return {"messages": [AIMessage("Let me look that up.", tool_calls=WEATHER_CALLS)]}
    return {"messages": [AIMessage("It is 18 °C and sunny in Paris.")]}


def tools(state: MessagesState) -> dict[str, Any]:
    return {"messages": [
        ToolMessage("18 °C, sunny", tool_call_id="call_weather", name="weather"),
        ToolMessage("Cancelled: the search was stopped by the user", tool_call_id="call_search",
                    name="search", status="error"),
    ]}


def _route(state: MessagesState) -> str:
    last = state["messages"][-1]
    return "tools" if getattr(last, "tool_calls", None) else END


def _chat() -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("model", model)
    builder.add_node("tools", tools)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", _route, {"tools": "tools", END: END})
    builder.add_edge("tools", "model")
    return builder.compile()


counter = _counter()
approval = _approval()
failing = _failing()
fanout = _fanout()
chat = _chat()

NAMES = ("counter", "approval", "failing", "fanout", "chat")


def graphs() -> dict[str, Any]:
    """Every graph by the id the console serves it as (fresh, without a checkpointer)."""
    return {"counter": _counter(), "approval": _approval(), "failing": _failing(),
            "fanout": _fanout(), "chat": _chat()}
