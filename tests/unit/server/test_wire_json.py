"""`jsonable` copies plain JSON data without writing it out, and gives exactly what the round
trip through `dumps` gives, for plain data and for everything else."""

from __future__ import annotations

import enum
import json
import math
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.server import wire
from tether.server.wire import dumps, jsonable


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def _round_trip(value: Any) -> Any:
    return json.loads(dumps(value))


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 == 1.0 == True would hide a change)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4),
    max_leaves=20)


@given(json_data)
def test_jsonable_is_the_round_trip_through_dumps(value: Any) -> None:
    assert _same(jsonable(value), _round_trip(value))


@pytest.mark.parametrize("value", [
    {"a": float("nan"), "b": [float("inf")]},
    {"text": "caf\u00e9", "lone": "\ud800"},
    {"\u00e9": 1}, {1: "one", None: 2, False: 3, 2.5: 4},
    {"big": 10 ** 30, "huge": -(10 ** 30), "edge": 1 << 64},
    {"colour": Colour.RED, "level": Level.HIGH, "ordered": OrderedDict(a=1)},
    {"set": {1}, "bytes": b"x", "tuple": (1, (2, 3))},
    {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
    [],
    "plain",
])
def test_jsonable_agrees_with_the_round_trip_on_what_is_not_plain(value: Any) -> None:
    assert _same(jsonable(value), _round_trip(value))


def test_plain_data_is_copied_without_writing_json(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_value: Any) -> bytes:
        raise AssertionError("written out")

    monkeypatch.setattr(wire, "dumps", refuse)
    value = {"kind": "user", "evidence": {"action": "interrupt", "n": [1, 2.5, None, True]}}
    copied = jsonable(value)
    assert copied == value
    assert copied is not value and copied["evidence"] is not value["evidence"]


def test_a_self_referencing_value_is_left_to_the_round_trip() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert jsonable(loop) == _round_trip(loop)


def test_an_interrupt_shows_its_response_schema_only_when_it_has_one() -> None:
    from tether.types import Interrupt

    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    assert jsonable(Interrupt("go?", "i1")) == {"value": "go?", "id": "i1"}
    assert jsonable([Interrupt("go?", "i2", schema)]) == [
        {"value": "go?", "id": "i2", "response_schema": schema}]
    assert json.loads(dumps(Interrupt("go?", "i2", schema))) == {
        "value": "go?", "id": "i2", "response_schema": schema}
