"""`aget_state` and `aget_state_history` read through the store's async API (a server's loop
keeps serving while they wait) and answer exactly as `get_state` and `get_state_history`: the
latest state, a state at a checkpoint, a nested subgraph's paused state, a history filtered,
paged and limited."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether.checkpoint.sqlite import SqliteSaver
from tether.errors import CheckpointNotFound
from tether.graph import END, START, StateGraph
from tether.types import interrupt

pytestmark = pytest.mark.anyio


class State(TypedDict):
    text: str


def ask(state: State) -> dict[str, str]:
    return {"text": state["text"] + str(interrupt("more?"))}


def grow(state: State) -> dict[str, str]:
    return {"text": state["text"] + "+"}


def nested(store: SqliteSaver) -> Any:
    """An outer graph whose node is a graph whose node is a graph that pauses."""
    inner = StateGraph(State)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    middle = StateGraph(State)
    middle.add_node("grow", grow)
    middle.add_node("inner", inner.compile())
    middle.add_edge(START, "grow")
    middle.add_edge("grow", "inner")
    outer = StateGraph(State)
    outer.add_node("middle", middle.compile())
    outer.add_node("grow", grow)
    outer.add_edge(START, "grow")
    outer.add_edge("grow", "middle")
    outer.add_edge("middle", END)
    return outer.compile(checkpointer=store)


class Noting(SqliteSaver):
    """Notes the OS thread of each sync checkpoint read."""

    readers: list[int]

    def get_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        self.readers.append(threading.get_ident())
        return super().get_checkpoint(*args, **kwargs)

    def list_checkpoints(self, *args: Any, **kwargs: Any) -> Any:
        self.readers.append(threading.get_ident())
        return super().list_checkpoints(*args, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    made = Noting(tmp_path / "state.db")
    made.readers = []
    yield made
    made.close()


def off_the_loop(store: Noting) -> bool:
    """Whether every sync read noted so far ran off this (the loop's) thread; forgets them."""
    found, store.readers = store.readers, []
    return bool(found) and threading.get_ident() not in found


def config(**extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": "t", **extra}}


async def test_aget_state_answers_as_get_state(store: Noting) -> None:
    graph = nested(store)
    assert await graph.aget_state(config()) == graph.get_state(config())  # no checkpoint yet
    await graph.ainvoke({"text": "go"}, config())
    for subgraphs in (False, True):
        store.readers = []
        got = await graph.aget_state(config(), subgraphs=subgraphs)
        assert off_the_loop(store)
        assert got == graph.get_state(config(), subgraphs=subgraphs)
    deep = (await graph.aget_state(config(), subgraphs=True)).tasks[0].state
    assert deep.tasks[0].state.next == ("ask",)  # the innermost graph, paused
    first = list(graph.get_state_history(config()))[-1].config["configurable"]
    at = config(checkpoint_id=first["checkpoint_id"])
    assert await graph.aget_state(at) == graph.get_state(at)
    with pytest.raises(CheckpointNotFound):
        await graph.aget_state(config(checkpoint_id="no-such-checkpoint"))


async def test_aget_state_history_answers_as_get_state_history(store: Noting) -> None:
    graph = nested(store)
    await graph.ainvoke({"text": "go"}, config())
    history = list(graph.get_state_history(config()))
    assert len(history) >= 3
    store.readers = []
    assert [s async for s in graph.aget_state_history(config())] == history
    assert off_the_loop(store)
    middle = history[1].config
    for options in ({"limit": 1}, {"limit": 0}, {"before": middle},
                    {"filter": {"step": 0}}, {"filter": {"step": 99}},
                    {"before": middle, "limit": 1}):
        got = [s async for s in graph.aget_state_history(config(), **options)]
        assert got == list(graph.get_state_history(config(), **options)), options
