"""The `messages` handler on its own: tokens of a model call become chunks with the task's
metadata, node outputs are sent once, and a call cut short leaves its text behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tracers._streaming import _StreamingCallbackHandler as _Streaming

from tether.graph.chat_stream import ChatObserver, ModelCalls, StreamingModelCalls
from tether.prebuilt.scripted import ScriptedChatModel

TASK = {"langgraph_node": "agent", "langgraph_step": 1, "langgraph_checkpoint_ns": "agent:abc"}


def _collect() -> tuple[ModelCalls, list[Any]]:
    chunks: list[Any] = []
    return StreamingModelCalls(chunks.append), chunks


def test_invoke_streams_tokens_with_the_tasks_metadata() -> None:
    handler, chunks = _collect()
    model = ScriptedChatModel(responses=["Hello there"])
    answer = model.invoke("hi", {"callbacks": [handler], "metadata": dict(TASK)})
    assert answer.content == "Hello there"
    assert [c[0].content for c in chunks] == ["Hello", " ", "there"]
    _, metadata = chunks[0]
    assert {k: metadata[k] for k in TASK} == TASK
    assert metadata["ls_model_type"] == "chat"
    assert handler.close() == []  # it finished


def test_a_model_call_tagged_nostream_is_neither_streamed_nor_kept() -> None:
    handler, chunks = _collect()
    model = ScriptedChatModel(responses=["quiet"])
    model.invoke("hi", {"callbacks": [handler], "metadata": dict(TASK), "tags": ["nostream"]})
    assert chunks == []


def test_the_recording_handler_sends_nothing_and_does_not_make_invoke_stream() -> None:
    handler = ModelCalls(None)
    assert not isinstance(handler, _Streaming)  # LangChain would make every call stream
    assert isinstance(StreamingModelCalls(None), _Streaming)
    model = ScriptedChatModel(responses=["plain answer"])
    model.invoke("hi", {"callbacks": [handler], "metadata": dict(TASK)})
    assert handler.streamed == {}
    assert handler.close() == []


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
    [partial] = handler.close()
    assert partial["text"] == "The answer"
    assert partial["id"] is not None
    assert partial["name"] is None


def test_node_outputs_are_sent_once_and_inputs_never() -> None:
    handler, chunks = _collect()
    handler.task_metadata = dict(TASK)
    old, new = HumanMessage("hi", id="h1"), AIMessage("hello", id="a1")
    handler.started({"messages": [old]})
    handler.finished({"messages": [old, new]})
    handler.finished({"messages": [new]})
    assert [(c[0].id, c[1]["langgraph_node"]) for c in chunks] == [("a1", "agent")]


def test_the_observer_makes_its_handler_the_callbacks_of_the_nodes_code() -> None:
    chunks: list[Any] = []
    config = {"metadata": dict(TASK), "tags": ["mine"], "configurable": {"thread_id": "t"}}
    watch = ChatObserver(stream=True).watch(lambda: config, {"messages": []}, chunks.append)
    try:
        ScriptedChatModel(responses=["a b"]).invoke("hi")  # no config passed: inherited
    finally:
        assert watch.close() == []
    assert [c[0].content for c in chunks] == ["a", " ", "b"]
    assert chunks[0][1]["tags"] == ["mine"]
    ScriptedChatModel(responses=["after"]).invoke("hi")
    assert len(chunks) == 3  # closed: the handler is no longer inherited
