"""A plain sync tool's call in a graph run is a sync unit of the run: it runs on tether's
threads (not asyncio's default executor), sees `tether.cancelled()`, is waited for (then
abandoned) on a stop or at its timeout, and answers exactly as the async path does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, tool

import tether
from tether.checkpoint.memory import InMemorySaver
from tether.config import get_stream_writer
from tether.engine.to_thread import default_pool
from tether.graph import END, START, StateGraph
from tether.graph.message import add_messages
from tether.prebuilt import InjectedState, InjectedStore, ToolNode, ToolRuntime
from tether.prebuilt.scripted import check_tool_results
from tether.prebuilt.tool_call import runs_sync
from tether.store.memory import InMemoryStore
from tether.types import Command, interrupt, utcnow

pytestmark = pytest.mark.anyio

WAIT = 30.0
"""Seconds a test waits for a point of a run (generous: the machine is shared)."""

TETHER_THREAD = "tether-thread"
"""The name of tether's pool threads (asyncio's default executor names its `asyncio_N`)."""


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    note: str


def call(tool_name: str, call_id: str, /, **args: Any) -> dict[str, Any]:
    return {"name": tool_name, "args": args, "id": call_id, "type": "tool_call"}


def graph_of(node: ToolNode, *calls: dict[str, Any], store: Any = None,
             before: asyncio.Event | None = None) -> Any:
    """START -> asks (a model turn with `calls`; waits for `before` when given) -> tools -> END."""
    async def asks(state: Chat) -> dict[str, Any]:
        if before is not None:
            await before.wait()
        return {"messages": [AIMessage("", tool_calls=list(calls))]}

    builder = StateGraph(Chat).add_node("asks", asks).add_node("tools", node)
    builder.add_edge(START, "asks").add_edge("asks", "tools").add_edge("tools", END)
    return builder.compile(checkpointer=InMemorySaver(), store=store)


def thread(name: str, **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}, **extra}


def answers(out: dict[str, Any]) -> list[tuple[str, Any, str]]:
    return [(m.tool_call_id, m.content, m.status) for m in out["messages"]
            if isinstance(m, ToolMessage)]


async def until(check: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def until_kept(graph: Any, thread_id: str, call_id: str) -> None:
    """Wait until the answer to `call_id` is a pending write of the thread's latest
    checkpoint (finished for the run too, not only for the tool)."""
    async def kept() -> bool:
        latest = await graph.checkpointer.aget_checkpoint(thread_id, "", None)
        return latest is not None and any(
            getattr(w.value, "tool_call_id", None) == call_id for w in latest.pending_writes)

    for _ in range(int(WAIT / 0.01)):
        if await kept():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for the answer to {call_id} to be kept")


def wait_cancelled(limit: float = WAIT) -> bool:
    """In a sync tool: poll `tether.cancelled()` until it turns true (True) or `limit` passes."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if tether.cancelled():
            return True
        time.sleep(0.002)
    return False


# -- where a sync tool runs --------------------------------------------------------------------


def test_plain_sync_tools_are_told_apart_from_async_and_custom_ones() -> None:
    async def coro(x: int) -> int:
        """Async."""
        return x

    class OnlyRun(BaseTool):
        name: str = "only_run"
        description: str = "d"

        def _run(self, x: int) -> int:
            return x

    class OwnArun(OnlyRun):
        async def _arun(self, x: int) -> int:
            return x

    class OwnAinvoke(OnlyRun):
        async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return 0

    sync_fn = StructuredTool.from_function(func=lambda x: x, name="f", description="d")
    both = StructuredTool.from_function(func=lambda x: x, coroutine=coro, name="g",
                                        description="d")
    assert runs_sync(sync_fn) and runs_sync(OnlyRun())
    assert not runs_sync(both) and not runs_sync(OwnArun()) and not runs_sync(OwnAinvoke())
    assert not runs_sync(tool(coro))


