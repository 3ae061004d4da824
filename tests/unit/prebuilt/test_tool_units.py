"""Which tool calls of a `ToolNode` in a graph run are units of the run: several calls, or a
call with a timeout; a lone call (each call `create_react_agent` sends) runs in its task."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

import tether.prebuilt.tool_node as tool_node_module
from tether.graph import START, MessagesState, StateGraph
from tether.prebuilt import ToolNode, create_react_agent
from tether.prebuilt.scripted import ScriptedChatModel


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _call(call_id: str) -> dict[str, Any]:
    return {"name": "add", "args": {"a": 1, "b": 2}, "id": call_id, "type": "tool_call"}


def _counting_launches(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    launched: list[Any] = []
    original = tool_node_module.launch

    def counting(*args: Any, **kwargs: Any) -> Any:
        launched.append(args[1][0]["id"])
        return original(*args, **kwargs)

    monkeypatch.setattr(tool_node_module, "launch", counting)
    return launched


def _run_tools(node: ToolNode, calls: list[dict[str, Any]]) -> list[Any]:
    graph = StateGraph(MessagesState).add_node("tools", node).add_edge(START, "tools").compile()
    result = graph.invoke({"messages": [AIMessage("", tool_calls=calls)]})
    return [m.content for m in result["messages"][1:]]


@pytest.mark.parametrize(("calls", "timeout", "units"), [
    (["a"], None, []),
    (["a", "b", "c"], None, ["a", "b", "c"]),
    (["a"], 30.0, ["a"]),
], ids=["lone-call", "three-calls", "lone-call-with-timeout"])
def test_only_calls_that_need_it_are_launched_as_units(
        monkeypatch: pytest.MonkeyPatch, calls: list[str], timeout: float | None,
        units: list[str]) -> None:
    launched = _counting_launches(monkeypatch)
    answers = _run_tools(ToolNode([add], timeout=timeout), [_call(c) for c in calls])
    assert answers == ["3"] * len(calls)
    assert launched == units


def test_the_agents_calls_each_sent_to_a_task_are_not_units(
        monkeypatch: pytest.MonkeyPatch) -> None:
    launched = _counting_launches(monkeypatch)
    model = ScriptedChatModel(responses=[
        AIMessage("", tool_calls=[_call("a"), _call("b"), _call("c")]), "done"])
    result = create_react_agent(model, [add]).invoke({"messages": [("user", "go")]})
    assert [m.content for m in result["messages"] if m.type == "tool"] == ["3", "3", "3"]
    assert launched == []
