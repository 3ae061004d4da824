"""End to end: a small StateGraph compiled with each store — state, history, cancel, resume."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether.checkpoint.base import CheckpointStore
from tether.graph import END, START, StateGraph
from tether.types import RunStatus

from .conftest import Backend

LAST = 5


class State(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def thread(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def build(store: CheckpointStore, hold: asyncio.Event | None = None,
          reached: asyncio.Event | None = None) -> Any:
    """`step` counts `n` up to LAST; with `hold`, the first visit at n == 2 waits on it."""

    async def step(state: State) -> dict[str, Any]:
        if hold is not None and reached is not None and state["n"] == 2 and not reached.is_set():
            reached.set()
            await hold.wait()
        return {"n": state["n"] + 1, "log": [f"step {state['n']}"]}

    builder = StateGraph(State).add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: END if s["n"] >= LAST else "step")
    return builder.compile(checkpointer=store)


def state_log() -> list[str]:
    return [f"step {i}" for i in range(LAST)]


FINAL = {"n": LAST, "log": state_log()}


def test_invoke_checkpoints_every_step_and_get_state_shows_the_end(
        store: CheckpointStore) -> None:
    graph = build(store)
    assert graph.invoke({"n": 0, "log": []}, thread("a")) == FINAL
    state = graph.get_state(thread("a"))
    assert state.values == FINAL and tuple(state.next) == ()
    history = list(graph.get_state_history(thread("a")))
    assert [h.values.get("n") for h in history][:LAST + 1] == list(range(LAST, -1, -1))
    assert tuple(history[1].next) == ("step",)
    assert history[0].config["configurable"]["checkpoint_id"] == \
        state.config["configurable"]["checkpoint_id"]
    assert len(list(graph.get_state_history(thread("a"), limit=2))) == 2


def test_a_second_invoke_continues_the_thread(store: CheckpointStore) -> None:
    graph = build(store)
    graph.invoke({"n": 0, "log": []}, thread("a"))
    again = graph.invoke({"n": 3, "log": ["again"]}, thread("a"))
    assert again["n"] == LAST and again["log"][:LAST + 1] == [*state_log(), "again"]
    assert graph.get_state(thread("other")).values == {}
    runs = store.list_runs(thread_id="a")
    assert [r.status for r in runs] == [RunStatus.SUCCESS, RunStatus.SUCCESS]


@pytest.mark.anyio
async def test_ainvoke_records_a_successful_run_pointing_at_its_last_checkpoint(
        store: CheckpointStore) -> None:
    graph = build(store)
    assert await graph.ainvoke({"n": 0, "log": []}, thread("a")) == FINAL
    (info,) = store.list_runs(thread_id="a")
    state = await graph.aget_state(thread("a"))
    assert info.status is RunStatus.SUCCESS and info.ended_at is not None
    assert info.checkpoint_id == state.config["configurable"]["checkpoint_id"]
    assert store.load(info.run_id).values == FINAL


@pytest.mark.anyio
async def test_a_cancelled_run_is_recorded_with_its_phases_and_final_checkpoint(
        store: CheckpointStore) -> None:
    hold, reached = asyncio.Event(), asyncio.Event()
    graph = build(store, hold, reached)
    run = graph.astream({"n": 0, "log": []}, thread("c"))
    await asyncio.wait_for(reached.wait(), 5)
    info = await asyncio.wait_for(run.cancel("enough"), 5)
    assert info.status is RunStatus.CANCELLED
    snap = store.load(run.run_id)
    assert snap.status is RunStatus.CANCELLED
    assert snap.reason is not None and snap.reason.message == "enough"
    assert snap.values == {"n": 2, "log": ["step 0", "step 1"]}
    assert snap.next == ("step",) and snap.cancelled_tasks == ("step",)
    assert snap.checkpoint_id == info.checkpoint_id is not None
    phases = [e.phase for e in store.events(run.run_id)]
    assert phases[-6:] == [
        "request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


@pytest.mark.anyio
async def test_resume_of_a_cancelled_run_ends_where_an_uninterrupted_run_does(
        store: CheckpointStore) -> None:
    hold, reached = asyncio.Event(), asyncio.Event()
    graph = build(store, hold, reached)
    run = graph.astream({"n": 0, "log": []}, thread("c"))
    await asyncio.wait_for(reached.wait(), 5)
    await asyncio.wait_for(run.cancel(), 5)
    resumed = graph.resume(run.run_id)
    assert await asyncio.wait_for(resumed.result(), 5) == FINAL
    assert store.load(resumed.run_id).status is RunStatus.SUCCESS
    assert (await graph.aget_state(thread("c"))).values == FINAL


@pytest.mark.durable_only
def test_a_reopened_store_serves_the_same_state_and_history(
        backend: Backend, store: CheckpointStore, tmp_path: Path) -> None:
    build(store).invoke({"n": 0, "log": []}, thread("a"))
    before = [h.values for h in build(store).get_state_history(thread("a"))]
    other = backend.reopen(store, tmp_path)
    try:
        graph = build(other)
        assert graph.get_state(thread("a")).values == FINAL
        assert [h.values for h in graph.get_state_history(thread("a"))] == before
        assert graph.invoke({"n": 4, "log": []}, thread("a"))["n"] == LAST
    finally:
        getattr(other, "close", lambda: None)()
