"""Agents (DESIGN.md §7, "ReAct agent round"): each library's `create_react_agent` with a
scripted model (no sleep) that asks for 3 tools at once, `size` times, then answers.

The unit is a **round**: one model call and the 3 tool calls it asks for. The same LangChain
model and tools run on both sides, so the difference is what each library adds around them.
Both libraries' final messages are compared as (type, content, tool calls): ids are random.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from bench.workload import Case, Env, GraphWorkload

ORDER = 60
FAMILY = "agent"


def _tools() -> list[Any]:
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two numbers."""
        return a * b

    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return f"value of {key}"

    return [add, multiply, lookup]


def _script(rounds: int) -> list[Any]:
    from langchain_core.messages import AIMessage

    turns: list[Any] = [
        AIMessage(content=f"round {i}", tool_calls=[
            {"name": "add", "args": {"a": i, "b": 1}, "id": f"add-{i}"},
            {"name": "multiply", "args": {"a": i, "b": 2}, "id": f"mul-{i}"},
            {"name": "lookup", "args": {"key": f"k{i}"}, "id": f"look-{i}"},
        ])
        for i in range(rounds)
    ]
    return [*turns, "done"]


class _Messages:
    """The compiled agent, answering its final messages as comparable tuples."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph

    @staticmethod
    def _shown(result: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(m.type, m.content, tuple(c["id"] for c in getattr(m, "tool_calls", ())))
                for m in result["messages"]]

    def invoke(self, graph_input: Any, config: Any) -> list[tuple[Any, ...]]:
        return self._shown(self.graph.invoke(graph_input, config))

    async def ainvoke(self, graph_input: Any, config: Any) -> list[tuple[Any, ...]]:
        return self._shown(await self.graph.ainvoke(graph_input, config))


def build_react(env: Env) -> Case:
    """create_react_agent, `size` rounds of 3 parallel (sync) tool calls, then an
    answer; the unit is one round."""
    from tether.prebuilt.scripted import ScriptedChatModel

    prebuilt = importlib.import_module(f"{env.lib.name}.prebuilt")
    model = ScriptedChatModel(responses=_script(env.size), cycle=True, strict=False)
    agent = prebuilt.create_react_agent(model, _tools(), checkpointer=env.checkpointer)
    return Case(_Messages(agent), {"messages": [("user", "go")]}, env.size)


class _Tokens:
    """A graph streamed with `stream_mode="messages"`, answering (chunks, their text)."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph

    def invoke(self, graph_input: Any, config: Any) -> tuple[int, str]:
        texts = [m.content for m, _ in self.graph.stream(graph_input, config,
                                                         stream_mode="messages")]
        return len(texts), "".join(texts)

    async def ainvoke(self, graph_input: Any, config: Any) -> tuple[int, str]:
        texts = [m.content async for m, _ in self.graph.astream(graph_input, config,
                                                                stream_mode="messages")]
        return len(texts), "".join(texts)


def build_tokens(env: Env) -> Case:
    """A chat-model node whose scripted model (no sleep) answers `size` words, streamed with
    `stream_mode="messages"`; the unit is one chunk (a word or the space after it), so the
    table's time per unit is the inverse of chunks/s."""
    from tether.prebuilt.scripted import ScriptedChatModel

    graph_module = importlib.import_module(f"{env.lib.name}.graph")
    words = " ".join(f"w{i}" for i in range(env.size))
    model = ScriptedChatModel(responses=[words], cycle=True, strict=False)

    if env.mode == "sync":
        def answer(state: dict[str, Any]) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}
        node: Any = answer
    else:
        async def aanswer(state: dict[str, Any]) -> dict[str, Any]:
            return {"messages": [await model.ainvoke(state["messages"])]}
        node = aanswer
    builder = graph_module.StateGraph(graph_module.MessagesState)
    builder.add_node("model", node)
    builder.add_edge(env.lib.START, "model")
    graph = builder.compile(checkpointer=env.checkpointer)
    return Case(_Tokens(graph), {"messages": [("user", "go")]}, 2 * env.size - 1)


@dataclass(frozen=True)
class AgentWorkload(GraphWorkload):
    """A graph workload whose unit (a round) spans several supersteps."""

    supersteps_per_unit: int = 2

    def _config(self, case: Case, index: int) -> dict[str, Any]:
        config = super()._config(case, index)
        config["recursion_limit"] = self.supersteps_per_unit * case.steps + 10
        return config


def _rows(**fields: Any) -> list[AgentWorkload]:
    fields.setdefault("doc", inspect.getdoc(fields["build"]) or "")
    return [AgentWorkload(mode=mode, **fields) for mode in ("sync", "async")]


WORKLOADS = [
    *_rows(name="react", family=FAMILY, build=build_react, size=20, quick_size=2, unit="round"),
    *_rows(name="react_sqlite", family=FAMILY, build=build_react, size=20, quick_size=2,
           unit="round", saver="sqlite"),
    *_rows(name="tokens", family=FAMILY, build=build_tokens, size=500, quick_size=5,
           unit="chunk"),
]
