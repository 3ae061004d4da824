"""Whether a step made progress (for the no-progress detector): a written state key with another
value than before. A small state whose keys change only when written is compared whole, in C;
other states (a large one, a functional graph's) key by key — the same answer either way."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import RunCancelled
from tether.engine.spec import WHOLE_MOST
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


# A state of more keys than are compared whole: compared key by key.
Wide = TypedDict("Wide", {"value": Any, "n": int, "other": int,
                          **{f"more{i}": int for i in range(WHOLE_MOST)}}, total=False)


def _looping(write: Any, steps: int = 6, *, wide: bool = False) -> Any:
    done: list[int] = []

    def step(state: S) -> dict[str, Any]:
        done.append(1)
        return {"value": write()}

    b = StateGraph(Wide if wide else S).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if len(done) < steps else END)
    graph = b.compile(loop_detection={"no_progress_steps": 3})
    assert graph.spec.compares_whole is not wide
    return graph


BOTH = pytest.mark.parametrize("wide", [False, True], ids=["whole", "key_by_key"])


def test_a_small_state_of_keys_is_compared_whole() -> None:
    assert _looping(int).spec.compares_whole
    assert not _looping(int, wide=True).spec.compares_whole  # too many keys


def test_a_state_that_is_also_a_trigger_is_compared_key_by_key() -> None:
    @entrypoint()
    def run(value: int) -> int:
        return value

    assert not run.spec.compares_whole  # its input channel is a state key and a trigger


@BOTH
@pytest.mark.parametrize("value", [Uncomparable, Ambiguous])
def test_values_that_cannot_be_compared_count_as_changed(value: Any, wide: bool) -> None:
    _looping(value, wide=wide).invoke({"value": value(), "n": 0})  # never stopped


@BOTH
def test_the_same_value_written_again_is_no_progress(wide: bool) -> None:
    shared = Uncomparable()  # the very object: equal without a comparison
    with pytest.raises(RunCancelled) as caught:
        _looping(lambda: shared, wide=wide).invoke({"value": shared, "n": 0})
    assert caught.value.reason.evidence["steps"] == [1, 2, 3]


@BOTH
def test_equal_values_are_no_progress_and_a_new_key_is(wide: bool) -> None:
    with pytest.raises(RunCancelled):
        _looping(lambda: 7, steps=3, wide=wide).invoke({"value": 7, "n": 0})
    _looping(lambda: 7, steps=3, wide=wide).invoke({"n": 0})  # `value` appears: progress


@BOTH
def test_a_key_nobody_wrote_is_not_compared(wide: bool) -> None:
    """An unwritten key keeps its very object, whatever its comparison does."""
    with pytest.raises(RunCancelled):
        _looping(lambda: 7, wide=wide).invoke(
            {"value": 7, "n": 0, "other": Ambiguous()})  # type: ignore[typeddict-item]


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
