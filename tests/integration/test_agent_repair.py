"""The repair of a thread a stopped run left open, beyond the phases of one turn: the partial
answer kept exactly once, every kind of stop (error, timeout), `repair_after_stop=False`, a
`ToolNode` in a graph of one's own (each call its own unit), per-call timeouts, a new query
superseding a running agent (locally and through the REST API with the official SDK)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph_sdk import get_client

import tether
from tether.checkpoint.base import WriteRecord
from tether.checkpoint.sqlite import SqliteSaver
from tether.constants import CANCELLED, PARTIAL
from tether.errors import NodeTimeoutError, RunCancelled, RunTimeout
from tether.graph import StateGraph
from tether.graph.message import add_messages
from tether.prebuilt import ToolNode, create_react_agent, tools_condition
from tether.prebuilt.scripted import ScriptedChatModel, check_tool_results

from .server_graphs import KEYS, LiveServer, eventually
from .test_agent_turns import WAIT, tool_call, until

pytestmark = pytest.mark.anyio


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


class Gate:
    """A tool that waits (cancellably) on its first call and answers at once afterwards."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()

    async def __call__(self, x: int) -> str:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            await tether.sleep(WAIT * 4)
        return f"slow({x})"


def calls_slow_and_fast(*more: Any) -> list[Any]:
    return [AIMessage(content="", tool_calls=[tool_call("slow", "c-slow", x=1),
                                              tool_call("fast", "c-fast", x=2)]), *more]


def tools(gate: Gate, ran: Counter[str]) -> list[Any]:
    @tool
    async def slow(x: int) -> str:
        """Slow."""
        ran["slow"] += 1
        return await gate(x)

    @tool
    def fast(x: int) -> str:
        """Fast."""
        ran["fast"] += 1
        return f"fast({x})"

    return [slow, fast]


async def kept_partial(graph: Any, thread_id: str, text: str) -> None:
    """What the stream helper's model node leaves when stopped mid-answer: a pending write on
    `PARTIAL` of the stopped run's final checkpoint (written here by hand)."""
    latest = await graph.checkpointer.aget_checkpoint(thread_id, "", None)
    stopped = next(w for w in latest.pending_writes if w.channel == CANCELLED)
    assert stopped.task_name == "agent"  # written as the stopped model task's
    await graph.checkpointer.aput_writes(thread_id, "", latest.id, [WriteRecord(
        stopped.task_id, "agent", 0, PARTIAL, {"text": text, "id": "msg-partial",
                                               "name": None})])


async def test_a_partial_answer_is_kept_once_on_a_new_message_and_not_on_resume(
        tmp_path: Path) -> None:
    store = SqliteSaver(str(tmp_path / "p.db"))
    model = ScriptedChatModel(responses=["never seen", "fine", "never seen either", "go on",
                                         "and"], stalls={0: 0, 2: 0})
    graph = create_react_agent(model, [], checkpointer=store)
    run = graph.start({"messages": [("user", "hi")]}, thread("p"))
    await until(lambda: len(model.calls) == 1, "the model call")
    await graph.acancel(run.run_id)
    await kept_partial(graph, "p", "The answer is")
    resumed = await graph.resume(run.run_id).result()
    assert [m.content for m in resumed["messages"]] == ["hi", "fine"]  # not fed back
    run2 = graph.start({"messages": [("user", "hi")]}, thread("p2"))
    await until(lambda: len(model.calls) == 3, "the second thread's model call")
    await graph.acancel(run2.run_id)
    await kept_partial(graph, "p2", "The answer is")
    out = await graph.ainvoke({"messages": [("user", "go on")]}, thread("p2"))
    again = await graph.ainvoke({"messages": [("user", "and?")]}, thread("p2"))
    partial = [m for m in again["messages"] if m.content == "The answer is"]
    assert len(partial) == 1 and out["messages"][1] == partial[0]
    assert partial[0].type == "ai" and not partial[0].tool_calls
    assert partial[0].response_metadata["finish_reason"] == "cancelled"
    assert [m.type for m in again["messages"]] == ["human", "ai", "human", "ai", "human", "ai"]
    store.close()


