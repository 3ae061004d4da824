"""`stream_mode="messages"`: the same program streams the same chat-model chunks, with the same
metadata keys, on LangGraph and tether — sync and async nodes, `invoke()` and `stream()` of the
model, messages a node returns, `nostream`, subgraphs, other modes beside it, an agent."""

import importlib
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from ._agents import LANGGRAPH_DEPRECATIONS, asks, call, get_weather, model
from ._support import Lib

pytestmark = pytest.mark.filterwarnings(LANGGRAPH_DEPRECATIONS)

QUESTION = {"messages": [HumanMessage("hi", id="h1")]}


def _ns_shape(ns: tuple[str, ...]) -> tuple[str, ...]:
    """A namespace without its random task ids: the node names."""
    return tuple(part.split(":")[0] for part in ns)


def _meta_view(meta: dict[str, Any]) -> tuple[Any, ...]:
    shown = {k: v for k, v in meta.items() if k not in ("langgraph_checkpoint_ns",
                                                        "checkpoint_ns", "lc_versions")}
    paths = tuple(_ns_shape(tuple(str(meta.get(k, "")).split("|")))
                  for k in ("langgraph_checkpoint_ns", "checkpoint_ns"))
    return (sorted(meta), repr(sorted(shown.items(), key=lambda kv: kv[0])), paths)


def view(chunk: Any) -> tuple[Any, ...]:
    """One `messages` chunk as both libraries must produce it (ids are random)."""
    ns: tuple[str, ...] = ()
    mode = "messages"
    if len(chunk) == 3:
        ns, mode, chunk = chunk
    elif isinstance(chunk[0], tuple):
        ns, chunk = chunk
    elif isinstance(chunk[0], str):
        mode, chunk = chunk
    if mode != "messages":
        return (mode, _ns_shape(ns), repr(chunk)[:0])
    message, meta = chunk
    return (mode, _ns_shape(ns), type(message).__name__, message.content,
            bool(message.id), _meta_view(meta))


def chat_graph(lib: Lib, node: Any, *, extra: Any = None, sub: Any = None) -> Any:
    State = lib.MessagesState
    builder = lib.StateGraph(State)
    builder.add_node("model", node)
    builder.add_edge(lib.START, "model")
    last = "model"
    if extra is not None:
        builder.add_node("extra", extra)
        builder.add_edge(last, "extra")
        last = "extra"
    if sub is not None:
        inner = lib.StateGraph(State)
        inner.add_node("inner", sub)
        inner.add_edge(lib.START, "inner")
        builder.add_node("sub", inner.compile())
        builder.add_edge(last, "sub")
    return builder.compile()


