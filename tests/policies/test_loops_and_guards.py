"""Loop detection and guards: they fire exactly when they should, and leave evidence."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import RunCancelled, RunStatus
from tether.errors import ConfigError
from tether.graph import END, START, StateGraph

from ._graphs import Count, counter, thread

pytestmark = pytest.mark.anyio


def stuck(state: Count) -> dict[str, Any]:
    """Writes the same value back: the state never changes."""
    return {"count": state["count"]}


async def test_node_seeing_the_same_state_too_often_is_a_loop() -> None:
    graph = counter(stuck, loop_detection={"max_repeats": 3})
    with pytest.raises(RunCancelled) as caught:
        await graph.ainvoke({"count": 7})
    reason = caught.value.reason
    assert reason.kind == "loop"
    assert reason.evidence["node"] == "step"
    assert reason.evidence["repeats"] == 4
    assert reason.evidence["steps"] == [1, 2, 3, 4]


async def test_repeats_at_the_limit_are_allowed() -> None:
    calls: list[int] = []

    def twice_then_move(state: Count) -> dict[str, Any]:
        calls.append(state["count"])
        return {"count": state["count"] + (1 if len(calls) % 3 == 0 else 0)}

    graph = counter(twice_then_move, until=3, loop_detection={"max_repeats": 3,
                                                               "no_progress_steps": None})
    assert (await graph.ainvoke({"count": 0}))["count"] == 3


async def test_fingerprint_fields_ignore_other_keys() -> None:
    def noisy(state: Count) -> dict[str, Any]:
        return {"log": ["tick"]}  # `log` changes, `count` never does

    graph = counter(noisy, loop_detection={"max_repeats": 2, "fields": ["count"]})
    with pytest.raises(RunCancelled) as caught:
        await graph.ainvoke({"count": 0})
    assert caught.value.reason.evidence["repeats"] == 3


async def test_steps_without_progress_are_detected_by_default_at_100() -> None:
    with pytest.raises(RunCancelled) as caught:
        await counter(stuck).ainvoke({"count": 1})
    reason = caught.value.reason
    assert reason.kind == "loop" and reason.evidence["no_progress_steps"] == 100


async def test_no_progress_limit_is_configurable_and_detection_can_be_turned_off() -> None:
    with pytest.raises(RunCancelled) as caught:
        await counter(stuck).ainvoke({"count": 1}, {"loop_detection": {"no_progress_steps": 3}})
    assert caught.value.reason.evidence["steps"] == [1, 2, 3]
    graph = counter(stuck, loop_detection=False)
    with pytest.raises(RunCancelled) as off:
        await graph.ainvoke({"count": 1}, {"budget": {"steps": 150}})
    assert off.value.reason.kind == "budget"  # ran past 100 idle steps: detection was off


async def test_bad_loop_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown loop_detection key"):
        await counter().ainvoke({"count": 0}, {"loop_detection": {"repeats": 2}})


async def test_guard_veto_cancels_with_kind_policy_and_never_applies_the_writes(
    store: Any,
) -> None:
    seen: list[tuple[int, dict[str, Any]]] = []

    def no_big_numbers(step: int, writes: Any, state: Any) -> str | None:
        seen.append((step, dict(writes)))
        if writes.get("step", {}).get("count", 0) > 2:
            return "count may not exceed 2"
        return None

    graph = counter(until=10, checkpointer=store, guards=[no_big_numbers])
    with pytest.raises(RunCancelled) as caught:
        await graph.ainvoke({"count": 0}, thread("g"))
    reason = caught.value.reason
    assert reason.kind == "policy" and reason.message == "count may not exceed 2"
    assert reason.evidence["guard"] == "no_big_numbers"
    assert seen[-1] == (3, {"step": {"count": 3, "log": ["step"]}})
    snapshot = store.load(caught.value.run_id)
    assert snapshot.values["count"] == 2
    assert snapshot.pending_writes == ()
    assert snapshot.next == ("step",)
    assert store.get_run(caught.value.run_id).status is RunStatus.CANCELLED


async def test_guard_that_allows_everything_changes_nothing() -> None:
    graph = counter(until=3, guards=[lambda step, writes, state: None])
    assert (await graph.ainvoke({"count": 0}))["count"] == 3


async def test_guard_sees_send_tasks_by_index() -> None:
    from tether.types import Send

    seen: list[list[str]] = []

    def watch(step: int, writes: Any, state: Any) -> None:
        seen.append(sorted(writes))

    b = StateGraph(Count).add_node("w", lambda s: {"log": [str(s["count"])]})
    b.add_conditional_edges(START, lambda s: [Send("w", {"count": i}) for i in range(3)])
    await b.compile(guards=[watch]).ainvoke({"count": 0})
    assert seen == [["w#0", "w#1", "w#2"]]


class Bag(TypedDict):
    items: list[int]
    meta: dict[str, int]


@pytest.mark.parametrize("key", ["items", "meta"])
async def test_a_value_changed_in_place_and_written_back_is_new_state(key: str) -> None:
    """A node that grows the state's own list (or dict) and writes that same object back has
    changed the state: its input differs every step, so it is no loop (the fingerprint does
    not take an object it hashed before for unchanged when the step wrote it)."""

    def grow(state: Bag) -> dict[str, Any]:
        if key == "items":
            state["items"].append(len(state["items"]))
        else:
            state["meta"][f"k{len(state['meta'])}"] = 1
        return {key: state[key]}

    builder = StateGraph(Bag).add_node("grow", grow).add_edge(START, "grow")
    builder.add_conditional_edges(
        "grow", lambda s: END if len(s[key]) >= 8 else "grow")  # type: ignore[literal-required]
    graph = builder.compile(loop_detection={"max_repeats": 2})
    done = await graph.ainvoke({"items": [], "meta": {}})
    assert len(done[key]) == 8  # type: ignore[literal-required]