async def test_a_failed_run_and_a_timed_out_run_are_repaired_with_their_reason(
        tmp_path: Path) -> None:
    store = SqliteSaver(str(tmp_path / "e.db"))

    @tool
    def broken(x: int) -> str:
        """Fails."""
        raise ValueError("disk on fire")

    gate, ran = Gate(), Counter[str]()
    model = ScriptedChatModel(responses=[
        AIMessage(content="", tool_calls=[tool_call("broken", "c1", x=1)]), "ok",
        AIMessage(content="", tool_calls=[tool_call("slow", "c2", x=1)]), "ok again"])
    node = ToolNode([broken, *tools(gate, ran)], handle_tool_errors=False)
    graph = create_react_agent(model, node, checkpointer=store)
    with pytest.raises(ValueError, match="disk on fire"):
        await graph.ainvoke({"messages": [("user", "hi")]}, thread("e"))
    out = await graph.ainvoke({"messages": [("user", "again")]}, thread("e"))
    answer = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert answer.status == "error" and answer.content.startswith("Cancelled: ")
    assert "disk on fire" in answer.content
    with pytest.raises(RunTimeout):
        await graph.ainvoke({"messages": [("user", "slow please")]},
                            {**thread("e"), "timeout": 0.5})
    out = await graph.ainvoke({"messages": [("user", "still there?")]}, thread("e"))
    check_tool_results(out["messages"])
    last_answer = [m for m in out["messages"] if isinstance(m, ToolMessage)][-1]
    assert last_answer.content == "Cancelled: run exceeded its timeout of 0.5s"
    store.close()


