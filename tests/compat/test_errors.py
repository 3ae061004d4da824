"""Errors a program meets: empty input, node exceptions, retries, invalid graphs, default limit."""

import functools
import operator
from typing import Annotated, TypedDict

import pytest

from ._support import Lib, aoutcome, load, outcome
from .test_control_flow import build_counter


class Count(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def _one_node(lib: Lib, node, *, retry_policy=None, checkpointer=None):
    builder = lib.StateGraph(Count)
    builder.add_node("node", node, retry_policy=retry_policy)
    builder.add_edge(lib.START, "node")
    return builder.compile(checkpointer=checkpointer)


def test_invoke_none_without_checkpointer_raises_empty_input_error(lib: Lib, lg: Lib) -> None:
    expected = outcome(lambda: _one_node(lg, lambda s: {"n": 1}).invoke(None))
    assert expected == ("raised", "EmptyInputError")
    with pytest.raises(lib.EmptyInputError):
        _one_node(lib, lambda s: {"n": 1}).invoke(None)


@pytest.mark.anyio
async def test_ainvoke_none_without_checkpointer_raises_empty_input_error(
    lib: Lib, lg: Lib
) -> None:
    expected = await aoutcome(lambda: _one_node(lg, lambda s: {"n": 1}).ainvoke(None))
    assert expected == ("raised", "EmptyInputError")
    with pytest.raises(lib.EmptyInputError):
        await _one_node(lib, lambda s: {"n": 1}).ainvoke(None)


def test_invoke_none_on_a_fresh_thread_raises_empty_input_error(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        graph = _one_node(library, lambda s: {"n": 1}, checkpointer=library.InMemorySaver())
        config = {"configurable": {"thread_id": "fresh"}}
        return outcome(lambda: graph.invoke(None, config)), list(graph.get_state_history(config))

    expected = run(lg)
    assert expected == (("raised", "EmptyInputError"), [])
    assert run(lib) == expected


class Boom(Exception):
    pass


def test_node_exception_propagates_unchanged(lib: Lib, lg: Lib) -> None:
    def explode(state: Count) -> dict:
        raise Boom(f"boom at {state['n']}")

    with pytest.raises(Boom) as reference:
        _one_node(lg, explode).invoke({"n": 3})
    assert reference.value.args == ("boom at 3",)
    with pytest.raises(Boom) as got:
        _one_node(lib, explode).invoke({"n": 3})
    assert got.value.args == reference.value.args


@pytest.mark.anyio
async def test_async_node_exception_propagates_unchanged(lib: Lib) -> None:
    async def explode(state: Count) -> dict:
        raise Boom("async boom")

    with pytest.raises(Boom) as got:
        await _one_node(lib, explode).ainvoke({"n": 0})
    assert got.value.args == ("async boom",)


def _flaky(failures: int, exc_type: type[Exception], attempts: list[int]):
    """A node that raises `exc_type` on its first `failures` attempts."""

    def node(state: Count) -> dict:
        attempts.append(state["n"])
        if len(attempts) <= failures:
            raise exc_type(f"attempt {len(attempts)}")
        return {"n": state["n"] + 1, "log": [f"ok after {len(attempts)}"]}

    return node


def _fast_policy(lib: Lib, **kwargs):
    return lib.RetryPolicy(initial_interval=0.001, max_interval=0.01, jitter=False, **kwargs)


def test_retry_policy_reruns_a_node_that_fails_twice_then_succeeds(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        attempts: list[int] = []
        node = _flaky(2, ConnectionError, attempts)
        graph = _one_node(library, node, retry_policy=_fast_policy(library))
        return graph.invoke({"n": 0}), attempts

    expected = run(lg)
    assert expected == ({"n": 1, "log": ["ok after 3"]}, [0, 0, 0])
    assert run(lib) == expected


@pytest.mark.anyio
async def test_retry_policy_reruns_an_async_node(lib: Lib, lg: Lib) -> None:
    async def run(library: Lib) -> tuple:
        attempts: list[int] = []
        flaky = _flaky(2, ConnectionError, attempts)

        async def node(state: Count) -> dict:
            return flaky(state)

        graph = _one_node(library, node, retry_policy=_fast_policy(library))
        return await graph.ainvoke({"n": 5}), attempts

    expected = await run(lg)
    assert expected == ({"n": 6, "log": ["ok after 3"]}, [5, 5, 5])
    assert await run(lib) == expected


@pytest.mark.parametrize(
    ("failures", "exc_type", "policy"),
    [
        (3, ConnectionError, {}),
        (5, ConnectionError, {"max_attempts": 5}),
        (1, ValueError, {}),
        (1, ValueError, {"retry_on": ValueError}),
        (1, KeyError, {"retry_on": (ValueError, KeyError)}),
        (2, Boom, {"retry_on": lambda exc: "attempt 1" in str(exc)}),
    ],
    ids=[
        "exhausts-default-attempts",
        "max-attempts-5",
        "default-does-not-retry-value-error",
        "retry-on-class",
        "retry-on-tuple",
        "retry-on-callable",
    ],
)
def test_retry_policy_attempts_and_outcome_match(
    lib: Lib, lg: Lib, failures: int, exc_type: type[Exception], policy: dict
) -> None:
    def run(library: Lib) -> tuple:
        attempts: list[int] = []
        node = _flaky(failures, exc_type, attempts)
        graph = _one_node(library, node, retry_policy=_fast_policy(library, **policy))
        return outcome(lambda: graph.invoke({"n": 0})), len(attempts)

    expected = run(lg)
    assert expected[1] >= 1
    assert run(lib) == expected


def test_node_without_retry_policy_runs_once(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        attempts: list[int] = []
        graph = _one_node(library, _flaky(1, ConnectionError, attempts))
        return outcome(lambda: graph.invoke({"n": 0})), len(attempts)

    expected = run(lg)
    assert expected == (("raised", "ConnectionError"), 1)
    assert run(lib) == expected


def _invalid_graphs(lib: Lib) -> dict:
    def noop(state: Count) -> dict:
        return {}

    def no_entry():
        builder = lib.StateGraph(Count)
        builder.add_node("x", noop)
        return builder.compile()

    def unknown_target():
        builder = lib.StateGraph(Count)
        builder.add_node("x", noop)
        builder.add_edge(lib.START, "y")
        return builder.compile()

    def duplicate_node():
        builder = lib.StateGraph(Count)
        builder.add_node("x", noop)
        builder.add_node("x", noop)

    def reserved_name():
        lib.StateGraph(Count).add_node(lib.END, noop)

    def edge_into_start():
        builder = lib.StateGraph(Count)
        builder.add_node("x", noop)
        builder.add_edge(lib.START, "x")
        builder.add_edge("x", lib.START)

    def edge_out_of_end():
        builder = lib.StateGraph(Count)
        builder.add_node("x", noop)
        builder.add_edge(lib.START, "x")
        builder.add_edge(lib.END, "x")

    def unknown_interrupt_node():
        builder = lib.StateGraph(Count)
        builder.add_node("x", noop)
        builder.add_edge(lib.START, "x")
        return builder.compile(interrupt_before=["nope"])

    return {
        "no-entry-point": no_entry,
        "edge-to-unknown-node": unknown_target,
        "duplicate-node": duplicate_node,
        "reserved-node-name": reserved_name,
        "edge-into-start": edge_into_start,
        "edge-out-of-end": edge_out_of_end,
        "interrupt-before-unknown-node": unknown_interrupt_node,
    }


INVALID_GRAPHS = [
    "no-entry-point",
    "edge-to-unknown-node",
    "duplicate-node",
    "reserved-node-name",
    "edge-into-start",
    "edge-out-of-end",
    "interrupt-before-unknown-node",
]


@pytest.mark.parametrize("case", INVALID_GRAPHS)
def test_invalid_graph_definition_raises_the_same_builtin_error(
    lib: Lib, lg: Lib, case: str
) -> None:
    with pytest.raises(Exception) as reference:
        _invalid_graphs(lg)[case]()
    assert type(reference.value) is ValueError
    with pytest.raises(ValueError):
        _invalid_graphs(lib)[case]()


def test_conditional_edge_to_an_unknown_key_in_path_map_raises_key_error(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Count)
        builder.add_node("x", lambda s: {"n": 1})
        builder.add_edge(library.START, "x")
        builder.add_conditional_edges("x", lambda s: "missing", {"known": library.END})
        return outcome(lambda: builder.compile().invoke({"n": 0}))

    expected = run(lg)
    assert expected == ("raised", "KeyError")
    assert run(lib) == expected


def _default_limit_outcomes(library: Lib) -> list:
    return [
        outcome(lambda target=target: build_counter(library, target).invoke({"n": 0})["n"])
        for target in (10006, 10007)
    ]


_langgraph_default_limit_outcomes = functools.cache(
    lambda: _default_limit_outcomes(load("langgraph"))
)


@pytest.mark.slow
def test_default_recursion_limit_is_the_same(lib: Lib) -> None:
    # LangGraph's default is 10007 (LANGGRAPH_DEFAULT_RECURSION_LIMIT); computed once per session.
    expected = _langgraph_default_limit_outcomes()
    assert expected == [("ok", 10006), ("raised", "GraphRecursionError")]
    if lib.name != "langgraph":
        assert _default_limit_outcomes(lib) == expected


def test_conditional_edge_naming_an_unknown_node_is_ignored(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Count)
        builder.add_node("x", lambda s: {"n": s["n"] + 1})
        builder.add_edge(library.START, "x")
        builder.add_conditional_edges("x", lambda s: "nowhere")
        return outcome(lambda: builder.compile().invoke({"n": 0}))

    expected = run(lg)
    # LangGraph logs "wrote to unknown channel branch:to:nowhere, ignoring it" and ends the run.
    assert expected == ("ok", {"n": 1, "log": []})
    if lib.name == "tether":
        # Deliberate difference (docs/compat.md): routing to a node that does not exist is an
        # error naming the branch and the node, not a silent end of the run.
        assert run(lib) == ("raised", "InvalidUpdateError")
    else:
        assert run(lib) == expected


def test_send_to_an_unknown_node_is_ignored(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        builder = library.StateGraph(Count)
        builder.add_node("x", lambda s: {"n": 1})
        builder.add_conditional_edges(library.START, lambda s: [library.Send("nowhere", s)])
        return outcome(lambda: builder.compile().invoke({"n": 0}))

    expected = run(lg)
    # LangGraph logs "Ignoring unknown node name nowhere in pending sends".
    assert expected == ("ok", {"n": 0, "log": []})
    if lib.name == "tether":
        # Deliberate difference (docs/compat.md): a Send to no node is an error.
        assert run(lib) == ("raised", "InvalidUpdateError")
    else:
        assert run(lib) == expected


def test_resume_command_on_a_thread_that_is_not_interrupted(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        graph = _one_node(
            library,
            lambda s: {"n": s["n"] + 1, "log": ["ran"]},
            checkpointer=library.InMemorySaver(),
        )
        config = {"configurable": {"thread_id": "done"}}
        graph.invoke({"n": 0}, config)
        return outcome(lambda: graph.invoke(library.Command(resume="late"), config))

    expected = run(lg)
    # LangGraph ignores the resume value: nothing is scheduled, the state is returned as is.
    assert expected == ("ok", {"n": 1, "log": ["ran"]})
    if lib.name == "tether":
        # Deliberate difference (docs/compat.md): an answer for a thread that asked nothing is
        # a mistake, reported with InvalidResumeError.
        assert run(lib) == ("raised", "InvalidResumeError")
    else:
        assert run(lib) == expected