async def test_a_sync_tool_in_a_graph_runs_on_tethers_threads_with_its_node_context() -> None:
    seen: dict[str, Any] = {}

    @tool
    def where(x: int) -> str:
        """Where am I?"""
        seen["thread"] = threading.current_thread().name
        seen["node"] = tether.get_config()["metadata"]["langgraph_node"]
        return "here"

    out = await graph_of(ToolNode([where]), call("where", "c1", x=1)).ainvoke(
        {"messages": [("user", "hi")]}, thread("where"))
    assert answers(out) == [("c1", "here", "success")]
    assert seen == {"thread": TETHER_THREAD, "node": "tools:call"}  # the call's own context


def test_outside_a_graph_a_sync_tool_keeps_langchains_path() -> None:
    seen: list[str] = []

    @tool
    def where(x: int) -> str:
        """Where am I?"""
        seen.append(threading.current_thread().name)
        return "here"

    out = ToolNode([where]).invoke([AIMessage("", tool_calls=[call("where", "c1", x=1)])])
    assert [m.content for m in out] == ["here"] and seen[0] != TETHER_THREAD


@pytest.mark.parametrize("wrapper", ["wrap_tool_call", "awrap_tool_call"])
async def test_with_an_interceptor_a_sync_tool_keeps_the_async_path(wrapper: str) -> None:
    seen: list[str] = []

    @tool
    def where(x: int) -> str:
        """Where am I?"""
        seen.append(threading.current_thread().name)
        return f"at {x}"

    def wrap(request: Any, execute: Any) -> Any:
        return execute(request.override(tool_call={**request.tool_call, "args": {"x": 7}}))

    async def awrap(request: Any, execute: Any) -> Any:
        return await execute(request.override(tool_call={**request.tool_call, "args": {"x": 7}}))

    node = ToolNode([where], **{wrapper: wrap if wrapper == "wrap_tool_call" else awrap})
    out = await graph_of(node, call("where", "c1", x=1)).ainvoke(
        {"messages": [("user", "hi")]}, thread(wrapper))
    assert answers(out) == [("c1", "at 7", "success")]
    assert seen and seen[0] != TETHER_THREAD  # LangChain's hop, as before


# -- stops and timeouts ------------------------------------------------------------------------


async def test_a_cancel_reaches_a_running_sync_tool_and_resume_reruns_only_it() -> None:
    ran, saw, returned = Counter[str](), [], threading.Event()
    entered, go = threading.Event(), threading.Event()

    @tool
    def slow(x: int) -> str:
        """Slow until released; cleans up when cancelled."""
        ran["slow"] += 1
        entered.set()
        while not go.is_set():
            if tether.cancelled():
                saw.append(threading.current_thread().name)
                time.sleep(0.3)  # cleanup a stop must wait for (within the grace)
                returned.set()
                return "stopped"
            time.sleep(0.002)
        return f"slow({x})"

    @tool
    def fast(x: int) -> str:
        """Fast."""
        ran["fast"] += 1
        return f"fast({x})"

    graph = graph_of(ToolNode([slow, fast]), call("slow", "c1", x=1), call("fast", "c2", x=2))
    run = graph.start({"messages": [("user", "hi")]}, thread("stop"))
    await asyncio.to_thread(entered.wait, WAIT)
    await until_kept(graph, "stop", "c2")
    info = await graph.acancel(run.run_id)
    assert info.status.value == "cancelled"
    assert saw == [TETHER_THREAD] and returned.is_set()  # seen, and waited for
    go.set()
    out = await graph.resume(run.run_id).result()
    assert ran == Counter({"slow": 2, "fast": 1})
    assert answers(out) == [("c1", "slow(1)", "success"), ("c2", "fast(2)", "success")]


