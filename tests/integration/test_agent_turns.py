"""An agent stopped in each phase of its turn — the model call, between the model and its
tools, during each tool, after the tools — on SQLite and Postgres, with sync and async tools,
then continued by (a) a new message or (b) `graph.resume(run_id)`.

The invariants: the model's input is valid (every tool call answered exactly once: the
`ScriptedChatModel` refuses any other conversation, as real chat APIs do), a tool call that
finished never runs again, and what the stopped run kept is in the thread exactly once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

import tether
from tether.checkpoint.base import CheckpointStore
from tether.errors import RunCancelled
from tether.prebuilt import create_react_agent
from tether.prebuilt.scripted import ScriptedChatModel, check_tool_results

pytestmark = pytest.mark.anyio

PHASES = ("model", "between", "tool:alpha", "tool:beta", "after")
WAIT = 30.0
"""Seconds a test waits for a run to reach a point (generous: the machine is shared)."""


class Toolbox:
    """Two tools, sync or async, counting their calls; `blocking` names the one whose first
    call waits to be cancelled (cooperatively: `tether.sleep_sync` / `tether.sleep`)."""

    def __init__(self, *, sync: bool, blocking: str | None) -> None:
        self.counts: Counter[str] = Counter()
        self.started: dict[str, threading.Event] = {n: threading.Event() for n in ("alpha",
                                                                                   "beta")}
        self.finished: Counter[str] = Counter()
        self.blocking = blocking
        self.cleanups: list[str] = []
        self.tools = [self._make(n, sync) for n in ("alpha", "beta")]

    def _make(self, name: str, sync: bool) -> BaseTool:
        def enter() -> bool:
            self.counts[name] += 1
            self.started[name].set()
            return name == self.blocking and self.counts[name] == 1

        if sync:
            def run_sync(x: int) -> str:
                if enter():
                    tether.on_cancel(lambda: self.cleanups.append(name))
                    tether.sleep_sync(WAIT * 4)
                self.finished[name] += 1
                return f"{name}({x})"

            return StructuredTool.from_function(run_sync, name=name, description=name)

        async def run_async(x: int) -> str:
            if enter():
                tether.on_cancel(lambda: self.cleanups.append(name))
                await tether.sleep(WAIT * 4)
            self.finished[name] += 1
            return f"{name}({x})"

        return StructuredTool.from_function(coroutine=run_async, name=name, description=name)


def tool_call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def script(phase: str) -> ScriptedChatModel:
    """Turn 1 calls both tools, then the model answers; what is left answers later turns."""
    stalls = {0: 0} if phase == "model" else {1: 0} if phase == "after" else {}
    responses: list[Any] = [
        AIMessage(content="", tool_calls=[tool_call("alpha", "c-alpha", x=1),
                                          tool_call("beta", "c-beta", x=2)]),
        "both done", "and again", "once more",
    ]
    return ScriptedChatModel(responses=responses, stalls=stalls)


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(int(WAIT / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def until_kept(graph: Any, config: dict[str, Any], call_id: str) -> None:
    """Wait until the answer to `call_id` is stored (a pending write of the thread's latest
    checkpoint): the call has finished, for the run as for the test."""
    thread = config["configurable"]["thread_id"]
    for _ in range(int(WAIT / 0.01)):
        latest = await graph.checkpointer.aget_checkpoint(thread, "", None)
        writes = latest.pending_writes if latest is not None else ()
        if any(call_id in kept_ids(w.value) for w in writes):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for the answer to {call_id} to be kept")


def kept_ids(value: Any) -> set[str]:
    if isinstance(value, ToolMessage):
        return {value.tool_call_id}
    if isinstance(value, list):
        return {i for item in value for i in kept_ids(item)}
    return set()


def _sqlite(tmp: Path) -> CheckpointStore:
    from tether.checkpoint.sqlite import SqliteSaver

    return SqliteSaver(str(tmp / "agent.db"))


async def stop_in(phase: str, graph: Any, model: ScriptedChatModel, box: Toolbox,
                  config: dict[str, Any]) -> str:
    """Start a turn and stop it in `phase`; the stopped run's id."""
    if phase == "between":
        with pytest.raises(RunCancelled):
            await graph.ainvoke({"messages": [("user", "hi")]},
                                {**config, "budget": {"steps": 1}})
        return str(graph.list_runs(config["configurable"]["thread_id"])[0].run_id)
    run = graph.start({"messages": [("user", "hi")]}, config)
    if phase == "model":
        await until(lambda: len(model.calls) >= 1, "the model call")
    elif phase == "after":
        await until(lambda: len(model.calls) >= 2, "the second model call")
    else:
        blocked = phase.split(":")[1]
        other = "beta" if blocked == "alpha" else "alpha"
        await until(box.started[blocked].is_set, f"{blocked} running")
        await until_kept(graph, config, f"c-{other}")
    info = await graph.acancel(run.run_id)
    assert info.status.value == "cancelled"
    return str(run.run_id)


