"""`bulk_update_state`: supersteps of updates, each a checkpoint after the one before, several
updates of one superstep written together as nodes that ran side by side; as LangGraph's."""

from __future__ import annotations

import importlib
import operator
from typing import Annotated, Any, TypedDict

import pytest

from ._support import Lib, Raised, outcome


class State(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def _graph(lib: Lib) -> Any:
    def node(name: str) -> Any:
        return lambda state: {"log": [name]}

    builder = lib.StateGraph(State)
    for name in ("a", "b", "c", "d"):
        builder.add_node(name, node(name))
    builder.add_edge(lib.START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge(["b", "c"], "d")
    builder.add_edge("d", lib.END)
    return builder.compile(checkpointer=lib.InMemorySaver())


def _after(lib: Lib, supersteps: list[list[Any]], run: bool = False) -> Any:
    """The thread after the updates (and, with `run`, after it continues): its values, the
    nodes due, and each checkpoint's source and step, newest first."""
    types = importlib.import_module(f"{lib.name}.types")
    graph, config = _graph(lib), {"configurable": {"thread_id": "t"}}
    graph.invoke({"x": 1, "log": []}, config)
    made = graph.bulk_update_state(config, [[types.StateUpdate(*u) for u in step]
                                            for step in supersteps])
    shown = graph.get_state(made)
    history = [(s.metadata["source"], s.metadata["step"]) for s in graph.get_state_history(config)]
    ran = graph.invoke(None, config) if run else None
    return shown.values, shown.next, history, ran


@pytest.mark.parametrize("supersteps", [
    [[({"x": 2}, "a")]],
    [[({"log": ["one"]}, "a")], [({"log": ["b!"]}, "b"), ({"log": ["c!"]}, "c")]],
    [[({"x": 5}, "b")], [({"x": 6}, "c")], [({"log": ["end"]}, "d")]],
], ids=["one", "side-by-side", "three-supersteps"])
def test_bulk_updates_leave_the_thread_as_langgraphs(lib: Lib, lg: Lib,
                                                      supersteps: list[list[Any]]) -> None:
    assert _after(lib, supersteps) == _after(lg, supersteps)


def test_the_thread_goes_on_from_the_updates_as_langgraphs(lib: Lib, lg: Lib) -> None:
    # After `a` is written again, b and c are due; written together, d is.
    supersteps = [[({"log": ["again"]}, "a")], [({"log": ["B"]}, "b"), ({"log": ["C"]}, "c")]]
    assert _after(lib, supersteps, run=True) == _after(lg, supersteps, run=True)


@pytest.mark.parametrize("supersteps", [
    [], [[]], [[({"x": 1}, None), ({"x": 2}, "b")]], [[({"x": 1}, "nobody")]],
], ids=["no-supersteps", "empty-superstep", "several-without-a-node", "unknown-node"])
def test_bad_bulk_updates_are_refused_as_langgraph_refuses_them(
        lib: Lib, lg: Lib, supersteps: list[list[Any]]) -> None:
    def refused(of: Lib) -> Any:
        types = importlib.import_module(f"{of.name}.types")
        graph, config = _graph(of), {"configurable": {"thread_id": "t"}}
        graph.invoke({"x": 1, "log": []}, config)
        return outcome(lambda: graph.bulk_update_state(
            config, [[types.StateUpdate(*u) for u in step] for step in supersteps]))

    got, expected = refused(lib), refused(lg)
    assert got[0] == expected[0] == "raised"
    assert got[1] == expected[1]
    assert isinstance(got[1], Raised)