async def test_a_sync_tool_over_its_timeout_sees_the_cancel_and_is_answered_as_before() -> None:
    saw, returned = [], threading.Event()

    @tool
    def slow(x: int) -> str:
        """Runs until its call is stopped."""
        saw.append(wait_cancelled())
        time.sleep(0.2)  # cleanup the timeout waits for (within the grace)
        returned.set()
        return "late"

    graph = graph_of(ToolNode([slow], timeout=0.1), call("slow", "c1", x=1))
    out = await graph.ainvoke({"messages": [("user", "hi")]}, thread("timeout"))
    assert answers(out) == [("c1", "Error: tool 'slow' timed out after 0.1s", "error")]
    assert saw == [True] and returned.is_set()


async def test_a_sync_tool_that_ignores_its_timeout_is_abandoned_after_the_grace() -> None:
    release = threading.Event()

    @tool
    def stubborn(x: int) -> str:
        """Never checks for a cancel."""
        release.wait(WAIT)
        return "late"

    abandoned = default_pool().abandoned
    graph = graph_of(ToolNode([stubborn], timeout=0.05), call("stubborn", "c1", x=1))
    try:
        out = await graph.ainvoke({"messages": [("user", "hi")]},
                                  thread("stubborn", cancel_grace=0.1))
        assert answers(out) == [("c1", "Error: tool 'stubborn' timed out after 0.05s", "error")]
        assert not release.is_set() and default_pool().abandoned == abandoned + 1
    finally:
        release.set()


async def test_a_failing_call_stops_its_running_sync_sibling_at_once() -> None:
    saw: list[bool] = []
    reasons: list[Any] = []

    @tool
    def slow(x: int) -> str:
        """Runs until stopped."""
        saw.append(wait_cancelled())
        reasons.append(tether.cancel_reason())
        return "late"

    @tool
    def bad(x: int) -> str:
        """Fails."""
        time.sleep(0.05)
        raise ValueError("boom")

    graph = graph_of(ToolNode([slow, bad], handle_tool_errors=False),
                     call("slow", "c1", x=1), call("bad", "c2", x=2))
    started, began = time.monotonic(), utcnow()
    with pytest.raises(ValueError, match="boom"):
        await graph.ainvoke({"messages": [("user", "hi")]}, thread("sibling"))
    assert saw == [True]  # the sibling's thread saw the cancel and returned
    assert time.monotonic() - started < 1.5  # well within the 2 s grace: not abandoned
    [reason] = reasons
    assert (reason.kind, reason.requested_by) == ("parent", "engine")
    # Made when the call failed, not once for every failure: its time is the failure's.
    assert reason.requested_at >= began


# -- answers as the async path gives them ------------------------------------------------------


def twins(body: Any) -> tuple[BaseTool, BaseTool]:
    """The same tool twice, named `job`: sync (a sync unit) and async (the async path)."""
    def job(x: int) -> str:
        """A job."""
        return str(body(x))

    async def ajob(x: int) -> str:
        """A job."""
        return str(body(x))

    return (StructuredTool.from_function(func=job, name="job"),
            StructuredTool.from_function(coroutine=ajob, name="job"))


async def both_ways(body: Any, *calls: dict[str, Any], **node: Any) -> list[Any]:
    """What a `ToolNode` answers `calls` with, for the sync and the async twin of `body`;
    checks that the sync one ran on tether's threads."""
    threads: list[str] = []

    def recorded(x: int) -> Any:
        threads.append(threading.current_thread().name)
        return body(x)

    results = []
    for made in twins(recorded):
        threads.clear()
        graph = graph_of(ToolNode([made], **node), *calls)
        try:
            out = await graph.ainvoke({"messages": [("user", "hi")]}, thread("twins"))
            results.append(answers(out))
        except Exception as error:  # noqa: BLE001 - compared below
            results.append((type(error), str(error)))
        if runs_sync(made) and threads:
            assert set(threads) == {TETHER_THREAD}
    return results


def _fail(x: int) -> str:
    raise ValueError(f"bad {x}")


def _handler(error: ValueError) -> str:
    return f"handled: {error}"


