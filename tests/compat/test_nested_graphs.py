"""Graphs inside graphs beyond a subgraph node: a compiled graph invoked from a node's code
(streamed with `subgraphs=True`, its `Command.PARENT` reaching the caller's graph), parent
commands from two levels down, and the state of a paused subgraph (`get_state(subgraphs=True)`)."""

import operator
from typing import Annotated, Any, TypedDict

import pytest

from ._support import Lib, normalise, snapshot, thread

PENDING = pytest.mark.tether_pending("graphs invoked inside a node run under it (stage B)")


class Log(TypedDict):
    log: Annotated[list, operator.add]


def _logger(name: str) -> Any:
    def node(state: Log) -> dict:
        return {"log": [name]}

    return node


def _ns(namespace: tuple[str, ...]) -> tuple[str, ...]:
    """A namespace without task ids (random in both libraries)."""
    return tuple(part.split(":")[0] for part in namespace)


def build_inner(lib: Lib) -> Any:
    builder = lib.StateGraph(Log)
    builder.add_node("s1", _logger("s1"))
    builder.add_node("s2", _logger("s2"))
    builder.add_edge(lib.START, "s1")
    builder.add_edge("s1", "s2")
    return builder.compile()


def build_caller(lib: Lib, *, use_async: bool = False) -> Any:
    """`call` invokes a compiled graph from its own code and returns its log."""
    inner = build_inner(lib)

    def call(state: Log) -> dict:
        return {"log": inner.invoke({"log": ["x"]})["log"]}

    async def acall(state: Log) -> dict:
        return {"log": (await inner.ainvoke({"log": ["x"]}))["log"]}

    builder = lib.StateGraph(Log)
    builder.add_node("call", acall if use_async else call)
    builder.add_edge(lib.START, "call")
    return builder.compile()


@pytest.mark.parametrize("mode", ["updates", "values", ["updates", "values"]], ids=str)
def test_a_graph_invoked_in_a_node_streams_with_subgraphs(lib: Lib, lg: Lib, mode: Any) -> None:
    def run(library: Lib) -> list:
        chunks = build_caller(library).stream({"log": []}, stream_mode=mode, subgraphs=True)
        return [(_ns(chunk[0]), *chunk[1:]) for chunk in chunks]

    expected = run(lg)
    if mode == "updates":
        assert expected == [
            (("call",), {"s1": {"log": ["s1"]}}),
            (("call",), {"s2": {"log": ["s2"]}}),
            ((), {"call": {"log": ["x", "s1", "s2"]}}),
        ]
    assert run(lib) == expected


@pytest.mark.anyio
async def test_a_graph_awaited_in_an_async_node_streams_with_subgraphs(lib: Lib,
                                                                      lg: Lib) -> None:
    async def run(library: Lib) -> list:
        graph = build_caller(library, use_async=True)
        return [(_ns(ns), chunk) async for ns, chunk in
                graph.astream({"log": []}, stream_mode="updates", subgraphs=True)]

    expected = await run(lg)
    assert [ns for ns, _chunk in expected] == [("call",), ("call",), ()]
    assert await run(lib) == expected


