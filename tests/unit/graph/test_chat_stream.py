"""The `messages` stream handler on its own: tokens of a model call become chunks with the
task's metadata, node outputs are sent once, and a call cut short leaves its text behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from tether.graph.chat_stream import MessageStream
from tether.prebuilt.scripted import ScriptedChatModel

TASK = {"langgraph_node": "agent", "langgraph_step": 1, "langgraph_checkpoint_ns": "agent:abc"}


def _collect(subgraphs: bool = False) -> tuple[MessageStream, list[Any]]:
    chunks: list[Any] = []
    handler = MessageStream(lambda ns, item: chunks.append((ns, item)), subgraphs=subgraphs)
    return handler, chunks


def test_invoke_streams_tokens_with_the_tasks_metadata() -> None:
    handler, chunks = _collect()
    model = ScriptedChatModel(responses=["Hello there"])
    answer = model.invoke("hi", {"callbacks": [handler], "metadata": dict(TASK)})
    assert answer.content == "Hello there"
    assert [c[1][0].content for c in chunks] == ["Hello", " ", "there"]
    ns, (_, metadata) = chunks[0]
    assert ns == ()
    assert {k: metadata[k] for k in TASK} == TASK
    assert metadata["ls_model_type"] == "chat"
    assert handler.take_partial("agent:abc") is None  # it finished


def test_a_model_call_tagged_nostream_or_in_a_subgraph_is_not_streamed() -> None:
    handler, chunks = _collect()
    ScriptedChatModel(responses=["quiet"]).invoke(
        "hi", {"callbacks": [handler], "metadata": dict(TASK), "tags": ["nostream"]})
    inner = {**TASK, "langgraph_checkpoint_ns": "outer:1|agent:abc"}
    ScriptedChatModel(responses=["nested"]).invoke("hi", {"callbacks": [handler],
                                                          "metadata": inner})
    assert chunks == []
    handler, chunks = _collect(subgraphs=True)
    ScriptedChatModel(responses=["nested"]).invoke("hi", {"callbacks": [handler],
                                                          "metadata": dict(inner)})
    assert {c[0] for c in chunks} == {("outer:1",)}


@pytest.mark.anyio
async def test_a_call_cut_short_keeps_its_streamed_text() -> None:
    handler, chunks = _collect()
    model = ScriptedChatModel(responses=["The answer is forty two"], stalls={0: 3})
    call = asyncio.ensure_future(model.ainvoke("q", {"callbacks": [handler],
                                                    "metadata": dict(TASK)}))
    while len(chunks) < 3:
        await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    partial = handler.take_partial("agent:abc")
    assert partial is not None
    assert partial.text == "The answer"
    assert partial.id is not None
    assert handler.take_partial("agent:abc") is None  # taken once


def test_node_outputs_are_sent_once_and_inputs_never() -> None:
    handler, chunks = _collect()
    old, new = HumanMessage("hi", id="h1"), AIMessage("hello", id="a1")
    handler.node_started(TASK, {"messages": [old]})
    handler.node_finished(TASK, {"messages": [old, new]})
    handler.node_finished(TASK, {"messages": [new]})
    assert [(c[1][0].id, c[1][1]["langgraph_node"]) for c in chunks] == [("a1", "agent")]
