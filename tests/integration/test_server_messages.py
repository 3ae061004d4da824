"""Chat-model tokens over the server, read with the official `langgraph-sdk` client:
`messages-tuple` (`messages` events of `[chunk, metadata]`), the older `messages` form
(`messages/metadata`, `messages/partial`), subgraph namespaces, and the partial answer a stop
keeps in the REST run record."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tether.checkpoint.sqlite import SqliteSaver
from tether.graph import START, MessagesState, StateGraph
from tether.prebuilt.scripted import ScriptedChatModel
from tether.server import create_app

from .server_graphs import LiveServer, eventually

pytestmark = pytest.mark.anyio

ANSWER = "Tokens arrive one by one"
QUESTION = {"messages": [{"role": "user", "content": "hello"}]}


def chat() -> Any:
    llm = ScriptedChatModel(responses=[ANSWER], cycle=True)

    async def model(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    return StateGraph(MessagesState).add_node("model", model).add_edge(START, "model").compile()


def stalling(started: list[int]) -> Any:
    llm = ScriptedChatModel(responses=[ANSWER], stalls={0: 3})

    async def model(state: dict[str, Any]) -> dict[str, Any]:
        started.append(1)
        answer: AIMessageChunk | None = None
        async for piece in llm.astream(state["messages"]):
            answer = piece if answer is None else answer + piece
        return {"messages": [answer]}

    return StateGraph(MessagesState).add_node("model", model).add_edge(START, "model").compile()


def outer() -> Any:
    return (StateGraph(MessagesState).add_node("inner", chat()).add_edge(START, "inner")
            .compile())


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, SqliteSaver]]:
    store = SqliteSaver(tmp_path / "server.db")
    graphs = {"chat": chat(), "stalling": stalling([]), "outer": outer()}
    try:
        with LiveServer(create_app(graphs, store, api_keys={"k": "t"})) as server:
            yield server, store
    finally:
        store.close()


@pytest.fixture
async def client(live: tuple[LiveServer, SqliteSaver]) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=live[0].url, api_key="k") as made:
        yield made


async def test_messages_tuple_streams_each_token_with_its_metadata(
        client: LangGraphClient) -> None:
    parts = [p async for p in client.runs.stream(None, "chat", input=QUESTION,
                                                 stream_mode="messages-tuple")]
    tokens = [p for p in parts if p.event == "messages"]
    assert "".join(t.data[0]["content"] for t in tokens) == ANSWER
    message, metadata = tokens[0].data
    assert message["type"] == "AIMessageChunk" and message["id"]
    assert metadata["langgraph_node"] == "model"
    assert {"langgraph_step", "langgraph_checkpoint_ns", "ls_provider"} <= set(metadata)
    assert {p.event for p in parts} <= {"metadata", "messages"}


async def test_the_older_messages_form_sends_metadata_then_the_message_so_far(
        client: LangGraphClient) -> None:
    parts = [p async for p in client.runs.stream(None, "chat", input=QUESTION,
                                                 stream_mode="messages")]
    events = [p.event for p in parts if p.event.startswith("messages")]
    assert events[0] == "messages/metadata"
    assert set(events[1:]) == {"messages/partial"}
    last = [p for p in parts if p.event == "messages/partial"][-1]
    assert last.data[0]["content"] == ANSWER
    [meta] = [p.data for p in parts if p.event == "messages/metadata"]
    assert next(iter(meta.values()))["metadata"]["langgraph_node"] == "model"


async def test_subgraph_tokens_carry_their_namespace(client: LangGraphClient) -> None:
    parts = [p async for p in client.runs.stream(None, "outer", input=QUESTION,
                                                 stream_mode="messages-tuple",
                                                 stream_subgraphs=True)]
    names = {p.event for p in parts if p.event.startswith("messages")}
    assert len(names) == 1
    [name] = names
    assert name.startswith("messages|inner:")


async def test_a_stop_mid_stream_keeps_the_text_in_the_run_record(
        client: LangGraphClient) -> None:
    thread = await client.threads.create()
    seen: list[str] = []
    run_id = None
    async for part in client.runs.stream(thread["thread_id"], "stalling", input=QUESTION,
                                         stream_mode=["messages-tuple", "values"]):
        if part.event == "metadata":
            run_id = part.data["run_id"]
        if part.event == "messages":
            seen.append(part.data[0]["content"])
            if len(seen) == 3:
                assert run_id is not None
                await client.runs.cancel(thread["thread_id"], run_id)
    assert "".join(seen) == "Tokens arrive"
    assert run_id is not None

    async def ended() -> Any:
        record = await client.runs.get(thread["thread_id"], run_id)
        return record if record["tether_status"] == "cancelled" else None

    record = await eventually(ended, timeout=30)
    [partial] = record["partial_answers"]
    assert partial["text"] == "Tokens arrive"
