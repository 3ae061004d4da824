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