def test_a_graph_invoked_in_a_node_is_hidden_without_subgraphs(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        return list(build_caller(library).stream({"log": []}, stream_mode="updates"))

    expected = run(lg)
    assert expected == [{"call": {"log": ["x", "s1", "s2"]}}]
    assert run(lib) == expected


def _hop(lib: Lib, target: str, name: str) -> Any:
    def hop(state: Log) -> Any:
        return lib.Command(graph=lib.Command.PARENT, goto=target, update={"log": [name]})

    return hop


def test_parent_command_from_a_graph_invoked_in_a_node(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        inner = library.StateGraph(Log)
        inner.add_node("hop", _hop(library, "relay", "hop"))
        inner.add_edge(library.START, "hop")
        compiled = inner.compile()

        def caller(state: Log) -> Any:
            return compiled.invoke(state)

        builder = library.StateGraph(Log)
        builder.add_node("caller", caller)
        builder.add_node("relay", _logger("relay"))
        builder.add_edge(library.START, "caller")
        graph = builder.compile()
        return [graph.invoke({"log": []}), list(graph.stream({"log": []}))]

    expected = run(lg)
    assert expected[0] == {"log": ["hop", "relay"]}
    assert run(lib) == expected


def test_parent_commands_two_levels_down(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        grandchild = library.StateGraph(Log)
        grandchild.add_node("hop", _hop(library, "relay", "hop"))
        grandchild.add_edge(library.START, "hop")
        child = library.StateGraph(Log)
        child.add_node("inner", grandchild.compile())
        child.add_node("relay", _hop(library, "target", "relay"))
        child.add_edge(library.START, "inner")
        parent = library.StateGraph(Log)
        parent.add_node("child", child.compile())
        parent.add_node("target", _logger("target"))
        parent.add_edge(library.START, "child")
        graph = parent.compile(checkpointer=library.InMemorySaver())
        chunks = graph.stream({"log": []}, thread("t"), stream_mode="updates", subgraphs=True)
        return [[(_ns(ns), chunk) for ns, chunk in chunks],
                snapshot(graph.get_state(thread("t")))]

    expected = run(lg)
    assert expected[1]["values"] == {"log": ["relay", "target"]}
    assert run(lib) == expected


def test_handoff_between_two_agent_subgraphs(lib: Lib, lg: Lib) -> None:
    """The multi-agent handoff: each agent is a subgraph whose node hands the conversation to
    the other agent with `Command(graph=Command.PARENT, goto=...)`."""

    class Talk(TypedDict):
        said: Annotated[list, operator.add]
        turns: int

    def run(library: Lib) -> Any:
        def agent(name: str, other: str) -> Any:
            def act(state: Talk) -> Any:
                if state["turns"] >= 3:
                    return {"said": [f"{name} done"]}
                return library.Command(graph=library.Command.PARENT, goto=other,
                                       update={"said": [f"{name}->{other}"],
                                               "turns": state["turns"] + 1})

            builder = library.StateGraph(Talk)
            builder.add_node("act", act)
            builder.add_edge(library.START, "act")
            return builder.compile()

        builder = library.StateGraph(Talk)
        builder.add_node("alice", agent("alice", "bob"))
        builder.add_node("bob", agent("bob", "alice"))
        builder.add_edge(library.START, "alice")
        return builder.compile().invoke({"said": [], "turns": 0})

    expected = run(lg)
    assert expected["said"][:3] == ["alice->bob", "bob->alice", "alice->bob"]
    assert run(lib) == expected


def build_paused_child(lib: Lib, *, depth: int = 1) -> Any:
    """A subgraph (nested `depth` levels) whose second node asks a question."""

    def ask(state: Log) -> dict:
        return {"log": [f"ask:{lib.interrupt('q')}"]}

    builder = lib.StateGraph(Log)
    builder.add_node("s1", _logger("s1"))
    builder.add_node("ask", ask)
    builder.add_edge(lib.START, "s1")
    builder.add_edge("s1", "ask")
    graph = builder.compile()
    for level in range(depth):
        outer = lib.StateGraph(Log)
        outer.add_node(f"sub{level}", graph)
        outer.add_edge(lib.START, f"sub{level}")
        graph = outer.compile(checkpointer=lib.InMemorySaver() if level == depth - 1 else None)
    return graph


def _states(state: Any) -> list:
    """A snapshot and, recursively, the snapshots of its tasks' subgraphs."""
    out = [snapshot(state)]
    for task in state.tasks:
        if task.state is not None:
            out.extend(_states(task.state))
    return out


@pytest.mark.parametrize("depth", [1, 2])
def test_get_state_with_subgraphs_shows_the_paused_subgraph(lib: Lib, lg: Lib,
                                                            depth: int) -> None:
    def run(library: Lib) -> list:
        graph = build_paused_child(library, depth=depth)
        graph.invoke({"log": []}, thread("t"))
        paused = _states(graph.get_state(thread("t"), subgraphs=True))
        graph.invoke(library.Command(resume="yes"), thread("t"))
        return [paused, normalise(graph.get_state(thread("t"), subgraphs=True).values)]

    expected = run(lg)
    assert len(expected[0]) == depth + 1
    assert expected[0][-1]["next"] == ("ask",)
    assert expected[1] == {"log": ["s1", "ask:yes"]}
    assert run(lib) == expected


def test_a_graph_invoked_in_a_node_pauses_and_resumes_with_its_caller(lib: Lib,
                                                                      lg: Lib) -> None:
    def run(library: Lib) -> list:
        def ask(state: Log) -> dict:
            return {"log": [f"ask:{library.interrupt('q')}"]}

        inner = library.StateGraph(Log)
        inner.add_node("s1", _logger("s1"))
        inner.add_node("ask", ask)
        inner.add_edge(library.START, "s1")
        inner.add_edge("s1", "ask")
        compiled = inner.compile()
        calls: list[str] = []

        def call(state: Log) -> dict:
            calls.append("call")
            return {"log": compiled.invoke({"log": []})["log"]}

        builder = library.StateGraph(Log)
        builder.add_node("call", call)
        builder.add_edge(library.START, "call")
        graph = builder.compile(checkpointer=library.InMemorySaver())
        out = [normalise(graph.invoke({"log": []}, thread("t")))]
        out.append(_states(graph.get_state(thread("t"), subgraphs=True)))
        out.append(graph.invoke(library.Command(resume="yes"), thread("t")))
        return [*out, calls]

    expected = run(lg)
    assert expected[0] == {"log": [], "__interrupt__": [("Interrupt", "q")]}
    assert expected[2] == {"log": ["s1", "ask:yes"]}
    assert run(lib) == expected