@pytest.mark.parametrize("handle", [True, "sorry", _handler, ValueError, (KeyError,), False],
                         ids=["true", "text", "handler", "class", "other-class", "false"])
async def test_a_failing_sync_tool_is_answered_per_handle_tool_errors_as_async(
        handle: Any) -> None:
    sync_answer, async_answer = await both_ways(_fail, call("job", "c1", x=3),
                                                handle_tool_errors=handle)
    assert sync_answer == async_answer
    if handle in (True, "sorry") or handle is _handler or handle is ValueError:
        assert sync_answer[0][2] == "error"  # type: ignore[index]
    else:
        assert sync_answer == (ValueError, "bad 3")


async def test_bad_arguments_and_unknown_tools_are_answered_as_async() -> None:
    sync_answer, async_answer = await both_ways(
        lambda x: x, call("job", "c1", x="not a number"), call("nope", "c2"),
        call("job", "c3", x=5))
    assert sync_answer == async_answer
    assert sync_answer[0][1].startswith("Error invoking tool 'job' with kwargs {'x': 'not a")
    assert sync_answer[1][1].startswith("Error: nope is not a valid tool, try one of [job]")
    assert sync_answer[2] == ("c3", "5", "success")


async def test_a_sync_tool_may_answer_with_a_command() -> None:
    seen: list[str] = []

    @tool
    def rename(name: str, runtime: ToolRuntime) -> Command[Any]:
        """Rename."""
        seen.append(threading.current_thread().name)
        return Command(update={"note": name, "messages": [
            ToolMessage("renamed", tool_call_id=runtime.tool_call_id)]})

    out = await graph_of(ToolNode([rename]), call("rename", "c1", name="Ada")).ainvoke(
        {"messages": [("user", "hi")], "note": ""}, thread("command"))
    assert out["note"] == "Ada" and answers(out) == [("c1", "renamed", "success")]
    assert seen == [TETHER_THREAD]


async def test_an_interrupt_in_a_sync_tool_pauses_and_its_resume_answers_it() -> None:
    seen: list[str] = []

    @tool
    def approve(item: str) -> str:
        """Ask a human."""
        seen.append(threading.current_thread().name)
        return f"{item}: {interrupt({'approve': item})}"

    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    graph = graph_of(ToolNode([approve, add]), call("approve", "c1", item="invoice"),
                     call("add", "c2", a=1, b=2))
    paused = await graph.ainvoke({"messages": [("user", "pay")]}, thread("ask"))
    assert [i.value for i in paused["__interrupt__"]] == [{"approve": "invoice"}]
    done = await graph.ainvoke(Command(resume="yes"), thread("ask"))
    assert answers(done) == [("c1", "invoice: yes", "success"), ("c2", "3", "success")]
    assert seen == [TETHER_THREAD, TETHER_THREAD]


async def test_a_sync_tool_gets_state_store_and_runtime_and_writes_to_the_custom_stream(
        ) -> None:
    store = InMemoryStore()
    store.put(("notes",), "k", {"text": "kept"})

    @tool
    def look(x: int, state: Annotated[dict[str, Any], InjectedState],
             memory: Annotated[Any, InjectedStore()], runtime: ToolRuntime) -> str:
        """Look around."""
        get_stream_writer()({"progress": threading.current_thread().name})
        kept = memory.get(("notes",), "k").value["text"]
        return f"{len(state['messages'])} {kept} {runtime.tool_call_id}"

    graph = graph_of(ToolNode([look]), call("look", "c1", x=1), store=store)
    chunks = [c async for c in graph.astream({"messages": [("user", "hi")]}, thread("inj"),
                                             stream_mode=["custom", "updates"])]
    assert ("custom", {"progress": TETHER_THREAD}) in chunks
    tools_update = next(p["tools"] for mode, p in chunks if mode == "updates" and "tools" in p)
    assert [m.content for m in tools_update["messages"]] == ["2 kept c1"]


