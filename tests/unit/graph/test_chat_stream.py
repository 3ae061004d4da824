"""The `messages` handler on its own: tokens of a model call become chunks with the task's
metadata, node outputs are sent once, and a call cut short leaves its text behind."""

from __future__ import annotations

import asyncio
import dataclasses
import types
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tracers._streaming import _StreamingCallbackHandler as _Streaming
from pydantic import BaseModel

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
    handler.task_source = dict(TASK)
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


@dataclasses.dataclass
class _DataState:
    messages: list[Any]
    note: str = ""


class _ModelState(BaseModel):
    messages: list[Any]
    count: int = 0


@pytest.mark.parametrize("make", [
    lambda ms: {"count": 1, "note": "x", "messages": ms, "flag": True, "none": None},
    lambda ms: {"messages": tuple(ms), "blob": b"raw"},
    lambda ms: types.MappingProxyType({"messages": ms, "n": 2}),
    lambda ms: _DataState(messages=ms),
    lambda ms: _ModelState(messages=ms),
    list,
    lambda ms: {"mixed": [1, "two", *ms, {"k": 3}]},
], ids=["dict", "tuple-field", "mapping", "dataclass", "pydantic", "list", "mixed-list"])
def test_messages_a_node_was_given_are_found_in_every_state_shape(make: Any) -> None:
    handler, chunks = _collect()
    given = [HumanMessage("a", id="h1"), AIMessage("b"), HumanMessage("c", id="h2")]
    handler.started(make(given))
    assert handler.seen == {"h1", "h2"}  # a message without an id adds nothing (no None)
    handler.finished({"messages": [*given[::2], AIMessage("d", id="a9")]})
    assert [c[0].id for c in chunks] == ["a9"]


def test_a_state_of_plain_values_has_no_messages() -> None:
    handler, _ = _collect()
    handler.started({"count": 1, "limit": 2.5, "name": "n", "on": False, "raw": b"x"})
    handler.started(HumanMessage("only", id="m1"))
    assert handler.seen == {"m1"}


def test_a_returned_message_carries_its_tasks_metadata_without_checkpoint_ns() -> None:
    chunks: list[Any] = []
    config = {"metadata": {**TASK, "checkpoint_ns": "agent:abc"}}
    watch = ChatObserver(stream=True).watch(lambda: config, {"n": 1}, chunks.append)
    try:
        watch.finished({"messages": [AIMessage("done", id="a1")]})
    finally:
        watch.close()
    [(message, metadata)] = chunks
    assert message.id == "a1"
    assert metadata == TASK


@pytest.mark.parametrize("given", [None, "list", "manager"])
def test_the_handler_is_called_once_whatever_callbacks_the_run_was_given(given: Any) -> None:
    chunks: list[Any] = []
    other: list[str] = []

    class Tokens(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            other.append(token)

    config: dict[str, Any] = {"metadata": dict(TASK)}
    if given == "list":
        config["callbacks"] = [Tokens()]
    elif given == "manager":
        tokens = Tokens()
        config["callbacks"] = CallbackManager(handlers=[tokens], inheritable_handlers=[tokens])
    watch = ChatObserver(stream=True).watch(lambda: config, {}, chunks.append)
    try:
        ScriptedChatModel(responses=["a b"]).bind(stop=None).invoke("hi")
    finally:
        watch.close()
    assert [c[0].content for c in chunks] == ["a", " ", "b"]
    assert other == ([] if given is None else ["a", " ", "b"])
