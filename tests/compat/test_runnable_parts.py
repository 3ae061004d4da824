"""A compiled graph's small parts of LangChain's Runnable interface, as LangGraph's: its name
(`get_name`), its drawing awaited (`aget_graph`), its `context_schema`, and the clearing of its
node cache (`clear_cache`, `aclear_cache`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, TypedDict

import pytest

from ._support import Lib

pytestmark = pytest.mark.anyio


class State(TypedDict):
    x: int


@dataclass
class Context:
    user: str


def _graph(lib: Lib, calls: list[str], *, cache: bool = True, **compile_kw: Any) -> Any:
    types = importlib.import_module(f"{lib.name}.types")

    def node(name: str) -> Any:
        def run(state: State) -> dict[str, int]:
            calls.append(name)
            return {"x": state["x"] + 1}
        return run

    builder = lib.StateGraph(State, context_schema=Context)
    builder.add_node("first", node("first"), cache_policy=types.CachePolicy())
    builder.add_node("second", node("second"), cache_policy=types.CachePolicy())
    builder.add_edge(lib.START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", lib.END)
    if cache:
        memory = importlib.import_module(f"{lib.name}.cache.memory")
        compile_kw["cache"] = memory.InMemoryCache()
    return builder.compile(**compile_kw)


def test_the_name_and_context_schema_are_langgraphs(lib: Lib, lg: Lib) -> None:
    for kwargs in ({}, {"name": "planner"}, {"name": "Planner"}):
        got, expected = _graph(lib, [], **kwargs), _graph(lg, [], **kwargs)
        for suffix in (None, "input", "Output"):
            assert got.get_name(suffix) == expected.get_name(suffix), (kwargs, suffix)
        assert got.get_name("state", name="other") == expected.get_name("state", name="other")
    assert _graph(lib, []).context_schema is Context


async def test_the_drawing_awaited_is_the_drawing(lib: Lib) -> None:
    graph = _graph(lib, [])
    drawn = await graph.aget_graph()
    assert drawn.draw_mermaid() == graph.get_graph().draw_mermaid()
    assert sorted(drawn.nodes) == ["__end__", "__start__", "first", "second"]


@pytest.mark.parametrize("sync", [True, False], ids=["clear_cache", "aclear_cache"])
async def test_clearing_the_cache_runs_the_nodes_again_as_in_langgraph(
        lib: Lib, lg: Lib, sync: bool) -> None:
    async def calls_of(of: Lib) -> list[list[str]]:
        calls: list[str] = []
        graph = _graph(of, calls)

        async def clear(nodes: Any = None) -> None:
            if sync:
                graph.clear_cache(nodes)
            else:
                await graph.aclear_cache(nodes)

        rounds = []
        for clearing in (None, ["second"], ["nobody"], []):
            calls.clear()
            graph.invoke({"x": 1})
            rounds.append(list(calls))
            if clearing is not None:
                await clear(clearing)
        return rounds

    assert await calls_of(lib) == await calls_of(lg)
    assert await calls_of(lib) == [["first", "second"], [], ["second"], []]


def test_clearing_the_cache_of_a_graph_without_one_is_refused(lib: Lib) -> None:
    graph = _graph(lib, [], cache=False)
    with pytest.raises(ValueError, match=r"(?i)no cache"):
        graph.clear_cache()
