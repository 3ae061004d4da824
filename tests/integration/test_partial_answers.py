""""Stop generating": a model node stopped mid-stream keeps the text streamed so far with the run
(a `__partial__` pending write on the final checkpoint, `store.load(run_id).partial_answers`),
whatever stopped it and whether or not the caller streamed `messages`; exactly once; none when
the model had finished; and `graph.resume` reruns the model cleanly. SQLite and Postgres."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from tether.checkpoint.base import CheckpointStore
from tether.constants import PARTIAL
from tether.errors import NodeTimeoutError, RunCancelled
from tether.graph import START, MessagesState, StateGraph
from tether.prebuilt.scripted import ScriptedChatModel
from tether.types import RunStatus

pytestmark = pytest.mark.anyio

ANSWER = "The answer is forty two"
QUESTION = {"messages": [HumanMessage("what is it?", id="q1")]}


def thread(name: str = "t", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}, **extra}


def streaming_node(llm: ScriptedChatModel, streamed: asyncio.Event | None = None,
                   after: int = 3) -> Any:
    """A model node that streams its model by hand (no `messages` needed to keep the text)."""

    async def model(state: dict[str, Any]) -> dict[str, Any]:
        answer: AIMessageChunk | None = None
        count = 0
        async for piece in llm.astream(state["messages"]):
            answer = piece if answer is None else answer + piece
            count += 1
            if streamed is not None and count == after:
                streamed.set()
        return {"messages": [answer]}

    return model


def graph_of(node: Any, saver: CheckpointStore, **options: Any) -> Any:
    return (StateGraph(MessagesState).add_node("model", node, **options)
            .add_edge(START, "model").compile(checkpointer=saver))


def partial_writes(saver: CheckpointStore, run_id: str) -> list[Any]:
    info = saver.get_run(run_id)
    assert info is not None and info.checkpoint_id is not None and info.thread_id is not None
    checkpoint = saver.get_checkpoint(info.thread_id, "", info.checkpoint_id)
    assert checkpoint is not None
    return [w.value for w in checkpoint.pending_writes if w.channel == PARTIAL]


async def test_a_cancel_mid_stream_keeps_the_text_the_user_saw(saver: CheckpointStore) -> None:
    llm = ScriptedChatModel(responses=[ANSWER], stalls={0: 3})

    async def model(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    graph = graph_of(model, saver)
    run = graph.astream(QUESTION, thread(), stream_mode="messages")
    seen: list[str] = []
    async for message, _meta in run:
        seen.append(message.content)
        if len(seen) == 3:
            await run.cancel("Stop generating")
            break
    assert "".join(seen) == "The answer"
    info = await graph.await_run(run.run_id)
    assert info.status is RunStatus.CANCELLED
    snapshot = saver.load(run.run_id)
    [partial] = snapshot.partial_answers
    assert partial["text"] == "The answer"
    assert partial["id"] is not None and partial["name"] is None
    assert partial_writes(saver, run.run_id) == [partial]  # exactly once
    assert snapshot.pending_writes == ()  # not an output of the node


async def test_the_text_is_kept_when_the_caller_did_not_stream_messages(
        saver: CheckpointStore) -> None:
    streamed = asyncio.Event()
    llm = ScriptedChatModel(responses=[ANSWER], stalls={0: 5})
    graph = graph_of(streaming_node(llm, streamed, after=5), saver)
    run = graph.astream(QUESTION, thread(), stream_mode="values")
    waiter = asyncio.ensure_future(streamed.wait())
    await asyncio.wait_for(waiter, 30)
    await run.cancel("new question")
    await graph.await_run(run.run_id)
    assert [p["text"] for p in saver.load(run.run_id).partial_answers] == ["The answer is"]


async def test_a_node_timeout_keeps_the_text(saver: CheckpointStore) -> None:
    llm = ScriptedChatModel(responses=[ANSWER], stalls={0: 3})
    graph = graph_of(streaming_node(llm), saver, timeout=0.5)
    with pytest.raises(NodeTimeoutError):
        await graph.ainvoke(QUESTION, thread())
    [info] = graph.list_runs("t")
    assert info.status is RunStatus.TIMEOUT
    assert [p["text"] for p in saver.load(info.run_id).partial_answers] == ["The answer"]


async def test_a_run_timeout_keeps_the_text_of_a_sync_node(saver: CheckpointStore) -> None:
    llm = ScriptedChatModel(responses=[ANSWER], stalls={0: 3})

    def model(state: dict[str, Any]) -> dict[str, Any]:  # stops cooperatively (sleep_sync)
        answer = None
        for piece in llm.stream(state["messages"]):
            answer = piece if answer is None else answer + piece
        return {"messages": [answer]}

    graph = graph_of(model, saver)
    with pytest.raises(RunCancelled):
        await graph.ainvoke(QUESTION, thread(timeout=0.5))
    [info] = graph.list_runs("t")
    assert info.status is RunStatus.TIMEOUT
    assert [p["text"] for p in saver.load(info.run_id).partial_answers] == ["The answer"]


async def test_no_partial_when_the_model_had_finished(saver: CheckpointStore) -> None:
    llm = ScriptedChatModel(responses=[ANSWER])
    finished = asyncio.Event()

    async def model(state: dict[str, Any]) -> dict[str, Any]:
        answer = await llm.ainvoke(state["messages"])
        finished.set()
        await asyncio.sleep(3600)  # stopped after the answer, before the node returns
        return {"messages": [answer]}

    graph = graph_of(model, saver)
    run = graph.astream(QUESTION, thread(), stream_mode="messages")
    await asyncio.wait_for(finished.wait(), 30)
    await run.cancel("too slow")
    await graph.await_run(run.run_id)
    assert saver.load(run.run_id).partial_answers == ()
    assert partial_writes(saver, run.run_id) == []


async def test_resume_reruns_the_model_cleanly(saver: CheckpointStore) -> None:
    streamed = asyncio.Event()
    llm = ScriptedChatModel(responses=[ANSWER, ANSWER], stalls={0: 3})
    graph = graph_of(streaming_node(llm, streamed), saver)
    run = graph.astream(QUESTION, thread())
    await asyncio.wait_for(streamed.wait(), 30)
    await run.cancel("stop")
    await graph.await_run(run.run_id)
    assert len(saver.load(run.run_id).partial_answers) == 1

    resumed = graph.resume(run.run_id)
    final = await resumed.result()
    assert [m.content for m in final["messages"]] == ["what is it?", ANSWER]
    assert [m.content for m in llm.calls[1]] == ["what is it?"]  # the partial was not fed back
    assert saver.load(resumed.run_id).partial_answers == ()


async def test_an_answer_cut_short_in_a_subgraph_is_kept_with_the_run(
        saver: CheckpointStore) -> None:
    streamed = asyncio.Event()
    llm = ScriptedChatModel(responses=[ANSWER], stalls={0: 3})
    inner = (StateGraph(MessagesState).add_node("model", streaming_node(llm, streamed))
             .add_edge(START, "model").compile())
    graph = (StateGraph(MessagesState).add_node("agent", inner).add_edge(START, "agent")
             .compile(checkpointer=saver))
    run = graph.astream(QUESTION, thread())
    await asyncio.wait_for(streamed.wait(), 30)
    await run.cancel("stop")
    await graph.await_run(run.run_id)
    assert [p["text"] for p in saver.load(run.run_id).partial_answers] == ["The answer"]
    assert len(partial_writes(saver, run.run_id)) == 1