def answers(messages: list[Any]) -> dict[str, list[ToolMessage]]:
    found: dict[str, list[ToolMessage]] = {}
    for message in messages:
        if isinstance(message, ToolMessage):
            found.setdefault(message.tool_call_id, []).append(message)
    return found


def expected_runs(phase: str, then: str) -> Counter[str]:
    """How many times each tool has run once the turn was stopped in `phase` and continued."""
    if phase == "model":  # the stalled answer is spent: the model's next one has no calls
        return Counter()
    if phase == "between":
        return Counter({"alpha": 1, "beta": 1}) if then == "resume" else Counter()
    if phase.startswith("tool:"):
        blocked = phase.split(":")[1]
        return Counter({"alpha": 1, "beta": 1, blocked: 2 if then == "resume" else 1})
    return Counter({"alpha": 1, "beta": 1})


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("sync", [False, True], ids=["async-tools", "sync-tools"])
@pytest.mark.parametrize("then", ["new-message", "resume"])
async def test_a_stopped_turn_goes_on_with_a_valid_conversation(
        saver: CheckpointStore, phase: str, sync: bool, then: str) -> None:
    box = Toolbox(sync=sync, blocking=phase.split(":")[1] if phase.startswith("tool:") else None)
    model = script(phase)
    graph = create_react_agent(model, box.tools, checkpointer=saver)
    config = {"configurable": {"thread_id": f"{phase}-{sync}-{then}"}}
    stopped = await stop_in(phase, graph, model, box, config)
    before = len(model.calls)
    if then == "resume":
        out = await graph.resume(stopped).result()
    else:
        out = await graph.ainvoke({"messages": [("user", "again")]}, config)
    messages = out["messages"]
    check_tool_results(messages)  # every call answered exactly once
    check_tool_results(model.calls[-1])  # what the model was last given, too
    assert len(model.calls) == before + 1
    assert box.counts == expected_runs(phase, then)
    given = answers(messages)
    if phase.startswith("tool:"):
        blocked = phase.split(":")[1]
        other = "beta" if blocked == "alpha" else "alpha"
        assert given[f"c-{other}"][0].content == f"{other}({1 if other == 'alpha' else 2})"
        assert box.cleanups == [blocked]  # its on_cancel hook ran
        shown = given[f"c-{blocked}"][0]
        if then == "resume":
            assert shown.status == "success"
        else:
            assert shown.status == "error"
            assert shown.content == "Cancelled: cancelled by request"
    if phase == "between" and then == "new-message":
        assert {m.content for ms in given.values() for m in ms} == {
            "Cancelled: steps budget of 1 exceeded (2)"}
    if then == "resume":
        assert not any(str(m.content).startswith("Cancelled:") for m in messages)


async def test_the_repair_is_streamed_and_audited(tmp_path: Path) -> None:
    box = Toolbox(sync=False, blocking="alpha")
    model = script("tool:alpha")
    store = _sqlite(tmp_path)
    graph = create_react_agent(model, box.tools, checkpointer=store)
    config = {"configurable": {"thread_id": "audited"}}
    stopped = await stop_in("tool:alpha", graph, model, box, config)
    chunks = [c async for c in graph.astream({"messages": [("user", "again")]}, config,
                                             stream_mode="updates")]
    repair = chunks[0]["__repair__"]["messages"]
    assert [(m.tool_call_id, m.status) for m in repair] == [("c-alpha", "error"),
                                                            ("c-beta", "success")]
    new_run = graph.list_runs("audited")[0]
    events = [e for e in store.events(new_run.run_id) if e.phase == "repair"]
    assert len(events) == 1
    assert events[0].node == "__repair__"
    assert events[0].detail["run_id"] == stopped
    assert events[0].detail["kept"] == ["c-beta"]
    assert events[0].detail["cancelled"] == ["c-alpha"]
    store.close()  # type: ignore[attr-defined]
