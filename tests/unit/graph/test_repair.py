"""Closing a conversation a stop left open: which calls are open, and the messages that close
them, with LangChain's classes and with tether's light ones."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tether import messages as light
from tether.graph.repair import PartialAnswer, closing_messages, open_calls


def _calls(*ids: str) -> list[dict[str, Any]]:
    return [{"name": f"tool_{i}", "args": {}, "id": i} for i in ids]


def test_open_calls_are_those_of_the_last_turn_without_a_result() -> None:
    turn = AIMessage("", tool_calls=_calls("a", "b", "c"))
    history = [HumanMessage("hi"), turn, ToolMessage("done", tool_call_id="b")]
    assert [c["id"] for c in open_calls(history)] == ["a", "c"]
    assert open_calls([*history, ToolMessage("x", tool_call_id="a"),
                       ToolMessage("y", tool_call_id="c")]) == []


@pytest.mark.parametrize("history", [
    [HumanMessage("hi")],
    [HumanMessage("hi"), AIMessage("hello")],
    [AIMessage("", tool_calls=_calls("old")), HumanMessage("later")],
], ids=["no model turn", "a plain answer", "an older turn followed by the user"])
def test_nothing_is_open_without_a_pending_tool_turn(history: list[Any]) -> None:
    assert open_calls(history) == []


def test_each_open_call_gets_an_error_answer_then_the_partial_text() -> None:
    history = [HumanMessage("hi"), AIMessage("", tool_calls=_calls("a", "b")),
               ToolMessage("kept", tool_call_id="a")]
    closing = closing_messages(history, "user pressed stop",
                               PartialAnswer("The weather is", id="m7", name="agent"))
    tool, ai = closing
    assert isinstance(tool, ToolMessage)
    assert (tool.tool_call_id, tool.name, tool.status, tool.content) == (
        "b", "tool_b", "error", "Cancelled: user pressed stop")
    assert isinstance(ai, AIMessage)
    assert (ai.content, ai.id, ai.name, ai.tool_calls) == ("The weather is", "m7", "agent", [])
    assert ai.response_metadata == {"finish_reason": "cancelled"}


def test_an_empty_partial_answer_adds_nothing() -> None:
    assert closing_messages([HumanMessage("hi")], "stop", PartialAnswer("")) == []


def test_light_messages_are_closed_with_light_messages() -> None:
    history = [light.HumanMessage("hi"), light.AIMessage("", tool_calls=_calls("a"))]
    (tool, ai) = closing_messages(history, "timeout", PartialAnswer("par"))
    assert isinstance(tool, light.ToolMessage)
    assert (tool.tool_call_id, tool.status, tool.content) == ("a", "error", "Cancelled: timeout")
    assert isinstance(ai, light.AIMessage)
    assert ai.response_metadata["finish_reason"] == "cancelled"
