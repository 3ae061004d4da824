"""A compiled graph's two stores, one name each: `graph.store` is its long-term store
(LangGraph's meaning), `graph.ledger` is where its runs are recorded."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether.checkpoint.memory import InMemorySaver
from tether.checkpoint.sqlite import SqliteSaver
from tether.config import get_store
from tether.graph import END, START, StateGraph
from tether.store.memory import InMemoryStore


class S(TypedDict):
    n: int


def noted(state: S) -> dict[str, int]:
    get_store().put(("runs",), str(state["n"]), {"n": state["n"]})
    return {"n": state["n"] + 1}


def builder() -> StateGraph[S]:
    return StateGraph(S).add_node("note", noted).add_edge(START, "note").add_edge("note", END)


def test_graph_store_is_the_long_term_store_and_ledger_records_the_runs() -> None:
    store, saver = InMemoryStore(), InMemorySaver()
    graph = builder().compile(checkpointer=saver, store=store)
    assert graph.store is store and graph.ledger is saver and graph.checkpointer is saver
    graph.invoke({"n": 1}, {"configurable": {"thread_id": "t"}, "run_id": "r1"})
    assert graph.ledger.get_run("r1") is not None
    assert store.get(("runs",), "1") is not None

    bare = StateGraph(S).add_node("inc", lambda s: {"n": s["n"] + 1}).add_edge(
        START, "inc").compile()
    assert bare.store is None and bare.checkpointer is None
    bare.invoke({"n": 1}, {"run_id": "r2"})
    assert bare.ledger.get_run("r2") is not None  # an in-memory ledger of this process


def test_with_config_and_rebind_keep_the_long_term_store(tmp_path: Any) -> None:
    store = InMemoryStore()
    graph = builder().compile(store=store)
    assert graph.with_config({"recursion_limit": 5}).store is store
    with SqliteSaver.from_conn_string(str(tmp_path / "t.db")) as saver:
        bound = graph.rebind(saver, name="served")
        assert bound.store is store and bound.ledger is saver
        bound.invoke({"n": 7}, {"configurable": {"thread_id": "t"}})
    assert store.get(("runs",), "7") is not None


def test_a_store_that_is_not_one_is_refused_naming_its_type() -> None:
    with pytest.raises(TypeError, match=r"store must be a long-term store .* not builtins\.dict"):
        builder().compile(store={})


def test_a_langgraph_store_works_in_a_tether_graph() -> None:
    lg_memory = pytest.importorskip("langgraph.store.memory")
    store = lg_memory.InMemoryStore()
    graph = builder().compile(store=store)
    assert graph.invoke({"n": 3}) == {"n": 4}
    item = store.get(("runs",), "3")
    assert item is not None and item.value == {"n": 3}
