"""Whether a step made progress (for the no-progress detector): a written state key with another
value than before. A state whose keys change only when written is compared whole, in C; other
states (a functional graph's) key by key — the same answer either way."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import RunCancelled
from tether.func import entrypoint
from tether.graph import END, START, StateGraph
from tether.runs.policies import Policies


class Uncomparable:
    """A value whose comparison raises (counts as changed)."""

    def __eq__(self, other: object) -> bool:
        raise TypeError("no comparing")

    __hash__ = None  # type: ignore[assignment]


class Ambiguous:
    """A value whose comparison answers something that is no truth value (an array's)."""

    class Answer:
        def __bool__(self) -> bool:
            raise ValueError("ambiguous")

    def __eq__(self, other: object) -> Any:
        return Ambiguous.Answer()

    def __ne__(self, other: object) -> Any:
        return Ambiguous.Answer()

    __hash__ = None  # type: ignore[assignment]


class S(TypedDict, total=False):
    value: Any
    n: int
    other: int


def _looping(write: Any, steps: int = 6) -> Any:
    done: list[int] = []

    def step(state: S) -> dict[str, Any]:
        done.append(1)
        return {"value": write()}

    b = StateGraph(S).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if len(done) < steps else END)
    return b.compile(loop_detection={"no_progress_steps": 3})


def test_a_state_of_keys_changes_only_where_it_is_written() -> None:
    assert _looping(int).spec.writes_only


def test_a_state_that_is_also_a_trigger_is_compared_key_by_key() -> None:
    @entrypoint()
    def run(value: int) -> int:
        return value

    assert not run.spec.writes_only  # its input channel is a state key and a trigger


@pytest.mark.parametrize("value", [Uncomparable, Ambiguous])
def test_values_that_cannot_be_compared_count_as_changed(value: Any) -> None:
    _looping(value).invoke({"value": value(), "n": 0})  # never stopped as no progress


def test_the_same_value_written_again_is_no_progress() -> None:
    shared = Uncomparable()  # the very object: equal without a comparison
    with pytest.raises(RunCancelled) as caught:
        _looping(lambda: shared).invoke({"value": shared, "n": 0})
    assert caught.value.reason.evidence["steps"] == [1, 2, 3]


def test_equal_values_are_no_progress_and_another_key_is() -> None:
    with pytest.raises(RunCancelled):
        _looping(lambda: 7, steps=3).invoke({"value": 7, "n": 0})
    _looping(lambda: 7, steps=3).invoke({"n": 0})  # `value` appears at step 1: progress


def test_a_key_nobody_wrote_is_not_compared() -> None:
    """An unwritten key keeps its very object, whatever its comparison does."""
    with pytest.raises(RunCancelled):
        _looping(lambda: 7).invoke({"value": 7, "n": 0, "other": Ambiguous()})  # type: ignore[typeddict-item]


def test_after_commit_is_asked_only_while_progress_is_watched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, bool]] = []

    def after_commit(self: Policies, step: int, progressed: bool, values: Any) -> None:
        asked.append((step, progressed))

    monkeypatch.setattr(Policies, "after_commit", after_commit)
    _looping(int, steps=3).invoke({"n": 0})
    assert asked == [(1, True), (2, False), (3, False)]
    asked.clear()
    b = StateGraph(S).add_node("step", lambda s: {"n": 1}).add_edge(START, "step")
    b.compile(loop_detection=False).invoke({"n": 0})
    assert asked == []
