"""Small differences found by differential runs: the recursion budget, `update_state` without
`as_node`, the history of an unbalanced join, the first debug checkpoint, update order."""

import operator
from typing import Annotated, Any, TypedDict

import pytest

from ._support import Lib, history, normalise, outcome, snapshot, thread

PENDING = pytest.mark.tether_pending("a parity fix in the engine (stage B)")


class Log(TypedDict):
    log: Annotated[list, operator.add]


def _logger(name: str) -> Any:
    def node(state: Log) -> dict:
        return {"log": [name]}

    return node


def build_ping_pong(lib: Lib) -> Any:
    """`ping` and `pong` call each other for ever."""
    builder = lib.StateGraph(Log)
    builder.add_node("ping", _logger("ping"))
    builder.add_node("pong", _logger("pong"))
    builder.add_edge(lib.START, "ping")
    builder.add_edge("ping", "pong")
    builder.add_edge("pong", "ping")
    return builder.compile(checkpointer=lib.InMemorySaver())


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_recursion_limit_runs_and_streams_the_same_supersteps(lib: Lib, lg: Lib,
                                                              limit: int) -> None:
    def run(library: Lib) -> list:
        graph = build_ping_pong(library)
        chunks: list[Any] = []
        config = {**thread("t"), "recursion_limit": limit}

        def consume() -> None:
            chunks.extend(graph.stream({"log": []}, config, stream_mode=["updates", "values"]))

        raised = outcome(consume)
        return [raised, chunks, snapshot(graph.get_state(thread("t")))]

    expected = run(lg)
    assert expected[0] == ("raised", "GraphRecursionError")
    # A fresh run gets `recursion_limit` node supersteps.
    assert len(expected[2]["values"]["log"]) == limit
    assert run(lib) == expected


def test_recursion_limit_of_a_run_that_continues_a_thread(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_ping_pong(library)
        out = []
        for graph_input, limit in (({"log": []}, 3), (None, 2), (None, 4), ({"log": []}, 2)):
            config = {**thread("t"), "recursion_limit": limit}
            out.append(outcome(lambda i=graph_input, c=config: graph.invoke(i, c)))
            state = graph.get_state(thread("t"))
            out.append((len(state.values["log"]), state.next, state.metadata["step"]))
        return out

    expected = run(lg)
    # Continuing a thread (no input) runs two supersteps more than the limit.
    assert [entry[0] for entry in expected[1::2]] == [3, 7, 13, 15]
    assert run(lib) == expected


def test_recursion_limit_in_the_debug_stream(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_ping_pong(library)
        events: list[Any] = []

        def consume() -> None:
            for event in graph.stream({"log": []}, {**thread("t"), "recursion_limit": 2},
                                      stream_mode="debug"):
                events.append((event["type"], event["step"], event["payload"].get("name")))

        return [outcome(consume), events]

    expected = run(lg)
    assert expected[1][0] == ("checkpoint", -1, None)
    assert run(lib) == expected


def build_question(lib: Lib, *, parallel: bool) -> Any:
    """`ask` pauses for an answer; before it `first` ran (or, with `parallel`, beside it)."""

    def ask(state: Log) -> dict:
        return {"log": [f"ask:{lib.interrupt('q?')}"]}

    class State(Log):
        note: str

    builder = lib.StateGraph(State)
    builder.add_node("first", _logger("first"))
    builder.add_node("ask", ask)
    builder.add_node("after", _logger("after"))
    builder.add_edge(lib.START, "first")
    if parallel:
        builder.add_edge(lib.START, "ask")
    else:
        builder.add_edge("first", "ask")
    builder.add_edge("ask", "after")
    return builder.compile(checkpointer=lib.InMemorySaver())


@pytest.mark.parametrize("parallel", [False, True], ids=["sequence", "parallel"])
def test_update_state_without_as_node_on_a_paused_thread(lib: Lib, lg: Lib,
                                                          parallel: bool) -> None:
    def run(library: Lib) -> list:
        graph = build_question(library, parallel=parallel)
        out: list[Any] = [normalise(graph.invoke({"log": []}, thread("t")))]
        out.append(outcome(lambda: graph.update_state(thread("t"), {"note": "hi"}) and None))
        state = graph.get_state(thread("t"))
        out.append(snapshot(state) | {"as_node": None})
        out.append(outcome(lambda: graph.invoke(library.Command(resume="yes"), thread("t"))))
        return out

    expected = run(lg)
    assert expected[1] == ("ok", None)
    assert expected[3][0] == "ok"
    assert expected[3][1]["note"] == "hi"
    assert run(lib) == expected


def test_history_next_of_a_branch_waiting_on_an_unbalanced_join(lib: Lib, lg: Lib) -> None:
    def run(library: Lib, durability: str) -> list:
        builder = library.StateGraph(Log)
        for name in ("a", "b", "c", "join"):
            builder.add_node(name, _logger(name))
        builder.add_edge(library.START, "a")
        builder.add_edge(library.START, "b")
        builder.add_edge("b", "c")
        builder.add_edge(["a", "c"], "join")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        graph.invoke({"log": []}, thread("t"), durability=durability)
        return history(graph.get_state_history(thread("t")))

    expected = run(lg, "sync")
    # After step 1 `join` has heard from `a` only: it is not due yet.
    assert [(h["step"], h["next"]) for h in expected] == [
        (3, ()), (2, ("join",)), (1, ("c",)), (0, ("a", "b")), (-1, ("__start__",)),
    ]
    assert run(lib, "sync") == expected
    # LangGraph's default durability ("async") stores a checkpoint in the background, usually
    # after the next step has already added `c` to the barrier it shares with it: its history
    # then lists `join` as due at step 1. Whether it does is a race of its
    # background writer (on a loaded machine the write can come first), so either is accepted
    # there. tether's checkpoints are what the step left, whatever the timing.
    assert [h["next"] for h in run(lg, "async")][2] in {("c", "join"), ("c",)}
    if lib.name == "tether":
        assert run(lib, "async") == expected


def test_first_debug_checkpoint_shows_empty_values(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        class State(TypedDict):
            x: int

        builder = library.StateGraph(State)
        builder.add_node("inc", lambda s: {"x": s["x"] + 1})
        builder.add_edge(library.START, "inc")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        events = graph.stream({"x": 1}, thread("t"), stream_mode=["debug", "checkpoints"])
        return [(mode, e["payload"]["values"] if mode == "debug" else e["values"])
                for mode, e in events
                if mode == "checkpoints" or e["type"] == "checkpoint"]

    expected = run(lg)
    assert sorted(expected[:2]) == [("checkpoints", {}), ("debug", {})]
    assert run(lib) == expected
