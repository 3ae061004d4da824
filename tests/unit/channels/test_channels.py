"""Channels, and the determinism of a step's commit (property tests)."""

from __future__ import annotations

import operator
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.channels import (
    MISSING,
    BinaryOperatorAggregate,
    EmptyChannelError,
    EphemeralValue,
    LastValue,
    NamedBarrierValue,
    Overwrite,
    Topic,
)
from tether.engine.apply import apply_grouped, group_writes
from tether.engine.spec import NodeSpec
from tether.engine.task import PULL, PUSH, Task
from tether.errors import InvalidUpdateError


def test_last_value_keeps_one_write_and_refuses_two() -> None:
    channel = LastValue("k")
    with pytest.raises(EmptyChannelError):
        channel.get()
    assert channel.update([1]) and channel.get() == 1
    assert not channel.update([])
    with pytest.raises(InvalidUpdateError, match="At key 'k'"):
        channel.update([2, 3])


@given(st.lists(st.lists(st.integers(), max_size=3), max_size=6))
def test_a_reducer_folds_every_write_in_order(writes: list[list[int]]) -> None:
    channel = BinaryOperatorAggregate(operator.add, list, "k")
    channel.update(writes)
    assert channel.get() == [x for w in writes for x in w]


def test_overwrite_replaces_a_reduced_value() -> None:
    channel = BinaryOperatorAggregate(operator.add, list, "k")
    channel.update([[1], Overwrite([9]), [2]])
    assert channel.get() == [9, 2]


def test_ephemeral_value_lives_one_step_and_barrier_waits_for_all_names() -> None:
    trigger = EphemeralValue("t")
    trigger.update([None])
    assert trigger.is_available()
    assert trigger.update([]) and not trigger.is_available()
    barrier = NamedBarrierValue(frozenset({"a", "b"}), "j")
    barrier.update(["a"])
    assert not barrier.is_available()
    barrier.update(["b"])
    assert barrier.is_available() and barrier.consume() and not barrier.is_available()


def test_topic_collects_a_step_and_restores_from_a_checkpoint() -> None:
    topic = Topic("s")
    topic.update([1, 2])
    stored = topic.checkpoint()
    fresh = topic.fresh()
    fresh.restore(stored)
    assert fresh.get() == [1, 2]
    assert topic.update([]) and topic.checkpoint() is MISSING


NODE = NodeSpec(name="n", func=lambda s: s, is_async=False)


def _task(kind: str, detail: Any, writes: list[tuple[str, Any]]) -> Task:
    return Task(NODE, None, (kind, detail), 1, outcome="done", writes=writes)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers()), min_size=1,
                max_size=6, unique_by=lambda t: t[0]),
       st.lists(st.integers(), max_size=4), st.randoms(use_true_random=False))
def test_a_step_commits_the_same_whatever_order_its_tasks_finished(
    pulls: list[tuple[str, int]], pushes: list[int], rng: random.Random,
) -> None:
    tasks = [_task(PULL, name, [("log", [f"{name}{value}"])]) for name, value in pulls]
    tasks += [_task(PUSH, i, [("log", [f"send{value}"])]) for i, value in enumerate(pushes)]
    results = []
    for _ in range(3):
        rng.shuffle(tasks)
        channels = {"log": BinaryOperatorAggregate(operator.add, list, "log")}
        apply_grouped(channels, group_writes(tasks), ())
        results.append(channels["log"].get())
    expected = [f"{n}{v}" for n, v in sorted(pulls)] + [f"send{v}" for v in pushes]
    assert results == [expected] * 3


def test_a_reducer_says_what_its_appends_made_and_nothing_else() -> None:
    channel = BinaryOperatorAggregate(operator.add, list)
    channel.update([[0]])
    assert channel.appended_to(channel.value) is None  # not asked before: nothing noted
    start = channel.value
    channel.update([[1], [2, 3]])
    grown = channel.value
    assert channel.appended_to(grown) == (id(start), 3)
    assert channel.appended_to(list(grown)) is None  # an equal list is not its value
    channel.update([[4]])
    assert channel.appended_to(channel.value) == (id(grown), 1)
    for writes in ([Overwrite([9])], [[5], Overwrite([9])], [(6,)]):
        try:
            channel.update(writes)
        except TypeError:  # a list plus a tuple: the value is left as it was
            continue
        assert channel.appended_to(channel.value) is None
    channel.update([[7]])
    channel.restore([1, 2])
    assert channel.appended_to(channel.value) is None
    summed = BinaryOperatorAggregate(lambda a, b: a + b, list)
    summed.appended_to(summed.value)
    summed.update([[1]])
    assert summed.appended_to(summed.value) is None  # another reducer: nothing is known
    assert LastValue().appended_to(None) is None