async def test_repair_after_stop_false_leaves_the_thread_as_the_stop_left_it(
        tmp_path: Path) -> None:
    store = SqliteSaver(str(tmp_path / "off.db"))
    gate, ran = Gate(), Counter[str]()
    model = ScriptedChatModel(responses=calls_slow_and_fast("unreached", "unreached"))
    agent = create_react_agent(model, tools(gate, ran))
    graph = agent.builder.compile(checkpointer=store, repair_after_stop=False)
    run = graph.start({"messages": [("user", "hi")]}, thread("off"))
    await asyncio.to_thread(gate.entered.wait, WAIT)
    await graph.acancel(run.run_id)
    with pytest.raises(ValueError, match="do not have a corresponding ToolMessage"):
        await graph.ainvoke({"messages": [("user", "again")]}, thread("off"))
    with pytest.raises(TypeError, match="repair_after_stop"):
        agent.builder.compile(checkpointer=store, repair_after_stop="yes")
    store.close()


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def own_graph(model: Any, node: ToolNode, store: Any) -> Any:
    """A chat graph written by hand: a model node, a `ToolNode`, `tools_condition`."""
    async def agent(state: Chat) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(Chat)
    builder.add_node("agent", agent)
    builder.add_node("tools", node)
    builder.set_entry_point("agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=store)


@pytest.mark.parametrize("then", ["new-message", "resume"])
async def test_each_call_of_a_tool_node_is_its_own_unit(tmp_path: Path, then: str) -> None:
    store = SqliteSaver(str(tmp_path / "own.db"))
    gate, ran = Gate(), Counter[str]()
    model = ScriptedChatModel(responses=calls_slow_and_fast("done", "done again"))
    graph = own_graph(model, ToolNode(tools(gate, ran)), store)
    run = graph.start({"messages": [("user", "hi")]}, thread("own"))
    await asyncio.to_thread(gate.entered.wait, WAIT)
    await until(lambda: ran["fast"] == 1, "the fast call")
    await eventually(lambda: _kept(store, "own", "c-fast"), WAIT)
    await graph.acancel(run.run_id)
    if then == "resume":
        out = await graph.resume(run.run_id).result()
        assert ran == Counter({"slow": 2, "fast": 1})  # only the unfinished call again
        assert [m.content for m in out["messages"] if isinstance(m, ToolMessage)] == [
            "slow(1)", "fast(2)"]
    else:
        out = await graph.ainvoke({"messages": [("user", "again")]}, thread("own"))
        assert ran == Counter({"slow": 1, "fast": 1})
        assert [(m.tool_call_id, m.content) for m in out["messages"]
                if isinstance(m, ToolMessage)] == [
            ("c-slow", "Cancelled: cancelled by request"), ("c-fast", "fast(2)")]
    check_tool_results(model.calls[-1])
    store.close()


async def _kept(store: SqliteSaver, thread_id: str, call_id: str) -> bool:
    latest = await store.aget_checkpoint(thread_id, "", None)
    return latest is not None and any(
        getattr(w.value, "tool_call_id", None) == call_id for w in latest.pending_writes)


@pytest.mark.parametrize("handle", [True, False])
async def test_a_tool_call_over_its_timeout_is_answered_or_fails_per_handle_tool_errors(
        tmp_path: Path, handle: bool) -> None:
    store = SqliteSaver(str(tmp_path / "t.db"))
    gate, ran = Gate(), Counter[str]()
    model = ScriptedChatModel(responses=calls_slow_and_fast("done"))
    node = ToolNode(tools(gate, ran), timeout=0.2, handle_tool_errors=handle)
    graph = own_graph(model, node, store)
    if not handle:
        with pytest.raises(NodeTimeoutError):
            await graph.ainvoke({"messages": [("user", "hi")]}, thread("t"))
        store.close()
        return
    out = await graph.ainvoke({"messages": [("user", "hi")]}, thread("t"))
    slow = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert slow.status == "error" and slow.content == "Error: tool 'slow' timed out after 0.2s"
    assert out["messages"][-1].content == "done"
    store.close()


async def test_a_new_query_supersedes_a_running_agent_locally(tmp_path: Path) -> None:
    store = SqliteSaver(str(tmp_path / "m.db"))
    gate, ran = Gate(), Counter[str]()
    model = ScriptedChatModel(responses=calls_slow_and_fast("answer to the new query"))
    graph = create_react_agent(model, tools(gate, ran), checkpointer=store)
    first = graph.start({"messages": [("user", "slow question")]}, thread("m"))
    await asyncio.to_thread(gate.entered.wait, WAIT)
    second = graph.start({"messages": [("user", "new question")]},
                         {**thread("m"), "multitask_strategy": "interrupt"})
    out = await second.result()
    with pytest.raises(RunCancelled):
        await first.result()
    assert graph.get_run(first.run_id).reason.kind == "superseded"  # type: ignore[union-attr]
    check_tool_results(out["messages"])
    slow = next(m for m in out["messages"] if getattr(m, "tool_call_id", None) == "c-slow")
    assert slow.content.startswith("Cancelled: superseded by run ")
    assert out["messages"][-1].content == "answer to the new query"
    store.close()


async def test_a_new_query_supersedes_a_running_agent_over_the_rest_api(
        tmp_path: Path) -> None:
    from tether.server.app import create_app

    gate, ran = Gate(), Counter[str]()
    model = ScriptedChatModel(responses=calls_slow_and_fast("answer to the new query"))
    store = SqliteSaver(tmp_path / "server.db")
    app = create_app({"agent": create_react_agent(model, tools(gate, ran))}, store,
                     api_keys=KEYS)
    try:
        with LiveServer(app) as server:
            async with get_client(url=server.url, api_key="key-a") as client:
                tid = (await client.threads.create())["thread_id"]
                first = await client.runs.create(
                    tid, "agent", input={"messages": [{"role": "user", "content": "slow"}]})
                await asyncio.to_thread(gate.entered.wait, WAIT)
                # The fast call answers on a thread of its own: its answer is kept before the
                # new query comes (else, on a loaded machine, the stop may reach it first).
                (stored,) = store.list_threads()
                await eventually(lambda: _kept(store, stored, "c-fast"), WAIT)
                second = await client.runs.create(
                    tid, "agent", input={"messages": [{"role": "user", "content": "new"}]},
                    multitask_strategy="interrupt")
                await client.runs.join(tid, second["run_id"])
                old = await client.runs.get(tid, first["run_id"])
                assert old["tether_reason"]["kind"] == "superseded"
                assert (await client.runs.get(tid, second["run_id"]))["status"] == "success"
                state = await client.threads.get_state(tid)
    finally:
        store.close()
    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "tool", "human", "ai"]
    assert messages[2]["content"].startswith("Cancelled: superseded")
    assert messages[3]["content"] == "fast(2)"
    assert messages[-1]["content"] == "answer to the new query"


