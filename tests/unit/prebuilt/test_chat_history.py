"""The check before every model call: no tool call without its `ToolMessage`."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tether.prebuilt.model_node import check_chat_history


def _asks(*ids: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": i} for i in ids])


def _answer(call_id: str) -> ToolMessage:
    return ToolMessage("ok", tool_call_id=call_id)


def test_a_history_whose_calls_are_all_answered_passes() -> None:
    check_chat_history([HumanMessage("hi"), _asks("a", "b"), _answer("b"), _answer("a"),
                        AIMessage("done")])


def test_unanswered_calls_are_named_in_history_order() -> None:
    history: list[Any] = [_asks("a", "b"), _answer("a"), _asks("c", "d", "e"), _answer("d")]
    with pytest.raises(ValueError, match="INVALID_CHAT_HISTORY") as refused:
        check_chat_history(history)
    named = str(refused.value).split("first few of those tool calls: ")[1]
    assert ["'b'" in named, "'c'" in named, "'e'" in named, "'a'" in named] == [
        True, True, True, False]
    assert named.index("'b'") < named.index("'c'") < named.index("'e'")


def test_an_answer_given_before_its_call_still_counts() -> None:
    check_chat_history([_answer("a"), _asks("a")])
