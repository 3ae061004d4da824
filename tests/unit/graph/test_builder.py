"""Wiring mistakes fail at `compile()` (or at `add_*`) with a message naming the culprit."""

from __future__ import annotations

import dataclasses
import operator
from typing import Annotated, Literal, TypedDict

import pytest
from pydantic import BaseModel

from tether.errors import GraphCompileError, StrictnessWarning
from tether.graph import END, START, StateGraph
from tether.types import Command, Send


class S(TypedDict):
    n: int


def noop(state: S) -> dict[str, int]:
    return {}


def builder() -> StateGraph[S]:
    return StateGraph(S)


def test_graph_without_an_entry_point_fails_naming_start() -> None:
    b = builder().add_node("a", noop)
    with pytest.raises(GraphCompileError, match="entrypoint"):
        b.compile()


def test_edge_to_unknown_node_names_the_node() -> None:
    b = builder().add_node("a", noop).add_edge(START, "a").add_edge("a", "ghost")
    with pytest.raises(GraphCompileError, match="unknown node `ghost`"):
        b.compile()


def test_edge_from_unknown_node_names_the_node() -> None:
    b = builder().add_node("a", noop).add_edge(START, "a").add_edge("ghost", "a")
    with pytest.raises(GraphCompileError, match="starting at unknown node `ghost`"):
        b.compile()


def test_waiting_edge_from_unknown_node_names_it() -> None:
    b = builder().add_node("a", noop).add_node("c", noop).add_edge(START, "a")
    b.add_edge(["a", "ghost"], "c")
    with pytest.raises(GraphCompileError, match="ghost"):
        b.compile()


def test_node_no_edge_reaches_is_a_warning_naming_it_and_an_error_when_strict() -> None:
    b = builder().add_node("a", noop).add_node("lonely", noop).add_edge(START, "a")
    with pytest.warns(StrictnessWarning, match="`lonely` is not reachable") as caught:
        b.compile()
    assert len(caught) == 1
    with pytest.raises(GraphCompileError, match="`lonely` is not reachable"):
        b.compile(strict=True)


def test_a_node_reached_by_command_parent_from_a_subgraph_is_reachable_when_strict() -> None:
    def hand_off(state: S) -> Command:  # type: ignore[type-arg]
        return Command(graph=Command.PARENT, goto="closer")

    inner = builder().add_node("agent", hand_off).add_edge(START, "agent").compile()
    outer = builder().add_node("team", inner).add_node("closer", noop).add_edge(START, "team")
    outer.compile(strict=True)  # no GraphCompileError: the subgraph may hand off to closer


def test_node_reached_only_through_annotated_command_is_reachable() -> None:
    def hop(state: S) -> Command[Literal["b"]]:
        return Command(goto="b")

    b = builder().add_node("a", hop).add_node("b", noop).add_edge(START, "a")
    assert b.compile().invoke({"n": 1}) == {"n": 1}


def test_node_reached_through_send_in_an_unannotated_node_is_not_flagged() -> None:
    def fan(state: S) -> Command:  # type: ignore[type-arg]
        return Command(goto=[Send("b", {"n": 5})])

    b = builder().add_node("a", fan).add_node("b", lambda s: {"n": s["n"]})
    b.add_edge(START, "a")
    assert b.compile().invoke({"n": 1}) == {"n": 5}


def test_path_map_naming_unknown_node_names_branch_and_target() -> None:
    b = builder().add_node("a", noop).add_edge(START, "a")
    b.add_conditional_edges("a", lambda s: "x", {"x": "nowhere"})
    with pytest.raises(GraphCompileError, match="'condition' branch found unknown target "
                                                "'nowhere'"):
        b.compile()


@pytest.mark.parametrize("name", [START, END, "__interrupt__"])
def test_reserved_node_names_are_refused(name: str) -> None:
    with pytest.raises(GraphCompileError, match="reserved"):
        builder().add_node(name, noop)


@pytest.mark.parametrize("name", ["a:b", "a|b"])
def test_node_names_with_separators_are_refused(name: str) -> None:
    with pytest.raises(GraphCompileError, match="reserved character"):
        builder().add_node(name, noop)


def test_duplicate_node_is_refused_by_name() -> None:
    with pytest.raises(GraphCompileError, match="`a` already present"):
        builder().add_node("a", noop).add_node("a", noop)


def test_end_as_source_and_start_as_target_are_refused() -> None:
    with pytest.raises(GraphCompileError, match="END cannot be a start node"):
        builder().add_edge(END, "a")
    with pytest.raises(GraphCompileError, match="START cannot be an end node"):
        builder().add_edge("a", START)


def test_interrupt_naming_unknown_node_fails() -> None:
    b = builder().add_node("a", noop).add_edge(START, "a")
    with pytest.raises(GraphCompileError, match="Interrupt node `zz` not found"):
        b.compile(interrupt_before=["zz"])


def test_bad_isolation_and_timeout_are_refused_naming_the_node() -> None:
    with pytest.raises(GraphCompileError, match="'a': isolation"):
        builder().add_node("a", noop, isolation="gpu")
    with pytest.raises(ValueError, match="timeout of node 'a'"):
        builder().add_node("a", noop, timeout=-1)


def one_argument(x: list[int]) -> list[int]:
    return x


class BadReducer(TypedDict):
    items: Annotated[list[int], one_argument]


def test_reducer_with_wrong_arity_is_refused_naming_the_key() -> None:
    with pytest.raises(GraphCompileError, match="Reducer of key 'items'"):
        StateGraph(BadReducer)


def test_schema_with_unresolvable_annotation_is_a_clear_error() -> None:
    class Local(TypedDict):
        items: Annotated[list[int], undefined_reducer]  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(GraphCompileError, match="cannot read the annotations of state schema"):
        StateGraph(Local)


def test_schema_must_be_a_typeddict_dataclass_or_pydantic_model() -> None:
    with pytest.raises(GraphCompileError, match="must be a TypedDict"):
        StateGraph(int)


def test_add_sequence_chains_nodes_in_order() -> None:
    class L(TypedDict):
        log: Annotated[list[str], operator.add]

    def first(s: L) -> dict[str, list[str]]:
        return {"log": ["first"]}

    b = StateGraph(L).add_sequence([first, ("second", lambda s: {"log": ["second"]})])
    b.set_entry_point("first").set_finish_point("second")
    assert b.compile().invoke({"log": []}) == {"log": ["first", "second"]}


def test_schemas_of_each_kind_compile_and_run() -> None:
    @dataclasses.dataclass
    class D:
        n: int = 0

    class P(BaseModel):
        n: int = 0

    for schema in (S, D, P):
        b = StateGraph(schema)
        b.add_node("inc", lambda s: {"n": (s["n"] if isinstance(s, dict) else s.n) + 1})
        b.add_edge(START, "inc")
        assert b.compile().invoke({"n": 1}) == {"n": 2}


def test_get_graph_draws_nodes_edges_and_mermaid() -> None:
    b = builder().add_node("a", noop).add_node("b", noop).add_edge(START, "a")
    b.add_conditional_edges("a", lambda s: "b", {"go": "b", "stop": END})
    drawing = b.compile().get_graph()
    assert set(drawing.nodes) == {START, "a", "b", END}
    assert ("a", "b", "go", True) in [tuple(e) for e in drawing.edges]
    text = drawing.draw_mermaid()
    assert text.splitlines()[5] == "graph TD;"
    assert "a -. &nbsp;go&nbsp; .-> b;" in text
    assert "__start__ --> a;" in text
