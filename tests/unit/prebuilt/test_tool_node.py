"""`ToolNode` on its own (tether lets it run outside a graph too): input shapes, concurrency,
failures, injection, and call interceptors."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from tether.prebuilt import InjectedState, InjectedStore, ToolNode, ToolRuntime
from tether.prebuilt.tool_node import ToolCallRequest


def _call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _view(messages: list[Any]) -> list[tuple[str, Any, str]]:
    return [(m.tool_call_id, m.content, m.status) for m in messages]


def test_a_list_of_messages_gives_a_list_and_other_inputs_an_update() -> None:
    node = ToolNode([add])
    calls = [_call("add", "a", a=1, b=1), _call("add", "b", a=2, b=2)]
    assert _view(node.invoke([AIMessage("", tool_calls=calls)])) == [
        ("a", "2", "success"), ("b", "4", "success")]
    assert _view(node.invoke(calls)["messages"]) == [("a", "2", "success"), ("b", "4", "success")]
    assert _view(node.invoke({"messages": [AIMessage("", tool_calls=calls)]})["messages"]) == [
        ("a", "2", "success"), ("b", "4", "success")]


def test_input_without_messages_or_model_turn_is_refused() -> None:
    node = ToolNode([add])
    with pytest.raises(ValueError, match="No message found"):
        node.invoke({"messages": []})
    with pytest.raises(ValueError, match="No AIMessage"):
        node.invoke({"messages": [ToolMessage("x", tool_call_id="1")]})


@pytest.mark.anyio
async def test_a_failing_call_cancels_the_others_and_fails_the_node() -> None:
    cancelled = asyncio.Event()

    @tool
    async def slow() -> str:
        """Waits for ever."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    @tool
    async def broken() -> str:
        """Fails once the slow call is running."""
        await asyncio.sleep(0)
        raise RuntimeError("broken tool")

    node = ToolNode([slow, broken])
    with pytest.raises(RuntimeError, match="broken tool"):
        await node.ainvoke([_call("slow", "1"), _call("broken", "2")])
    assert cancelled.is_set()


def test_injected_values_cannot_be_forged_by_the_model() -> None:
    @tool
    def whoami(user: Annotated[str, InjectedState("user")], runtime: ToolRuntime) -> str:
        """Says who the user is."""
        return f"{user} ({runtime.tool_call_id})"

    node = ToolNode([whoami])
    state = {"user": "ada", "messages": [AIMessage("", tool_calls=[
        _call("whoami", "w1", user="mallory", runtime="forged")])]}
    assert _view(node.invoke(state)["messages"]) == [("w1", "ada (w1)", "success")]
    assert set(whoami.tool_call_schema.model_json_schema()["properties"]) == set()


def test_a_tool_wanting_the_store_fails_clearly_without_one() -> None:
    @tool
    def remember(key: str, store: Annotated[Any, InjectedStore()]) -> str:
        """Stores a key."""
        return key

    node = ToolNode([remember], handle_tool_errors=False)
    with pytest.raises(ValueError, match="compile your graph with a store"):
        node.invoke([_call("remember", "1", key="k")])


@pytest.mark.anyio
async def test_async_interceptor_may_retry_and_rewrite_calls() -> None:
    seen: list[dict[str, Any]] = []

    async def double_then_retry(request: ToolCallRequest, execute: Any) -> Any:
        seen.append(request.tool_call["args"])
        doubled = {**request.tool_call, "args": {k: v * 2 for k, v in
                                                  request.tool_call["args"].items()}}
        first = await execute(request.override(tool_call=doubled))
        return await execute(request) if first.content == "0" else first

    node = ToolNode([add], awrap_tool_call=double_then_retry)
    out = await node.ainvoke([_call("add", "1", a=1, b=2), _call("add", "2", a=0, b=0)])
    assert _view(out["messages"]) == [("1", "6", "success"), ("2", "0", "success")]
    assert seen == [{"a": 1, "b": 2}, {"a": 0, "b": 0}]


def test_sync_interceptor_runs_in_a_thread_and_executes_on_the_loop() -> None:
    threads: list[bool] = []

    def short_circuit(request: ToolCallRequest, execute: Any) -> Any:
        threads.append(threading.current_thread() is threading.main_thread())
        if request.tool_call["args"]["a"] < 0:
            return ToolMessage("negative", tool_call_id=request.tool_call["id"])
        return execute(request)

    node = ToolNode([add], wrap_tool_call=short_circuit)
    out = node.invoke([_call("add", "1", a=-1, b=2), _call("add", "2", a=1, b=2)])["messages"]
    assert _view(out) == [("1", "negative", "success"), ("2", "3", "success")]
    assert threads == [False, False]


def test_an_interceptor_that_raises_is_handled_like_a_tool_failure() -> None:
    def broken(request: ToolCallRequest, execute: Any) -> Any:
        raise KeyError("interceptor")

    out = ToolNode([add], wrap_tool_call=broken, handle_tool_errors=True).invoke(
        [_call("add", "1", a=1, b=2)])["messages"]
    assert out[0].status == "error"
    assert "interceptor" in out[0].content
    with pytest.raises(KeyError):
        ToolNode([add], wrap_tool_call=broken, handle_tool_errors=False).invoke(
            [_call("add", "1", a=1, b=2)])


def test_each_call_counts_toward_the_runs_tool_call_budget() -> None:
    import tether
    from tether.prebuilt import create_react_agent
    from tether.prebuilt.scripted import ScriptedChatModel

    seen: list[int] = []

    def probe(x: int) -> int:
        """Reports how many tool calls the run has counted."""
        seen.append(tether.usage().tool_calls)
        return x

    calls = [_call("probe", str(i), x=i) for i in range(3)]
    model = ScriptedChatModel(responses=[AIMessage("", tool_calls=calls),
                                         AIMessage("", tool_calls=calls), "done"])
    agent = create_react_agent(model, [probe])
    with pytest.raises(tether.RunCancelled) as stopped:
        agent.invoke({"messages": [("user", "go")]}, {"budget": {"tool_calls": 4}})
    assert stopped.value.reason.kind == "budget"
    assert "tool_calls" in stopped.value.reason.message
    assert max(seen[:3]) == 3  # the first round's three calls were counted as they started
