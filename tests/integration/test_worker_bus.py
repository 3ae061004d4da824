"""A worker on a bus, in this process (a real Postgres, an in-memory bus): every mode a queued
run's order asks for reaches a bus reader as the run emits it, `messages` and `custom`
included, then the run-ended signal with the final record; a cancel heard on the bus stops a
held run; a swept run gets its end on the bus; and a step costs one database round trip, made
without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypedDict

import pytest

import tether
from conformance.conftest import fresh_schema
from tether.bus import BusEvent, StreamBus
from tether.bus.memory import MemoryBroker, MemoryTransport
from tether.checkpoint.postgres import PostgresSaver
from tether.checkpoint.postgres.queue import Order
from tether.config import get_stream_writer
from tether.graph import END, START, StateGraph
from tether.types import CancelReason, RunInfo, RunStatus
from tether.worker import Worker, WorkerOptions, frames

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]
WAIT = 20.0
BACKGROUND = ("_rows", "sweep")
"""The statements of the worker's own loops (claims, renewals, sweeps), not of a run."""


class Loop(TypedDict):
    n: int
    until: int
    pause: float


async def step(state: Loop) -> dict[str, int]:
    get_stream_writer()({"at": state["n"]})
    await tether.sleep(state["pause"])
    return {"n": state["n"] + 1}


def looping() -> Any:
    builder = StateGraph(Loop)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: "step" if s["n"] < s["until"] else END)
    return builder


class Chat(TypedDict):
    messages: list[Any]


def chatting() -> Any:
    """A node streaming LangChain message chunks with their metadata, as a chat model's
    tokens are streamed (here through the `custom` writer: the engine on main has no
    `messages` mode yet; the bus carries any mode's payloads the same way)."""
    from langchain_core.messages import AIMessage, AIMessageChunk

    async def chat(state: Chat) -> dict[str, Any]:
        write = get_stream_writer()
        for token in ("hello", " there"):
            write((AIMessageChunk(content=token, id="m1"), {"langgraph_node": "chat"}))
        return {"messages": [*state["messages"], AIMessage("hello there", id="m1")]}

    builder = StateGraph(Chat)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    return builder


@pytest.fixture
def store() -> Iterator[PostgresSaver]:
    with fresh_schema() as (dsn, schema):
        made = PostgresSaver(dsn, schema=schema)
        try:
            yield made
        finally:
            made.close()


@pytest.fixture
async def cluster(store: PostgresSaver) -> AsyncIterator[tuple[Worker, StreamBus]]:
    """A worker with an in-memory bus (listen off, long leases: only the bus and the step
    boundaries carry cancels), and a bus reader in the same broker."""
    broker = MemoryBroker()
    worker_bus, reader = StreamBus(MemoryTransport(broker)), StreamBus(MemoryTransport(broker))
    graphs = {"loop": looping().compile(checkpointer=store, name="loop"),
              "chat": chatting().compile(checkpointer=store, name="chat")}
    async with _working(store, graphs, worker_bus, reader, sweep_every=0.05) as worker:
        yield worker, reader


@contextlib.asynccontextmanager
async def _working(store: PostgresSaver, graphs: dict[str, Any], worker_bus: StreamBus,
                   reader: StreamBus, **options: Any) -> AsyncIterator[Worker]:
    """A worker of `graphs` publishing on `worker_bus` (listen off, long leases) while the
    block runs; then it is drained and the buses and the store are closed."""
    worker = Worker(store, graphs, WorkerOptions(lease=30, poll=0.02, listen=False, **options),
                    bus=worker_bus)
    running = asyncio.ensure_future(worker.run())
    try:
        yield worker
    finally:
        worker.drain(force=True)
        await asyncio.wait({running}, timeout=WAIT)
        await worker_bus.aclose()
        await reader.aclose()
        await store.aclose()


def _queue(store: PostgresSaver, graph: str, graph_input: Any, modes: list[str]) -> str:
    thread = uuid.uuid4().hex
    return store.queue.enqueue(Order(
        graph=graph, thread_id=thread, input=graph_input, multitask="enqueue",
        config={"configurable": {"thread_id": thread}}, options={"stream_mode": modes})).run_id


