"""`add_messages` on a long history: only a write's new items are converted, nothing given is
changed, and chunks and light messages still become finished messages."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.messages import utils as message_utils

from tether import messages as light
from tether.graph.message import add_messages


def _history(turns: int) -> list[Any]:
    history: list[Any] = [HumanMessage("go", id="h")]
    for i in range(turns):
        history.append(AIMessage(f"turn {i}", id=f"ai-{i}",
                                 tool_calls=[{"name": "t", "args": {}, "id": f"c{i}"}]))
        history.append(ToolMessage("ok", tool_call_id=f"c{i}", id=f"tool-{i}"))
    return history


def _counting_conversions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    converted: list[Any] = []
    original = message_utils._convert_to_message

    def counting(message: Any, *args: Any, **kwargs: Any) -> Any:
        converted.append(message)
        return original(message, *args, **kwargs)

    monkeypatch.setattr(message_utils, "_convert_to_message", counting)
    return converted


def test_add_messages_converts_only_the_new_items_not_the_history(
        monkeypatch: pytest.MonkeyPatch) -> None:
    history = _history(40)
    converted = _counting_conversions(monkeypatch)
    merged = add_messages(history, [("ai", "done")])
    assert converted == [("ai", "done")]
    assert merged[:-1] == history and all(a is b for a, b in zip(merged, history, strict=False))
    assert (merged[-1].type, merged[-1].content) == ("ai", "done")


def test_add_messages_of_finished_messages_converts_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    history = _history(10)
    converted = _counting_conversions(monkeypatch)
    answer = AIMessage("done", id="last")
    assert add_messages(history, [answer])[-1] is answer
    assert converted == []


def test_add_messages_returns_a_new_list_and_leaves_its_arguments_alone() -> None:
    history = _history(3)
    before = list(history)
    right = [AIMessage("done", id="last")]
    merged = add_messages(history, right)
    assert merged is not history and merged is not right
    assert history == before and len(right) == 1
    replaced = add_messages(history, [AIMessage("again", id="ai-1")])
    assert replaced is not history and history == before
    assert replaced[3].content == "again"


def test_add_messages_still_finishes_chunks_in_the_history_and_in_a_write() -> None:
    chunk = AIMessageChunk(content="partial", id="chunk")
    merged = add_messages([HumanMessage("hi", id="h"), chunk],
                          [AIMessageChunk(content="more", id="more")])
    assert [type(m) for m in merged] == [HumanMessage, AIMessage, AIMessage]
    assert [m.content for m in merged] == ["hi", "partial", "more"]


def test_add_messages_keeps_light_messages_as_they_are_beside_langchain_ones() -> None:
    mine = light.HumanMessage(content="light", id="l")
    merged = add_messages([mine], [HumanMessage("lc", id="lc"), ("ai", "tuple")])
    assert merged[0] is mine
    assert [m.content for m in merged] == ["light", "lc", "tuple"]


def test_a_message_of_the_history_without_an_id_gets_one_and_the_others_keep_theirs() -> None:
    """The history's ids are checked all at once; one missing in the middle is still given."""
    history = _history(5)
    history[4].id = None
    merged = add_messages(history, [AIMessage("done", id="last")])
    assert isinstance(merged[4].id, str) and merged[4].id
    assert [m.id for m in merged[:4]] == ["h", "ai-0", "tool-0", "ai-1"]
    assert len({m.id for m in merged}) == len(merged)


def test_a_write_replaces_by_id_anywhere_in_a_long_history_and_duplicates_take_the_last() -> None:
    history = _history(50)
    merged = add_messages(history, [ToolMessage("again", tool_call_id="c7", id="tool-7"),
                                    AIMessage("new", id="fresh")])
    assert merged[16].content == "again" and merged[-1].id == "fresh"
    assert len(merged) == len(history) + 1
    twice = [HumanMessage("first", id="same"), HumanMessage("second", id="same")]
    assert [m.content for m in add_messages(twice, [HumanMessage("third", id="same")])] == [
        "first", "third"]


def test_an_object_without_an_id_attribute_in_the_history_is_converted_and_given_one() -> None:
    """A history item that is not a message object (a tuple left by a custom reducer) goes the
    slow way: converted, then given an id."""
    merged = add_messages([("user", "hi")], [AIMessage("there", id="a")])
    assert [m.type for m in merged] == ["human", "ai"] and merged[0].id
