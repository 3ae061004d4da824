"""Callbacks given to a run (`config["callbacks"]`, LangChain's handlers: a tracer, a
token counter) see the run as LangGraph's: the graph's chain run, each node's under it (tagged
with its step), and the chat models and tools a node calls under the node's, with LangGraph's
metadata; a node's error or pause ends its run with that error. (Conditional edges' functions
are not runs of their own: see docs/compat.md.)"""

from __future__ import annotations

import contextlib
import importlib
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


class Tree(BaseCallbackHandler):
    """The runs a handler is told of: (event, run's name, its parent's name, graph tags)."""

    def __init__(self) -> None:
        self.names: dict[Any, str] = {}
        self.seen: list[tuple[str, Any, Any, tuple[str, ...]]] = []

    def _note(self, event: str, run_id: Any, parent: Any, name: str | None,
              tags: list[str] | None = None) -> None:
        if name is not None:
            self.names[run_id] = name
        self.seen.append((event, self.names.get(run_id), self.names.get(parent),
                          tuple(t for t in tags or () if t.startswith("graph:"))))

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any,
                       parent_run_id: Any = None, **kw: Any) -> None:
        self._note("chain_start", run_id, parent_run_id, kw.get("name"), kw.get("tags"))

    def on_chain_end(self, outputs: Any, *, run_id: Any, parent_run_id: Any = None,
                     **kw: Any) -> None:
        self._note("chain_end", run_id, parent_run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: Any, parent_run_id: Any = None,
                       **kw: Any) -> None:
        self._note(f"chain_error {type(error).__name__}", run_id, parent_run_id, None)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any,
                            parent_run_id: Any = None, **kw: Any) -> None:
        self._note("chat_model_start", run_id, parent_run_id, "model")

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: Any,
                      parent_run_id: Any = None, **kw: Any) -> None:
        self._note("tool_start", run_id, parent_run_id, "tool")


def _boom(state: State) -> dict[str, str]:
    raise ValueError("boom")


@pytest.mark.parametrize("case", ["two-nodes", "named", "error", "pause"])
async def test_the_runs_tree_is_langgraphs(lib: Lib, lg: Lib, case: str) -> None:
    async def tree(of: Lib) -> Any:
        handler = Tree()
        config: dict[str, Any] = {"callbacks": [handler], "configurable": {"thread_id": "t"}}
        if case in ("two-nodes", "named"):
            graph = _graph(of) if case == "two-nodes" else _graph(of).with_config(
                run_name="my run")
        else:
            types = importlib.import_module(f"{of.name}.types")

            def pause(state: State) -> dict[str, str]:
                return {"text": types.interrupt("go?")}

            builder = of.StateGraph(State)
            builder.add_node("node", _boom if case == "error" else pause)
            builder.add_edge(of.START, "node")
            graph = builder.compile(checkpointer=of.InMemorySaver(), name="Named")
        with contextlib.suppress(ValueError):  # the failing node's
            await graph.ainvoke({"text": "hello"}, config)
        return handler.seen

    got, expected = await tree(lib), await tree(lg)
    assert got == expected
    root = {"two-nodes": "LangGraph", "named": "my run"}.get(case, "Named")
    assert got[0][:3] == ("chain_start", root, None)


@pytest.mark.parametrize("when", ["in-the-node", "between-steps"])
async def test_a_cancelled_runs_trace_ends_every_run_it_began(when: str) -> None:
    # tether's own: a stop ends the node's run and the graph's with errors (none left open).
    import anyio

    from ._support import load

    tether = load("tether")
    handler, reached = Tree(), anyio.Event()

    async def first(state: State) -> dict[str, str]:
        if when == "in-the-node":
            reached.set()
            await anyio.sleep(60)
        return {"text": "first"}

    async def second(state: State) -> dict[str, str]:
        reached.set()
        await anyio.sleep(60)
        return {"text": "second"}

    builder = tether.StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(tether.START, "first")
    builder.add_edge("first", "second")
    run = builder.compile().astream({"text": ""}, {"callbacks": [handler]})
    await reached.wait()
    await run.cancel()
    began = [name for event, name, _parent, _tags in handler.seen if event == "chain_start"]
    ended = [(event, name) for event, name, _parent, _tags in handler.seen
             if event.startswith("chain_e")]
    assert sorted(began) == sorted(name for _event, name in ended)
    assert ended[-1] == ("chain_error RunCancelled", "LangGraph")
    assert ended[-2][0].startswith("chain_error") and ended[-2][1] == began[-1]
