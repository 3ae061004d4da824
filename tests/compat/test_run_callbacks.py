"""Callbacks given to a run (`config["callbacks"]`, LangChain's handlers: a tracer, a
token counter) see the chat models and tools its nodes call, with LangGraph's metadata, in a
graph that holds no conversation and streams no tokens too. (The graph's and its nodes' own
chain events are not emitted: see docs/compat.md.)"""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from ._support import Lib

pytestmark = pytest.mark.anyio


class Calls(BaseCallbackHandler):
    """What a handler is told of model and tool calls: (event, node, step, the input's text)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, Any, str]] = []

    def _note(self, event: str, metadata: dict[str, Any] | None, what: str) -> None:
        metadata = metadata or {}
        self.seen.append((event, metadata.get("langgraph_node"),
                          metadata.get("langgraph_step"), what))

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self._note("chat_model_start", kw.get("metadata"), messages[0][-1].content)

    def on_llm_end(self, response: Any, **kw: Any) -> None:
        self.seen.append(("llm_end", None, None, response.generations[0][0].text))

    def on_tool_start(self, serialized: Any, input_str: str, **kw: Any) -> None:
        self._note("tool_start", kw.get("metadata"), input_str)


class State(TypedDict):
    text: str


@tool
def shout(text: str) -> str:
    """Say it louder."""
    return text.upper()


def _graph(lib: Lib) -> Any:
    model = GenericFakeChatModel(messages=iter([AIMessage("first answer"),
                                                AIMessage("second answer")]))

    def ask(state: State) -> dict[str, str]:
        return {"text": str(model.invoke(state["text"]).content)}

    def again(state: State) -> dict[str, str]:
        answer = model.invoke(state["text"] + "?")
        return {"text": shout.invoke({"text": str(answer.content)})}

    builder = lib.StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("again", again)
    builder.add_edge(lib.START, "ask")
    builder.add_edge("ask", "again")
    return builder.compile()


@pytest.mark.parametrize("call", ["invoke", "ainvoke", "stream"])
async def test_a_runs_callbacks_see_its_model_and_tool_calls_as_langgraphs_do(
        lib: Lib, lg: Lib, call: str) -> None:
    async def seen(of: Lib) -> Any:
        handler, graph = Calls(), _graph(of)
        config = {"callbacks": [handler]}
        if call == "invoke":
            out = graph.invoke({"text": "hello"}, config)
        elif call == "ainvoke":
            out = await graph.ainvoke({"text": "hello"}, config)
        else:
            out = list(graph.stream({"text": "hello"}, config, stream_mode="values"))[-1]
        return out, handler.seen

    got, expected = await seen(lib), await seen(lg)
    assert got == expected
    assert got[1] == [("chat_model_start", "ask", 1, "hello"), ("llm_end", None, None,
                                                                "first answer"),
                      ("chat_model_start", "again", 2, "first answer?"),
                      ("llm_end", None, None, "second answer"),
                      ("tool_start", "again", 2, "{'text': 'second answer'}")]
