"""A failed run records where it failed: the node (a path inside subgraphs) and the innermost
frames of the node's own code, on every store and in every face that shows the run."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether.checkpoint.base import CheckpointStore
from tether.graph import END, START, StateGraph
from tether.runs.failure import short_traceback


class State(TypedDict, total=False):
    topic: str
    out: str


def lookup(data: dict[str, Any]) -> str:
    return str(data["topic"])


def research(state: State) -> dict[str, Any]:
    return {"out": lookup({})}


async def aresearch(state: State) -> dict[str, Any]:
    return {"out": lookup({})}


def _graph(node: Any, store: CheckpointStore | None = None) -> Any:
    return (StateGraph(State).add_node("research", node).add_edge(START, "research")
            .add_edge("research", END).compile(checkpointer=store))


@pytest.mark.parametrize("node", [research, aresearch], ids=["sync", "async"])
def test_failed_run_records_the_node_and_the_user_frames(store: CheckpointStore,
                                                           node: Any) -> None:
    graph = _graph(node, store)
    with pytest.raises(KeyError):
        graph.invoke({"topic": "tides"}, {"configurable": {"thread_id": "t"}})
    (info,) = graph.list_runs()
    assert info.error == "KeyError: 'topic'"
    assert info.error_node == "research"
    assert info.error_traceback is not None
    lines = info.error_traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'topic'"
    assert f"in {node.__name__}" in info.error_traceback
    assert "in lookup" in info.error_traceback
    assert "/tether/" not in info.error_traceback  # the runtime's own frames are left out
    assert "anyio" not in info.error_traceback
    (finish,) = [e for e in store.events(info.run_id) if e.phase == "finish"]
    assert finish.node == "research"
    assert finish.detail["traceback"] == info.error_traceback


def test_failure_inside_a_subgraph_names_the_path_to_the_node(store: CheckpointStore) -> None:
    inner = _graph(research)
    outer = (StateGraph(State).add_node("sub", inner).add_edge(START, "sub")
             .compile(checkpointer=store))
    with pytest.raises(KeyError):
        outer.invoke({"topic": "tides"}, {"configurable": {"thread_id": "t"}})
    (info,) = outer.list_runs()
    assert info.error_node == "sub/research"


def test_runs_that_succeed_or_are_cancelled_have_no_failure_details(
        store: CheckpointStore) -> None:
    graph = (StateGraph(State).add_node("ok", lambda s: {"out": "x"}).add_edge(START, "ok")
             .compile(checkpointer=store))
    graph.invoke({"topic": "t"}, {"configurable": {"thread_id": "t"}})
    (info,) = graph.list_runs()
    assert (info.error, info.error_node, info.error_traceback) == (None, None, None)


def test_short_traceback_keeps_only_the_innermost_frames() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise ValueError("bottom")
        deep(n - 1)

    try:
        deep(10)
    except ValueError as exc:
        text = short_traceback(exc, frames=3)
    assert text is not None
    assert text.count("in deep") == 3
    assert text.endswith("ValueError: bottom")


def test_short_traceback_of_an_exception_never_raised_is_none() -> None:
    assert short_traceback(ValueError("never raised")) is None


def test_an_error_raised_by_the_runtime_keeps_its_own_frames(store: CheckpointStore) -> None:
    graph = (StateGraph(State).add_node("bad", lambda s: {"nope": 1}).add_edge(START, "bad")
             .compile(checkpointer=store))
    with pytest.raises(Exception, match="nope"):
        graph.invoke({"topic": "t"}, {"configurable": {"thread_id": "t"}})
    (info,) = graph.list_runs()
    assert info.error_node == "bad"
    assert info.error_traceback is not None and "/tether/" in info.error_traceback
