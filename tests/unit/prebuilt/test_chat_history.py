"""The check before every model call: no tool call without its `ToolMessage`."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

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


def test_a_long_answered_history_passes_and_one_unanswered_call_in_it_is_found() -> None:
    history: list[Any] = [HumanMessage("hi")]
    for i in range(100):
        history += [_asks(f"a{i}", f"b{i}"), _answer(f"b{i}"), _answer(f"a{i}")]
    check_chat_history(history)
    history[-1] = _answer("other")
    with pytest.raises(ValueError, match="'a99'"):
        check_chat_history(history)


def test_subclasses_of_the_message_classes_are_checked_as_instances() -> None:
    """Chunks and user subclasses take the per-message path: a chunk's calls count, and an
    answer of a `ToolMessage` subclass answers."""

    class Reply(ToolMessage):
        pass

    chunk = AIMessageChunk(content="", tool_calls=[{"name": "t", "args": {}, "id": "x"}])
    with pytest.raises(ValueError, match="'x'"):
        check_chat_history([HumanMessage("hi"), chunk])
    check_chat_history([chunk, Reply("ok", tool_call_id="x")])
    check_chat_history([_asks("y"), Reply("ok", tool_call_id="y")])
