"""A compiled graph added as a node: shared keys flow in and out, private keys stay inside."""

import operator
from typing import Annotated, TypedDict

import pytest

from ._support import Lib, snapshot, thread


class Parent(TypedDict):
    topic: str
    steps: Annotated[list[str], operator.add]
    summary: str


class Child(TypedDict):
    topic: str
    steps: Annotated[list[str], operator.add]
    draft: str  # private to the child


def build_child(lib: Lib, *, async_nodes: bool = False):
    def draft(state: Child) -> dict:
        return {"draft": f"draft about {state['topic']}", "steps": ["child.draft"]}

    def polish(state: Child) -> dict:
        return {"topic": state["draft"].upper(), "steps": [f"child.polish<{len(state['steps'])}"]}

    async def adraft(state: Child) -> dict:
        return draft(state)

    async def apolish(state: Child) -> dict:
        return polish(state)

    builder = lib.StateGraph(Child)
    builder.add_node("draft", adraft if async_nodes else draft)
    builder.add_node("polish", apolish if async_nodes else polish)
    builder.add_edge(lib.START, "draft")
    builder.add_edge("draft", "polish")
    builder.add_edge("polish", lib.END)
    return builder.compile()


def build_parent(lib: Lib, *, async_nodes: bool = False):
    def prepare(state: Parent) -> dict:
        return {"topic": state["topic"].strip(), "steps": ["prepare"]}

    def summarise(state: Parent) -> dict:
        return {"summary": f"{state['topic']} in {len(state['steps'])} steps", "steps": ["sum"]}

    builder = lib.StateGraph(Parent)
    builder.add_node("prepare", prepare)
    builder.add_node("child", build_child(lib, async_nodes=async_nodes))
    builder.add_node("summarise", summarise)
    builder.add_edge(lib.START, "prepare")
    builder.add_edge("prepare", "child")
    builder.add_edge("child", "summarise")
    builder.add_edge("summarise", lib.END)
    return builder.compile()


def test_subgraph_node_shares_keys_and_hides_private_ones(lib: Lib, lg: Lib) -> None:
    expected = build_parent(lg).invoke({"topic": "  owls "})
    assert "draft" not in expected
    # The child starts from the parent's `steps` and returns its whole list: the reducer adds it
    # once more to the parent's list.
    assert expected["steps"] == [
        "prepare",
        "prepare",
        "child.draft",
        "child.polish<2",
        "sum",
    ]
    assert expected["topic"] == "DRAFT ABOUT OWLS"
    assert build_parent(lib).invoke({"topic": "  owls "}) == expected


@pytest.mark.anyio
async def test_subgraph_with_async_nodes_under_ainvoke_matches(lib: Lib, lg: Lib) -> None:
    expected = await build_parent(lg, async_nodes=True).ainvoke({"topic": "bees"})
    assert expected["summary"].startswith("DRAFT ABOUT BEES")
    assert await build_parent(lib, async_nodes=True).ainvoke({"topic": "bees"}) == expected


def test_subgraph_node_counts_as_one_update_in_the_parent_stream(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        return list(build_parent(library).stream({"topic": "ants"}, stream_mode="updates"))

    expected = run(lg)
    assert [next(iter(chunk)) for chunk in expected] == ["prepare", "child", "summarise"]
    assert run(lib) == expected


def test_subgraph_stream_with_subgraphs_names_the_namespace(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> list:
        chunks = build_parent(library).stream(
            {"topic": "ants"}, stream_mode="updates", subgraphs=True
        )
        # A namespace entry is "node:task_id"; the task id is random.
        return [(tuple(part.split(":")[0] for part in ns), chunk) for ns, chunk in chunks]

    expected = run(lg)
    assert [(ns, next(iter(chunk))) for ns, chunk in expected] == [
        ((), "prepare"),
        (("child",), "draft"),
        (("child",), "polish"),
        ((), "child"),
        ((), "summarise"),
    ]
    assert run(lib) == expected


class Outer(TypedDict):
    text: str


class Inner(TypedDict):
    text: str
    count: int


def test_subgraph_invoked_inside_a_node_function_maps_state_by_hand(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        inner_builder = library.StateGraph(Inner)
        inner_builder.add_node("count", lambda s: {"count": len(s["text"]), "text": s["text"] * 2})
        inner_builder.add_edge(library.START, "count")
        inner = inner_builder.compile()

        def call_inner(state: Outer) -> dict:
            result = inner.invoke({"text": state["text"], "count": 0})
            return {"text": f"{result['text']}/{result['count']}"}

        builder = library.StateGraph(Outer)
        builder.add_node("call_inner", call_inner)
        builder.add_edge(library.START, "call_inner")
        return builder.compile().invoke({"text": "ab"})

    expected = run(lg)
    assert expected == {"text": "abab/2"}
    assert run(lib) == expected


def test_nested_subgraphs_two_levels_deep_share_keys(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        leaf = library.StateGraph(Outer)
        leaf.add_node("leaf", lambda s: {"text": s["text"] + "<leaf>"})
        leaf.add_edge(library.START, "leaf")
        middle = library.StateGraph(Outer)
        middle.add_node("before", lambda s: {"text": s["text"] + "<mid>"})
        middle.add_node("inner", leaf.compile())
        middle.add_edge(library.START, "before")
        middle.add_edge("before", "inner")
        top = library.StateGraph(Outer)
        top.add_node("middle", middle.compile())
        top.add_node("after", lambda s: {"text": s["text"] + "<top>"})
        top.add_edge(library.START, "middle")
        top.add_edge("middle", "after")
        return top.compile().invoke({"text": ""})

    expected = run(lg)
    assert expected == {"text": "<mid><leaf><top>"}
    assert run(lib) == expected


def test_command_parent_from_a_subgraph_node_routes_in_the_parent(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> dict:
        def hand_off(state: Outer):
            return library.Command(
                graph=library.Command.PARENT, goto="target", update={"text": state["text"] + "|sub"}
            )

        child = library.StateGraph(Outer)
        child.add_node("hand_off", hand_off)
        child.add_edge(library.START, "hand_off")
        parent = library.StateGraph(Outer)
        parent.add_node("sub", child.compile(), destinations=("target",))
        parent.add_node("target", lambda s: {"text": s["text"] + "|target"})
        parent.add_edge(library.START, "sub")
        return parent.compile().invoke({"text": "x"})

    expected = run(lg)
    assert expected == {"text": "x|sub|target"}
    assert run(lib) == expected


def test_get_state_with_subgraphs_shows_the_interrupted_subgraph_state(lib: Lib, lg: Lib) -> None:
    def run(library: Lib) -> tuple:
        def ask(state: Outer) -> dict:
            return {"text": state["text"] + library.interrupt("more?")}

        child = library.StateGraph(Outer)
        child.add_node("ask", ask)
        child.add_edge(library.START, "ask")
        parent = library.StateGraph(Outer)
        parent.add_node("sub", child.compile())
        parent.add_edge(library.START, "sub")
        graph = parent.compile(checkpointer=library.InMemorySaver())
        graph.invoke({"text": "go"}, thread("nested"))
        outer = graph.get_state(thread("nested"), subgraphs=True)
        inner = outer.tasks[0].state
        return snapshot(outer), snapshot(inner) if hasattr(inner, "values") else inner

    expected = run(lg)
    assert expected[1]["values"] == {"text": "go"}
    assert expected[1]["next"] == ("ask",)
    assert run(lib) == expected
