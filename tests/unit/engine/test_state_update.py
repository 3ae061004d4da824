"""What a task shows of its writes (`Task.state_update`: `updates` chunks, task results, what a
guard sees): the head of the writes its router made when every state key is shown, the writes
filtered channel by channel otherwise — the same answer either way."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import anyio
import pytest

from tether.cache.memory import InMemoryCache
from tether.checkpoint.memory import InMemorySaver
from tether.engine.routing import Router
from tether.engine.spec import BranchSpec, NodeSpec
from tether.engine.task import PULL, Task
from tether.graph import END, START, StateGraph
from tether.graph.schema import update_writes
from tether.types import CachePolicy, Command, Send, interrupt


def _node(*, shown: bool, **kw: Any) -> NodeSpec:
    return NodeSpec("step", lambda state: state, False, writes_shown=shown,
                    updates=update_writes(frozenset({"a", "b"}), "step"), **kw)


def _routed(node: NodeSpec, result: Any) -> Task:
    """A task whose writes the router made from `result`."""
    task = Task(node, None, (PULL, node.name), 1)
    router = Router({"step": node, "other": node}, lambda writes: {})
    task.writes = anyio.run(router.writes_for, task, result)
    task.outcome = "done"
    return task


GOES_ON = BranchSpec("goes_on", lambda state: "other", False)


@pytest.mark.parametrize(("result", "head", "shown"), [
    ({"a": 1, "b": 2}, 2, {"a": 1, "b": 2}),
    ({}, 0, None),
    (None, 0, None),
    (Command(update={"a": 1}, goto="other"), 1, {"a": 1}),
    (Command(goto="other"), 0, None),
    # Two commands writing one key: the last write wins, as in the filtered answer.
    ([Command(update={"a": 1}), Command(update={"a": 2, "b": 3}, goto=Send("other", 0))],
     3, {"a": 2, "b": 3}),
])
def test_the_routers_state_writes_are_the_update_with_or_without_the_shortcut(
        result: Any, head: int, shown: Any) -> None:
    for fast in (True, False):
        node = _node(shown=fast, edges=(("branch:to:other", None),), branches=(GOES_ON,))
        task = _routed(node, result)
        assert task.state_writes == head
        assert task.state_update() == shown
        # The writes go on after the head (edges, branches, gotos): none of them is shown.
        assert len(task.writes or []) > head


def test_the_head_of_the_writes_is_the_update_when_every_state_key_is_shown() -> None:
    task = Task(_node(shown=True), None, (PULL, "step"), 1, outcome="done",
                writes=[("a", 1), ("a", 2), ("b", 3), ("branch:to:step", None)], state_writes=3)
    assert task.state_update() == {"a": 2, "b": 3}
    task.state_writes = 1
    assert task.state_update() == {"a": 1}
    task.state_writes = 0
    assert task.state_update() is None


def test_writes_the_router_did_not_make_are_filtered_channel_by_channel() -> None:
    writes = [("branch:to:step", None), ("a", 1), ("__pregel_tasks", 0), ("join:x+y:z", None)]
    for shown in (True, False):  # recalled from a cache or a checkpoint: no head is known
        task = Task(_node(shown=shown), None, (PULL, "step"), 1, outcome="done", writes=writes)
        assert task.state_writes == -1
        assert task.state_update() == {"a": 1}


def test_a_task_without_writes_shows_nothing() -> None:
    task = Task(_node(shown=True), None, (PULL, "step"), 1, state_writes=2)
    assert task.state_update() is None  # e.g. vetoed: its writes were dropped


def test_a_node_that_says_what_it_shows_is_asked() -> None:
    node = NodeSpec("step", lambda state: state, False, shows=lambda writes: ("shown", writes))
    task = Task(node, None, (PULL, "step"), 1, outcome="done", writes=[("a", 1)],
                state_writes=1)
    assert task.state_update() == ("shown", [("a", 1)])


# -- graphs: the shortcut is decided once per graph ------------------------------------------

class S(TypedDict):
    n: int
    log: Annotated[list[int], operator.add]


Hidden = TypedDict("Hidden", {"n": int, "branch:x": int, "join:y": int})


def test_a_graph_whose_state_keys_are_all_shown_takes_the_head() -> None:
    graph = StateGraph(S).add_node("step", lambda s: {"n": 1}).add_edge(START, "step").compile()
    assert graph.spec.nodes["step"].writes_shown


def test_a_state_key_named_like_a_control_channel_is_never_shown() -> None:
    def step(state: Hidden) -> dict[str, int]:
        return {"n": state["n"] + 1, "branch:x": 5, "join:y": 6}

    seen: list[Any] = []
    b = StateGraph(Hidden).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: END)
    graph = b.compile(guards=[lambda step, writes, state: seen.append(writes)])
    assert not graph.spec.nodes["step"].writes_shown
    chunks = list(graph.stream({"n": 0}, stream_mode="updates"))
    assert chunks == [{"step": {"n": 1}}]
    assert seen == [{"step": {"n": 1}}]
    assert graph.invoke({"n": 0})["branch:x"] == 5  # written, only not shown


def test_updates_chunks_and_guards_see_the_same_updates() -> None:
    seen: list[Any] = []

    def fan(state: S) -> Any:
        return [Send("work", {"n": i, "log": []}) for i in range(2)]

    def work(state: S) -> dict[str, Any]:
        return {"log": [state["n"]]}

    def route(state: S) -> Command[Any]:
        return Command(update={"n": 10, "log": [9]}, goto=END)

    b = StateGraph(S).add_node("work", work).add_node("route", route)
    b.add_conditional_edges(START, fan)
    b.add_edge("work", "route")
    graph = b.compile(guards=[lambda step, writes, state: seen.append(writes)])
    chunks = list(graph.stream({"n": 0, "log": []}, stream_mode="updates"))
    assert chunks == [{"work": {"log": [0]}}, {"work": {"log": [1]}},
                      {"route": {"n": 10, "log": [9]}}]
    assert seen == [{"work#0": {"log": [0]}, "work#1": {"log": [1]}},
                    {"route": {"n": 10, "log": [9]}}]


def test_a_cached_task_shows_the_update_it_showed_when_it_ran() -> None:
    def double(state: S) -> dict[str, Any]:
        return {"log": [state["n"] * 2]}

    b = StateGraph(S).add_node("double", double, cache_policy=CachePolicy())
    b.add_edge(START, "double")
    graph = b.compile(cache=InMemoryCache())
    first = list(graph.stream({"n": 1, "log": []}, stream_mode="updates"))
    again = list(graph.stream({"n": 1, "log": []}, stream_mode="updates"))
    assert first == [{"double": {"log": [2]}}]
    assert again == [{"double": {"log": [2]}, "__metadata__": {"cached": True}}]


def test_a_task_whose_writes_a_resumed_step_kept_shows_them_to_a_guard() -> None:
    seen: list[Any] = []

    def asks(state: S) -> dict[str, Any]:
        return {"n": interrupt("n?")}

    def quick(state: S) -> dict[str, Any]:
        return {"log": [7]}

    b = StateGraph(S).add_node("asks", asks).add_node("quick", quick)
    b.add_edge(START, "asks").add_edge(START, "quick")
    graph = b.compile(checkpointer=InMemorySaver(),
                      guards=[lambda step, writes, state: seen.append(writes)])
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"n": 0, "log": []}, config)
    assert seen == []  # the step paused: nothing was committed
    assert graph.invoke(Command(resume=5), config) == {"n": 5, "log": [7]}
    assert seen == [{"asks": {"n": 5}, "quick": {"log": [7]}}]
