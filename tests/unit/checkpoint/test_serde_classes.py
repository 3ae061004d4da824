"""The serializer decides how a class is stored once per class, not once per value (a chat
history is many objects of few classes), and still stores each case as before."""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tether.checkpoint import serde
from tether.checkpoint.serde import Serializer
from tether.errors import SerializationError


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def _counting(monkeypatch: pytest.MonkeyPatch) -> Counter[type]:
    decided: Counter[type] = Counter()
    original = serde._encoder_for

    def counting(cls: type) -> Any:
        decided[cls] += 1
        return original(cls)

    monkeypatch.setattr(serde, "_ENCODERS", {})
    monkeypatch.setattr(serde, "_encoder_for", counting)
    return decided


def test_a_long_history_is_encoded_with_one_decision_per_class(
        monkeypatch: pytest.MonkeyPatch) -> None:
    decided = _counting(monkeypatch)
    history: list[Any] = [HumanMessage("go", id="h")]
    for i in range(30):
        history += [AIMessage(f"turn {i}", id=f"a{i}"),
                    ToolMessage("ok", tool_call_id=f"c{i}", id=f"t{i}")]
    store = Serializer()
    for _ in range(3):
        assert store.loads(store.dumps(history, "messages")) == history
    assert decided == Counter({HumanMessage: 1, AIMessage: 1, ToolMessage: 1})


def test_each_case_round_trips_after_its_class_was_decided(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _counting(monkeypatch)
    values = [(1, 2), {3}, frozenset({4}), Colour.RED, Point(1, 2), 2**70, 1 + 2j]
    store = Serializer()
    for _ in range(2):
        assert store.loads(store.dumps(values)) == values


def test_a_class_that_cannot_be_stored_is_refused_every_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    decided = _counting(monkeypatch)

    class Opaque:
        pass

    store = Serializer()
    for _ in range(2):
        with pytest.raises(SerializationError, match="Opaque"):
            store.dumps({"x": Opaque()}, "x")
    assert decided[Opaque] == 1


def test_an_object_held_many_times_is_encoded_once_per_dump_and_stored_alike(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's `Send`s each hold the same state: its messages are dumped once, and the bytes
    are those of distinct equal objects."""
    dumped: list[str] = []
    original = AIMessage.model_dump

    def counting(self: AIMessage, *args: Any, **kwargs: Any) -> Any:
        dumped.append(str(self.id))
        return original(self, *args, **kwargs)

    history = [AIMessage(f"turn {i}", id=f"a{i}") for i in range(5)]
    state = {"messages": history}
    copies = {"messages": [m.model_copy() for m in history]}
    store = Serializer()
    expected = store.dumps([state, copies, copies], "tasks")
    monkeypatch.setattr(AIMessage, "model_dump", counting)
    stored = store.dumps([state, state, state], "tasks")
    assert stored == expected
    assert dumped == [f"a{i}" for i in range(5)]
    assert store.loads(stored) == [state, state, state]
    store.dumps([state, state, state], "tasks")
    assert len(dumped) == 10  # each dump encodes afresh (the objects may have changed)


def test_the_channels_of_a_checkpoint_share_the_encoding_of_what_they_both_hold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dumped: list[str] = []
    original = AIMessage.model_dump

    def counting(self: AIMessage, *args: Any, **kwargs: Any) -> Any:
        dumped.append(str(self.id))
        return original(self, *args, **kwargs)

    history = [AIMessage(f"turn {i}", id=f"a{i}") for i in range(4)]
    blobs = {"messages": history, "tasks": [{"state": {"messages": history}}], "n": 3}
    store = Serializer()
    alone = {key: store.dumps(value, key) for key, value in blobs.items()}
    monkeypatch.setattr(AIMessage, "model_dump", counting)
    assert store.dumps_each(blobs) == alone
    assert dumped == [f"a{i}" for i in range(4)]


def test_dumps_each_names_the_key_that_cannot_be_stored() -> None:
    class Opaque:
        pass

    with pytest.raises(SerializationError, match="'bad'"):
        Serializer().dumps_each({"good": 1, "bad": Opaque()})
