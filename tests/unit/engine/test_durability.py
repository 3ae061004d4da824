"""Durability modes: `sync` stores every superstep before the next, `async` stores them in the
background, `exit` stores only the run's last one — and a cancel keeps what each mode promises."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest

from tether import RunCancelled
from tether.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio


class S(TypedDict):
    n: int


def loop_graph(store: Any, until: int = 5, gate: asyncio.Event | None = None,
               arrived: asyncio.Event | None = None) -> Any:
    async def step(state: S) -> dict[str, int]:
        if gate is not None and state["n"] == 3:
            if arrived is not None:
                arrived.set()
            await gate.wait()
        return {"n": state["n"] + 1}

    b = StateGraph(S).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if s["n"] < until else END)
    return b.compile(checkpointer=store)


def config(durability: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": durability}, "durability": durability}


@pytest.mark.parametrize("durability", ["sync", "async"])
async def test_every_superstep_is_stored(store: Any, durability: str) -> None:
    graph = loop_graph(store)
    assert await graph.ainvoke({"n": 0}, config(durability)) == {"n": 5}
    steps = [c.step for c in store.list_checkpoints(durability)]
    assert steps == [5, 4, 3, 2, 1, 0, -1]


async def test_exit_durability_stores_only_the_last_checkpoint(store: Any) -> None:
    graph = loop_graph(store)
    assert await graph.ainvoke({"n": 0}, config("exit")) == {"n": 5}
    (only,) = list(store.list_checkpoints("exit"))
    assert only.step == 5 and only.values["n"] == 5
    state = graph.get_state({"configurable": {"thread_id": "exit"}})
    assert state.values == {"n": 5} and state.next == ()


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_a_cancelled_run_keeps_its_last_completed_step_in_every_mode(
    store: Any, durability: str,
) -> None:
    gate, arrived = asyncio.Event(), asyncio.Event()
    graph = loop_graph(store, until=10, gate=gate, arrived=arrived)
    run = graph.astream({"n": 0}, config(durability))
    # The node of the fourth step is waiting at the gate: three steps have completed.
    await asyncio.wait_for(arrived.wait(), 10)
    await run.cancel()
    with pytest.raises(RunCancelled):
        await run.result()
    snapshot = store.load(run.run_id)
    assert snapshot.values == {"n": 3} and snapshot.next == ("step",)
    gate.set()
    assert await graph.resume(run.run_id).result() == {"n": 10}


class Counting:
    """A store wrapper counting the checkpoints each kind of transaction carries."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.alone: list[int] = []
        self.together: list[list[int]] = []
        self.with_end: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def aput_checkpoint(self, record: Any) -> Any:
        self.alone.append(record.step)
        return await self._store.aput_checkpoint(record)

    def put_checkpoint(self, record: Any) -> Any:
        self.alone.append(record.step)
        return self._store.put_checkpoint(record)

    async def aput_checkpoints(self, records: Any) -> Any:
        self.together.append([r.step for r in records])
        return await self._store.aput_checkpoints(records)

    def put_checkpoints(self, records: Any) -> Any:
        self.together.append([r.step for r in records])
        return self._store.put_checkpoints(records)

    async def afinish_run(self, run_id: str, finish: Any) -> Any:
        self.with_end.extend(c.step for c in finish.checkpoints)
        return await self._store.afinish_run(run_id, finish)


@pytest.mark.parametrize("call", ["invoke", "ainvoke"])
async def test_sync_durability_stores_the_last_checkpoint_with_the_run_end(
        store: Any, call: str) -> None:
    counting = Counting(store)
    graph = loop_graph(store)
    graph.ledger = counting  # the runs of this graph go through the wrapper
    cfg = config("sync")
    if call == "invoke":
        result = await asyncio.to_thread(graph.invoke, {"n": 0}, cfg)
    else:
        result = await graph.ainvoke({"n": 0}, cfg)
    assert result == {"n": 5}
    # Every step's checkpoint is stored before the next step starts; the input checkpoint,
    # after which nothing runs before the first step's, goes in that one's transaction, and
    # the last one, after which nothing runs, rides in the run's final transaction (one
    # commit instead of two, at each end).
    assert counting.together == [[-1, 0]]
    assert counting.alone == [1, 2, 3, 4]
    assert counting.with_end == [5]
    steps = [c.step for c in store.list_checkpoints("sync")]
    assert steps == [5, 4, 3, 2, 1, 0, -1]
    state = graph.get_state({"configurable": {"thread_id": "sync"}})
    assert state.values == {"n": 5} and state.next == ()


class Blobs(Counting):
    """A store wrapper keeping the channels each stored checkpoint carries values for."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.channels: dict[int, set[str]] = {}

    async def aput_checkpoint(self, record: Any) -> Any:
        self.channels[record.step] = set(record.blobs)
        return await self._store.aput_checkpoint(record)

    async def aput_checkpoints(self, records: Any) -> Any:
        for record in records:
            self.channels[record.step] = set(record.blobs)
        return await super().aput_checkpoints(records)


async def test_a_trigger_channel_set_to_none_at_every_step_is_stored_once(store: Any) -> None:
    # The conditional edge writes its trigger channel at every step, always `None`: the
    # checkpoints after the first keep referring to the one that stored it.
    blobs = Blobs(store)
    graph = loop_graph(store)
    graph.ledger = blobs
    assert await graph.ainvoke({"n": 0}, config("sync")) == {"n": 5}
    trigger = "branch:to:step"
    assert [step for step, channels in sorted(blobs.channels.items())
            if trigger in channels] == [0]
    assert all("n" in blobs.channels[step] for step in range(5))
    history = {c.step: c for c in store.list_checkpoints("sync")}
    for step in range(5):
        assert history[step].values == {"n": step, trigger: None}
        assert history[step].refs[trigger] == history[0].id
    # A run from a middle checkpoint finds the trigger and goes on.
    fork = {"configurable": {"thread_id": "sync", "checkpoint_id": history[2].id}}
    assert await graph.ainvoke(None, fork) == {"n": 5}
