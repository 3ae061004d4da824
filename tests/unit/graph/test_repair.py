"""Closing a conversation a stop left open: which calls are open, and the messages that close
them, with LangChain's classes and with tether's light ones."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tether import messages as light
from tether.graph.message import add_messages
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


def test_kept_answers_are_found_in_task_writes_and_call_results_once_each_in_call_order(
        ) -> None:
    from tether.checkpoint.base import WriteRecord
    from tether.constants import RETURN
    from tether.graph.repair import kept_answers
    from tether.types import Command

    b = ToolMessage("b!", tool_call_id="b")
    writes = [
        WriteRecord("t1", "tools", 0, "messages", [b]),
        WriteRecord("c1", "tools:call", 0, RETURN, b),  # the same answer, kept twice
        WriteRecord("c2", "tools:call", 0, RETURN,
                    Command(update={"messages": [ToolMessage("a!", tool_call_id="a")]})),
        WriteRecord("c3", "tools:call", 0, RETURN, ToolMessage("z", tool_call_id="zz")),
        WriteRecord("t2", "other", 0, "notes", ToolMessage("n", tool_call_id="c")),
    ]
    kept = kept_answers(writes, ["a", "b", "c"], "messages")
    assert [(m.tool_call_id, m.content) for m in kept] == [("a", "a!"), ("b", "b!")]


class _Chat(TypedDict):
    log: Annotated[list[str], operator.add]
    history: Annotated[list[Any], add_messages]


class _Plain(TypedDict):
    log: Annotated[list[str], operator.add]


def test_the_conversation_key_is_the_add_messages_channel() -> None:
    from tether.graph import StateGraph
    from tether.graph.repair import messages_key

    def key(schema: Any) -> str | None:
        return messages_key(StateGraph(schema).schemas.values())

    assert key(_Chat) == "history"
    assert key(_Plain) is None


def test_why_a_run_stopped_is_its_reason_or_its_error() -> None:
    from tether.graph.repair import stop_message
    from tether.types import CancelReason, RunInfo, RunStatus

    cancelled = RunInfo("r", "t", RunStatus.CANCELLED, CancelReason("user", "stop pressed"))
    failed = RunInfo("r", "t", RunStatus.ERROR, error="ValueError: boom")
    assert stop_message(cancelled) == "stop pressed"
    assert stop_message(failed) == "ValueError: boom"
    assert stop_message(RunInfo("r", "t", RunStatus.TIMEOUT)) == "the run ended timeout"