def sync_invoke(lib: Lib) -> Any:
    llm = model("Hello there, friend", cycle=True)

    def node(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    return node


def sync_stream(lib: Lib) -> Any:
    llm = model("Streamed by hand", cycle=True)

    def node(state: dict[str, Any]) -> dict[str, Any]:
        answer = None
        for piece in llm.stream(state["messages"]):
            answer = piece if answer is None else answer + piece
        return {"messages": [answer]}

    return node


def async_invoke(lib: Lib) -> Any:
    llm = model("Async hello", cycle=True)

    async def node(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"], config)]}

    return node


def async_stream(lib: Lib) -> Any:
    llm = model("Async by hand", cycle=True)

    async def node(state: dict[str, Any]) -> dict[str, Any]:
        answer = None
        async for piece in llm.astream(state["messages"]):
            answer = piece if answer is None else answer + piece
        return {"messages": [answer]}

    return node


NODES = {"sync_invoke": sync_invoke, "sync_stream": sync_stream,
         "async_invoke": async_invoke, "async_stream": async_stream}


@pytest.mark.parametrize("kind", sorted(NODES))
@pytest.mark.anyio
async def test_model_tokens_stream_with_langgraphs_metadata(lib: Lib, lg: Lib, kind: str) -> None:
    async def run(on: Lib) -> list[Any]:
        graph = chat_graph(on, NODES[kind](on))
        config = {"tags": ["mine"], "metadata": {"user": "u1"}}
        got = [view(c) async for c in graph.astream(QUESTION, config, stream_mode="messages")]
        if not kind.startswith("async"):
            got += [view(c) for c in graph.stream(QUESTION, config, stream_mode="messages")]
        return got

    expected = await run(lg)
    assert len(expected) >= 3
    assert await run(lib) == expected


def test_messages_a_node_returns_are_sent_once_and_its_input_never(lib: Lib, lg: Lib) -> None:
    def written(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [AIMessage("written, not streamed", id="w1"), state["messages"][0]]}

    def run(on: Lib) -> list[Any]:
        graph = chat_graph(on, sync_invoke(on), extra=written)
        return [view(c) for c in graph.stream(QUESTION, stream_mode="messages")]

    assert run(lib) == run(lg)


def test_a_model_call_tagged_nostream_is_left_out(lib: Lib, lg: Lib) -> None:
    quiet = model("internal thoughts", cycle=True).with_config(tags=["nostream"])

    def node(state: dict[str, Any]) -> dict[str, Any]:
        quiet.invoke(state["messages"])
        return {}

    def run(on: Lib) -> list[Any]:
        graph = chat_graph(on, node, extra=sync_invoke(on))
        return [view(c) for c in graph.stream(QUESTION, stream_mode="messages")]

    got = run(lib)
    assert got == run(lg)
    assert all("internal" not in str(c[3]) for c in got)


@pytest.mark.parametrize("subgraphs", [False, True])
def test_subgraph_models_stream_under_their_namespace(lib: Lib, lg: Lib,
                                                      subgraphs: bool) -> None:
    def run(on: Lib) -> list[Any]:
        graph = chat_graph(on, sync_invoke(on), sub=sync_stream(on))
        return [view(c) for c in graph.stream(QUESTION, stream_mode="messages",
                                              subgraphs=subgraphs)]

    expected = run(lg)
    assert any(c[1] == ("sub",) for c in expected) == subgraphs
    assert run(lib) == expected


def test_messages_beside_other_modes(lib: Lib, lg: Lib) -> None:
    def run(on: Lib) -> list[Any]:
        graph = chat_graph(on, sync_invoke(on))
        return [view(c) for c in graph.stream(QUESTION, stream_mode=["updates", "messages"])]

    expected = run(lg)
    assert {c[0] for c in expected} == {"updates", "messages"}
    assert run(lib) == expected


def test_an_agent_streams_its_models_tokens_and_its_tool_results(lib: Lib, lg: Lib) -> None:
    def run(on: Lib) -> list[Any]:
        prebuilt = importlib.import_module(f"{on.name}.prebuilt")
        agent = prebuilt.create_react_agent(
            model(asks(call("get_weather", "c1", city="Rome"), text="Let me look."),
                  "Sunny in Rome."), [get_weather])
        return [view(c) for c in agent.stream({"messages": [("user", "weather?")]},
                                              stream_mode="messages")]

    expected = run(lg)
    assert "ToolMessage" in {c[2] for c in expected}
    assert run(lib) == expected


def test_messages_as_v2_stream_parts(lib: Lib, lg: Lib) -> None:
    def run(on: Lib) -> list[Any]:
        graph = chat_graph(on, sync_invoke(on))
        return [(p["type"], _ns_shape(p["ns"]), *view(p["data"])[2:])
                for p in graph.stream(QUESTION, stream_mode=["messages", "updates"],
                                      version="v2")
                if p["type"] == "messages"]

    expected = run(lg)
    assert expected
    assert run(lib) == expected


def test_a_subgraph_of_a_subgraph_streams_under_both_names(lib: Lib, lg: Lib) -> None:
    def run(on: Lib) -> list[Any]:
        leaf = (on.StateGraph(on.MessagesState).add_node("leaf", sync_invoke(on))
                .add_edge(on.START, "leaf").compile())
        mid = (on.StateGraph(on.MessagesState).add_node("inner", leaf)
               .add_edge(on.START, "inner").compile())
        top = (on.StateGraph(on.MessagesState).add_node("mid", mid)
               .add_edge(on.START, "mid").compile())
        return [view(c) for c in top.stream(QUESTION, stream_mode=["messages", "updates"],
                                            subgraphs=True)]

    expected = run(lg)
    assert ("messages", ("mid", "inner")) in {c[:2] for c in expected}
    assert run(lib) == expected


@pytest.mark.anyio
async def test_the_callers_callbacks_and_the_stream_both_get_the_tokens(lib: Lib,
                                                                        lg: Lib) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    class Counting(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens = 0

        def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
            self.tokens += 1

    async def run(on: Lib) -> tuple[list[Any], int]:
        counting = Counting()
        graph = chat_graph(on, async_invoke(on))  # passes its config to the model
        got = [view(c) async for c in graph.astream(QUESTION, {"callbacks": [counting]},
                                                    stream_mode="messages")]
        return got, counting.tokens

    expected = await run(lg)
    assert expected[1] == len(expected[0]) >= 3
    assert await run(lib) == expected
