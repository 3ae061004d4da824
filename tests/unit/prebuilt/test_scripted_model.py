"""`ScriptedChatModel`: plays its script, streams like a provider, records what it was given,
rejects unanswered tool calls, and stalls where told until it is cancelled."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from tether.prebuilt.scripted import DanglingToolCallError, ScriptedChatModel, chunks_of

CALLS = [{"name": "add", "args": {"a": 1, "b": 22}, "id": "c1", "type": "tool_call"},
         {"name": "echo", "args": {"text": "a, b"}, "id": "c2", "type": "tool_call"}]


def test_answers_in_script_order_and_records_each_call() -> None:
    model = ScriptedChatModel(responses=["one", AIMessage("two")])
    assert model.invoke("hi").content == "one"
    assert model.invoke([HumanMessage("again")]).content == "two"
    assert [[m.content for m in call] for call in model.calls] == [["hi"], ["again"]]
    with pytest.raises(IndexError, match="2 responses; call 3"):
        model.invoke("more")


def test_streamed_chunks_add_up_to_the_scripted_answer() -> None:
    answer = AIMessage("Let me  compute that.", tool_calls=CALLS, id="m1")
    pieces = chunks_of(answer)
    assert [p.content for p in pieces[:4]] == ["Let", " ", "me", "  "]
    assert len([p for p in pieces if p.tool_call_chunks]) > len(CALLS)  # args in pieces
    merged = pieces[0]
    for piece in pieces[1:]:
        merged += piece
    assert isinstance(merged, AIMessageChunk)
    assert merged.content == "Let me  compute that."
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [
        (c["name"], c["args"], c["id"]) for c in CALLS]
    assert pieces[-1].chunk_position == "last"


@pytest.mark.anyio
async def test_stream_and_invoke_agree() -> None:
    answer = AIMessage("It is sunny.", tool_calls=CALLS[:1])
    streamed = ScriptedChatModel(responses=[answer])
    text = ""
    async for chunk in streamed.astream("weather?"):
        text += chunk.content
    invoked = await ScriptedChatModel(responses=[answer]).ainvoke("weather?")
    assert text == invoked.content == "It is sunny."
    assert invoked.tool_calls[0]["args"] == {"a": 1, "b": 22}
    assert invoked.response_metadata["finish_reason"] == "tool_calls"


def test_a_tool_call_without_exactly_one_result_is_rejected() -> None:
    history = [HumanMessage("hi"), AIMessage("", tool_calls=CALLS)]
    answered = [*history, ToolMessage("23", tool_call_id="c1"), ToolMessage("x", tool_call_id="c2")]
    with pytest.raises(DanglingToolCallError, match="'c1'"):
        ScriptedChatModel(responses=["ok"]).invoke(history)
    with pytest.raises(DanglingToolCallError, match="'c2' \\(echo\\) has 2 results"):
        ScriptedChatModel(responses=["ok"]).invoke(
            [*answered, ToolMessage("again", tool_call_id="c2")])
    assert ScriptedChatModel(responses=["ok"]).invoke(answered).content == "ok"
    lenient = ScriptedChatModel(responses=["ok"], strict=False)
    assert lenient.invoke(history).content == "ok"


def test_bind_tools_gives_a_binding_in_the_providers_format() -> None:
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    bound = ScriptedChatModel(responses=["3"]).bind_tools([add])
    assert bound.kwargs["tools"][0]["function"]["name"] == "add"
    assert bound.invoke("1+2").content == "3"


@pytest.mark.anyio
async def test_a_stall_waits_mid_stream_until_cancelled() -> None:
    model = ScriptedChatModel(responses=["one two three"], stalls={0: 2})
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in model.astream("go"):
            seen.append(str(chunk.content))

    task = asyncio.create_task(consume())
    while len(seen) < 2:
        await asyncio.sleep(0)
    for _ in range(20):  # it stays stalled
        await asyncio.sleep(0)
    assert seen == ["one", " "]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