async def _read(bus: StreamBus, run_id: str) -> list[BusEvent]:
    async with asyncio.timeout(WAIT), bus.subscribe(run_id) as events:
        return [event async for event in events]


async def test_every_mode_the_order_asks_for_reaches_the_bus_then_the_end(
        cluster: tuple[Worker, StreamBus], store: PostgresSaver) -> None:
    _worker, reader = cluster
    run_id = _queue(store, "loop", {"n": 0, "until": 3, "pause": 0.0},
                    ["values", "updates", "custom", "lifecycle"])
    events = await _read(reader, run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    decoded = [(e.event, frames.decode(e, store.serde)) for e in events[:-1]]
    assert [p for name, p in decoded if name == "custom"] == [{"at": 0}, {"at": 1}, {"at": 2}]
    assert [p["n"] for name, p in decoded if name == "values"] == [0, 1, 2, 3]
    assert [p for name, p in decoded if name == "updates"] == [{"step": {"n": i}}
                                                                for i in (1, 2, 3)]
    assert [p["phase"] for name, p in decoded if name == "lifecycle"][-1] == "finish"
    final = frames.decode_end(events[-1], store.serde)
    assert isinstance(final, RunInfo) and final.status is RunStatus.SUCCESS
    assert final == store.get_run(run_id)


async def test_message_chunks_arrive_as_message_objects(
        cluster: tuple[Worker, StreamBus], store: PostgresSaver) -> None:
    from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

    _worker, reader = cluster
    run_id = _queue(store, "chat", {"messages": [HumanMessage("hi", id="h1")]},
                    ["custom", "values"])
    events = await _read(reader, run_id)
    decoded = [(e.event, frames.decode(e, store.serde)) for e in events[:-1]]
    tokens = [p for name, p in decoded if name == "custom"]
    assert [(type(chunk), chunk.content, meta) for chunk, meta in tokens] == [
        (AIMessageChunk, "hello", {"langgraph_node": "chat"}),
        (AIMessageChunk, " there", {"langgraph_node": "chat"})]
    last = [p for name, p in decoded if name == "values"][-1]
    assert last["messages"] == [HumanMessage("hi", id="h1"), AIMessage("hello there", id="m1")]


async def test_a_cancel_heard_on_the_bus_stops_a_held_run(
        cluster: tuple[Worker, StreamBus], store: PostgresSaver) -> None:
    worker, reader = cluster
    run_id = _queue(store, "loop", {"n": 0, "until": 10**6, "pause": 5.0}, ["values"])
    async with asyncio.timeout(WAIT):
        while run_id not in worker.held or worker.held[run_id].run is None:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # inside its 5 s step: only the bus can reach it soon
    reason = CancelReason("user", "stop it", "test")
    requested, _ = store.request_cancel(run_id, reason)
    began = time.monotonic()
    await reader.cancel(run_id, store.serde.dumps(requested.reason))
    end = await reader.wait_ended(run_id, WAIT)
    assert time.monotonic() - began < 1.0
    final = frames.decode_end(end, store.serde)
    assert final is not None and final.status is RunStatus.CANCELLED
    assert final.reason is not None and final.reason.message == "stop it"


async def test_a_run_ended_by_a_sweep_gets_its_end_on_the_bus(
        cluster: tuple[Worker, StreamBus], store: PostgresSaver) -> None:
    _worker, reader = cluster
    thread = uuid.uuid4().hex
    run_id = store.queue.enqueue(Order(
        graph="nobody-serves-this", thread_id=thread, input={}, multitask="enqueue",
        config={"configurable": {"thread_id": thread}})).run_id
    store.request_cancel(run_id, CancelReason("user", "never mind", "test"))
    end = await reader.wait_ended(run_id, WAIT)
    final = frames.decode_end(end, store.serde)
    assert final is not None and final.status is RunStatus.CANCELLED


async def test_a_step_costs_one_round_trip_made_without_blocking_the_loop(
        cluster: tuple[Worker, StreamBus], store: PostgresSaver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _worker, reader = cluster
    loop_thread = threading.get_ident()
    blocking: list[str] = []
    awaited: list[str] = []
    real_run, real_arun = type(store.db).run, type(store.db).arun

    def run(db: Any, op: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == loop_thread:
            blocking.append(op.__name__)
        return real_run(db, op, **kwargs)

    async def arun(db: Any, op: Any, **kwargs: Any) -> Any:
        awaited.append(op.__name__)
        return await real_arun(db, op, **kwargs)

    monkeypatch.setattr(type(store.db), "run", run)
    monkeypatch.setattr(type(store.db), "arun", arun)
    run_id = await asyncio.to_thread(_queue, store, "loop", {"n": 0, "until": 40, "pause": 0.0},
                                     ["values"])
    await reader.wait_ended(run_id, WAIT)
    monkeypatch.undo()
    steps = store.load(run_id).step
    assert store.get_run(run_id).status is RunStatus.SUCCESS  # type: ignore[union-attr]
    assert blocking == [], f"blocking store calls on the event loop: {blocking}"
    # One round trip per superstep for its checkpoint (the input's goes with the first step's,
    # the last one with the run's end), plus a few for the claim and the end and the worker's
    # own claims and sweeps meanwhile.
    assert awaited.count("put_chain") == 1
    checkpoints = awaited.count("put") + awaited.count("put_chain")
    assert checkpoints == steps
    own = [name for name in awaited if name not in BACKGROUND]
    assert len(own) - checkpoints <= 4, own


async def test_an_in_process_run_on_postgres_asks_nothing_more_per_step(
        store: PostgresSaver, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = looping().compile(checkpointer=store, name="loop")
    loop_thread = threading.get_ident()
    blocking: list[str] = []
    real_run = type(store.db).run

    def run(db: Any, op: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == loop_thread:
            blocking.append(op.__name__)
        return real_run(db, op, **kwargs)

    monkeypatch.setattr(type(store.db), "run", run)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 100}
    final = await graph.ainvoke({"n": 0, "until": 30, "pause": 0.0}, config)
    monkeypatch.undo()
    assert final["n"] == 30
    assert len(blocking) <= 3, blocking  # the run's record, not one query per step
    await store.aclose()


async def test_a_first_claim_publishes_without_reading_the_bus_first(
        cluster: tuple[Worker, StreamBus], store: PostgresSaver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Epoch 1 (the run's first claim): nothing can be on the bus for it, so the relay numbers
    # its stream from the start instead of asking the bus for the run's last event.
    _worker, reader = cluster
    asked: list[str] = []
    real_last = MemoryTransport.last

    async def last(transport: MemoryTransport, run_id: str) -> BusEvent | None:
        asked.append(run_id)
        return await real_last(transport, run_id)

    monkeypatch.setattr(MemoryTransport, "last", last)
    run_id = _queue(store, "loop", {"n": 0, "until": 2, "pause": 0.0}, ["values"])
    events = await _read(reader, run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].final and len(events) == 4  # values 0, 1, 2, then the end
    assert asked == []


async def test_a_run_taken_over_continues_its_stream_after_the_last_offset(
        store: PostgresSaver) -> None:
    # A worker that claimed the run before (epoch 1) published two events, then handed it
    # back; the next claim (epoch 3) reads the bus and numbers on from offset 3.
    broker = MemoryBroker()
    worker_bus, reader = StreamBus(MemoryTransport(broker)), StreamBus(MemoryTransport(broker))
    run_id = _queue(store, "loop", {"n": 0, "until": 1, "pause": 0.0}, ["custom"])
    (ghost,) = await store.queue.aclaim("ghost", ["loop"], 30, 1, start=True)
    assert ghost.epoch == 1
    earlier = await worker_bus.publisher(run_id)
    earlier.send("custom", frames.encode({"at": "ghost"}, store.serde))
    earlier.send("custom", frames.encode({"at": "ghost"}, store.serde))
    await earlier.flush()
    assert await store.queue.arelease(run_id, ghost.epoch, "ghost", "handed back")
    graphs = {"loop": looping().compile(checkpointer=store, name="loop")}
    async with _working(store, graphs, worker_bus, reader):
        events = await _read(reader, run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    decoded = [frames.decode(e, store.serde) for e in events[:-1]]
    assert decoded == [{"at": "ghost"}, {"at": "ghost"}, {"at": 0}]
    assert events[-1].final