# -- a node with both kinds of call ---------------------------------------------------------------


class Mixed:
    """`first` (sync), `fetch` (async), `last` (sync): each held until released."""

    def __init__(self) -> None:
        self.ran, self.done = Counter[str](), Counter[str]()
        self.entered = {n: threading.Event() for n in ("first", "fetch", "last")}
        self.release = {n: threading.Event() for n in ("first", "fetch", "last")}
        self.threads: dict[str, str] = {}

    def tools(self) -> list[Any]:
        def held(name: str, x: int) -> str:
            self.ran[name] += 1
            self.threads[name] = threading.current_thread().name
            self.entered[name].set()
            while not self.release[name].is_set():
                if tether.cancelled():
                    return "stopped"
                time.sleep(0.002)
            self.done[name] += 1
            return f"{name}({x})"

        async def fetch(x: int) -> str:
            """Fetch."""
            self.ran["fetch"] += 1
            self.entered["fetch"].set()
            while not self.release["fetch"].is_set():
                await asyncio.sleep(0.002)
            self.done["fetch"] += 1
            return f"fetch({x})"

        return [StructuredTool.from_function(func=lambda x: held("first", x), name="first",
                                             description="First."),
                tool(fetch),
                StructuredTool.from_function(func=lambda x: held("last", x), name="last",
                                             description="Last.")]

    def free(self, *names: str) -> None:
        for name in names or tuple(self.release):
            self.release[name].set()


MIXED_CALLS = (call("first", "c1", x=1), call("fetch", "c2", x=2), call("last", "c3", x=3))
MIXED_ANSWERS = [("c1", "first(1)", "success"), ("c2", "fetch(2)", "success"),
                 ("c3", "last(3)", "success")]


async def test_a_mixed_node_answers_in_call_order() -> None:
    mixed = Mixed()
    mixed.free("fetch", "first")  # `last` (launched last) is released first
    graph = graph_of(ToolNode(mixed.tools()), *MIXED_CALLS)
    run = graph.start({"messages": [("user", "hi")]}, thread("order"))
    await asyncio.to_thread(mixed.entered["last"].wait, WAIT)
    mixed.free("last")
    out = await run.result()
    assert answers(out) == MIXED_ANSWERS
    assert mixed.threads == {"first": TETHER_THREAD, "last": TETHER_THREAD}


@pytest.mark.parametrize("point", ["before-tools", "first-running", "some-finished"])
async def test_a_mixed_node_cancelled_anywhere_resumes_to_every_call_answered_once(
        point: str) -> None:
    mixed, before = Mixed(), asyncio.Event()
    graph = graph_of(ToolNode(mixed.tools()), *MIXED_CALLS, before=before)
    run = graph.start({"messages": [("user", "hi")]}, thread(point))
    finished: set[str] = set()
    if point != "before-tools":
        before.set()
        await asyncio.to_thread(mixed.entered["first"].wait, WAIT)
    if point == "some-finished":
        mixed.free("fetch", "last")
        for call_id in ("c2", "c3"):
            await until_kept(graph, point, call_id)
        finished = {"fetch", "last"}
    info = await graph.acancel(run.run_id)
    assert info.status.value == "cancelled"
    mixed.free()
    before.set()
    out = await graph.resume(run.run_id).result()
    check_tool_results(out["messages"])
    assert answers(out) == MIXED_ANSWERS
    assert mixed.done == Counter({"first": 1, "fetch": 1, "last": 1})  # each finished once
    for name in ("first", "fetch", "last"):  # a finished call never runs again
        assert mixed.ran[name] == (1 if name in finished else mixed.ran[name])
    if point == "before-tools":
        assert mixed.ran == Counter({"first": 1, "fetch": 1, "last": 1})
    if point == "some-finished":
        assert mixed.ran == Counter({"first": 2, "fetch": 1, "last": 1})
