"""Deferred nodes (`add_node(..., defer=True)`): a node whose edges fired waits until nothing
else is due, then runs once — after the longer branches, after every `Send` worker."""

import operator
from typing import Annotated, Any, TypedDict

from ._support import Lib, history, snapshot, thread


class Log(TypedDict):
    log: Annotated[list, operator.add]


def _logger(name: str) -> Any:
    def node(state: Log) -> dict:
        return {"log": [name]}

    return node


def build_uneven(lib: Lib, *, checkpointer: bool = False) -> Any:
    """`a` fans out to a short branch (`b`) and a long one (`c` -> `d`); both end in `end`."""
    builder = lib.StateGraph(Log)
    for name in ("a", "b", "c", "d"):
        builder.add_node(name, _logger(name))
    builder.add_node("end", _logger("end"), defer=True)
    builder.add_edge(lib.START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge("c", "d")
    builder.add_edge("b", "end")
    builder.add_edge("d", "end")
    return builder.compile(checkpointer=lib.InMemorySaver() if checkpointer else None)


def test_deferred_node_runs_once_after_the_longest_branch(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_uneven(library)
        return [graph.invoke({"log": []}), list(graph.stream({"log": []}, stream_mode="updates"))]

    expected = run(lg)
    assert expected[0] == {"log": ["a", "b", "c", "d", "end"]}
    assert [next(iter(chunk)) for chunk in expected[1]][-2:] == ["d", "end"]
    assert run(lib) == expected


def test_history_of_a_deferred_node_lists_it_only_when_it_is_due(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        graph = build_uneven(library, checkpointer=True)
        graph.invoke({"log": []}, thread("t"))
        return history(graph.get_state_history(thread("t")))

    expected = run(lg)
    assert [(h["step"], h["next"]) for h in expected] == [
        (4, ()), (3, ("end",)), (2, ("d",)), (1, ("b", "c")), (0, ("a",)), (-1, ("__start__",)),
    ]
    assert run(lib) == expected


def test_deferred_reduce_after_send_workers(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        def work(item: int) -> dict:
            return {"log": [f"w{item}"]}

        builder = library.StateGraph(Log)
        builder.add_node("fan", _logger("fan"))
        builder.add_node("work", work)
        builder.add_node("sum", _logger("sum"), defer=True)
        builder.add_edge(library.START, "fan")
        builder.add_conditional_edges(
            "fan", lambda _s: [library.Send("work", i) for i in range(3)])
        builder.add_edge("work", "sum")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        chunks = list(graph.stream({"log": []}, thread("t"), stream_mode="updates"))
        # The workers' updates arrive as their threads finish: compared as a set.
        workers = sorted(str(chunk) for chunk in chunks[1:-1])
        return [chunks[0], workers, chunks[-1], history(graph.get_state_history(thread("t")))]

    expected = run(lg)
    assert expected[2] == {"sum": {"log": ["sum"]}}
    assert [h["next"] for h in expected[3]][:2] == [(), ("sum",)]
    assert run(lib) == expected


def test_deferred_join_waits_for_both_sides_and_the_rest(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> Any:
        builder = library.StateGraph(Log)
        for name in ("a", "b", "c", "x", "y"):
            builder.add_node(name, _logger(name))
        builder.add_node("j", _logger("j"), defer=True)
        builder.add_edge(library.START, "a")
        builder.add_edge(library.START, "b")
        builder.add_edge(library.START, "x")
        builder.add_edge("b", "c")
        builder.add_edge("x", "y")
        builder.add_edge(["a", "c"], "j")
        return builder.compile().invoke({"log": []})

    expected = run(lg)
    assert expected == {"log": ["a", "b", "x", "c", "y", "j"]}
    assert run(lib) == expected


def test_a_deferred_node_reached_again_runs_again(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        builder = library.StateGraph(Log)
        builder.add_node("a", _logger("a"))
        builder.add_node("b", _logger("b"))
        builder.add_node("d", _logger("d"), defer=True)
        builder.add_edge(library.START, "a")
        builder.add_edge(library.START, "b")
        builder.add_edge("a", "d")
        builder.add_conditional_edges(
            "d", lambda s: library.END if s["log"].count("d") > 1 else "a")
        return list(builder.compile().stream({"log": []}, stream_mode="updates"))

    expected = run(lg)
    assert [next(iter(c)) for c in expected] == ["a", "b", "d", "a", "d"]
    assert run(lib) == expected


def test_a_deferred_node_waits_across_an_interrupt(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        def ask(state: Log) -> dict:
            return {"log": [f"asked:{library.interrupt('go?')}"]}

        builder = library.StateGraph(Log)
        builder.add_node("quick", _logger("quick"))
        builder.add_node("ask", ask)
        builder.add_node("done", _logger("done"), defer=True)
        builder.add_edge(library.START, "quick")
        builder.add_edge(library.START, "ask")
        builder.add_edge("quick", "done")
        builder.add_edge("ask", "done")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        graph.invoke({"log": []}, thread("t"))
        paused = snapshot(graph.get_state(thread("t")))
        return [paused, graph.invoke(library.Command(resume="yes"), thread("t"))]

    expected = run(lg)
    assert expected[0]["next"] == ("ask",)
    # The writes of the resumed step are applied in node-name order.
    assert expected[1] == {"log": ["asked:yes", "quick", "done"]}
    assert run(lib) == expected