async def test_tool_calls_count_toward_the_run_budget_and_a_budget_stop_is_repaired(
        tmp_path: Path) -> None:
    store = SqliteSaver(str(tmp_path / "b.db"))

    @tool
    def lookup(x: int) -> str:
        """Look up."""
        return f"r{x}"

    model = ScriptedChatModel(responses=[
        AIMessage(content="", tool_calls=[tool_call("lookup", f"c{i}", x=i) for i in range(3)]),
        "done"])
    graph = create_react_agent(model, [lookup], checkpointer=store)
    with pytest.raises(RunCancelled, match="tool_calls budget of 2 exceeded"):
        await graph.ainvoke({"messages": [("user", "hi")]},
                            {**thread("b"), "budget": {"tool_calls": 2}})
    out = await graph.ainvoke({"messages": [("user", "again")]}, thread("b"))
    check_tool_results(out["messages"])
    assert all(m.content in ("r0", "r1", "r2", "Cancelled: tool_calls budget of 2 exceeded (3)")
               for m in out["messages"] if isinstance(m, ToolMessage))
    store.close()


async def test_tool_calls_are_not_streamed_as_units_of_their_own() -> None:
    @tool
    def lookup(x: int) -> str:
        """Look up."""
        return f"r{x}"

    model = ScriptedChatModel(responses=[
        AIMessage(content="", tool_calls=[tool_call("lookup", "c1", x=1)]), "done"])
    graph = create_react_agent(model, [lookup])
    modes = ["tasks", "updates", "debug"]
    chunks = [c async for c in graph.astream({"messages": [("user", "hi")]},
                                             stream_mode=modes)]
    names = {p.get("name") for mode, p in chunks if mode in ("tasks", "debug")
             for p in [p.get("payload", p) if mode == "debug" else p]}
    updates = {k for mode, p in chunks if mode == "updates" for k in p}
    assert names == {"agent", "tools"} and updates == {"agent", "tools"}


def test_a_tool_node_invoked_from_a_sync_node_runs_its_calls_directly() -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    node = ToolNode([shout])

    def asks(state: Chat) -> dict[str, Any]:
        return {"messages": [AIMessage("", tool_calls=[tool_call("shout", "s1", text="hi")])]}

    def tools_by_hand(state: Chat) -> Any:
        return node.invoke(state)

    builder = StateGraph(Chat)
    builder.add_node("asks", asks)
    builder.add_node("tools", tools_by_hand)
    builder.set_entry_point("asks")
    builder.add_edge("asks", "tools")
    out = builder.compile().invoke({"messages": [("user", "x")]})
    assert out["messages"][-1].content == "HI"


async def test_a_sync_tool_that_never_checks_holds_the_stop_no_longer_than_its_grace(
        tmp_path: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    @tool
    def stubborn(x: int) -> str:
        """Blocks without ever checking for a cancel."""
        entered.set()
        release.wait(WAIT)
        return "late"

    store = SqliteSaver(str(tmp_path / "s.db"))
    model = ScriptedChatModel(responses=[
        AIMessage(content="", tool_calls=[tool_call("stubborn", "c1", x=1)]), "ok"])
    graph = create_react_agent(model, [stubborn], checkpointer=store)
    run = graph.start({"messages": [("user", "hi")]}, {**thread("s"), "cancel_grace": 0.2})
    await asyncio.to_thread(entered.wait, WAIT)
    info = await graph.acancel(run.run_id)
    assert info.status.value == "cancelled" and not release.is_set()  # the tool still blocks
    assert [e.detail["how"] for e in graph.ledger.events(run.run_id)
            if e.phase == "terminate_node" and e.node == "tools:call"] == ["abandoned"]
    out = await graph.ainvoke({"messages": [("user", "again")]}, thread("s"))
    release.set()
    assert out["messages"][2].content == "Cancelled: cancelled by request"
    store.close()
