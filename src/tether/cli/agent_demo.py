"""`tether demo --agent`: a scripted chat agent (offline), stopped during a tool and between
the model and its tools, whose thread tether repairs so that the conversation goes on.

Needs the `agents` extra (`langchain-core`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

import tether
from tether.checkpoint.ids import uuid7
from tether.cli.exits import ExitCode
from tether.cli.loading import open_store
from tether.errors import RunCancelled
from tether.types import CancelReason

RULE_WIDTH = 100
ARCHIVE_SECONDS = 30.0
"""How long the slow tool would work (it is stopped long before)."""


class _Tools:
    """The agent's tools: a quick clock and a slow archive search with a connection to close."""

    def __init__(self) -> None:
        self.archive_open = asyncio.Event()
        self.closed: list[str] = []
        self.ran: list[str] = []

    def clock(self) -> str:
        """The current time."""
        self.ran.append("clock")
        return "12:00 UTC"

    async def search_archive(self, topic: str) -> str:
        """Search the (slow) archive for a topic."""
        self.ran.append("search_archive")
        tether.on_cancel(lambda: self.closed.append("archive connection closed"))
        self.archive_open.set()
        await tether.sleep(ARCHIVE_SECONDS)  # wakes at once on a stop
        return f"1 old report on {topic}"


def _script() -> list[Any]:
    from langchain_core.messages import AIMessage

    def call(name: str, ident: str, **args: Any) -> dict[str, Any]:
        return {"name": name, "args": args, "id": ident, "type": "tool_call"}

    return [
        AIMessage("", tool_calls=[call("clock", "call-clock"),
                                  call("search_archive", "call-archive", topic="cancellation")]),
        AIMessage("", tool_calls=[call("clock", "call-clock-2")]),
        "You're welcome! It was 12:00 UTC; the archive search was stopped, ask again any time.",
    ]


def run_agent_demo(console: Console, path: str) -> int:
    """The agent demo, on the SQLite file at `path`; the process's exit code."""
    try:
        import langchain_core  # noqa: F401
    except ImportError:
        console.print("[red]tether demo --agent needs the agents extra:[/red] "
                      "pip install 'tether[agents]'")
        return int(ExitCode.USAGE)
    return asyncio.run(_demo(console, path))


async def _demo(console: Console, path: str) -> int:
    from tether.prebuilt import create_react_agent
    from tether.prebuilt.scripted import ScriptedChatModel, check_tool_results

    store = open_store(path, must_exist=False)
    tools = _Tools()
    model = ScriptedChatModel(responses=_script())
    agent = create_react_agent(model, [tools.clock, tools.search_archive], checkpointer=store)
    chat = {"configurable": {"thread_id": f"agent-demo-{uuid7()[-12:]}"}}
    try:
        _rule(console, "[bold]tether demo --agent[/bold]: stop an agent any time; the chat "
                       "goes on")
        console.print(f"A scripted chat model (offline) with two tools, on [bold]{path}[/bold].")
        first = await _stop_during_a_tool(console, agent, chat, tools)
        await _stop_between_model_and_tools(console, agent, chat)
        await _repaired(console, agent, chat, model, check_tool_results)
        _rule(console, "Explore")
        console.print(f"  tether runs ls --db {path}", highlight=False, markup=False)
        console.print(f"  tether runs events {first} --db {path}", highlight=False, markup=False)
        return int(ExitCode.SUCCESS)
    finally:
        store.close()


async def _stop_during_a_tool(console: Console, agent: Any, chat: dict[str, Any],
                              tools: _Tools) -> str:
    _rule(console, "1. Stop during a tool")
    _say(console, "user", "What time is it, and what does the archive say about cancellation?")
    run = agent.start({"messages": [("user", "What time is it, and what does the archive say "
                                              "about cancellation?")]}, chat)
    await tools.archive_open.wait()
    await _kept(agent, chat, "call-clock")
    console.print("[dim]The model called clock and search_archive in parallel; clock finished, "
                  "search_archive is still working. The user presses stop.[/dim]")
    info = await agent.acancel(run.run_id, CancelReason("user", "the user pressed stop",
                                                        "tether demo"))
    console.print(Text.assemble(("■ ", "red"), (f"{info.status.value}", "bold red"),
                                f"  in {info.cancel_latency_ms or 0:.1f} ms"))
    console.print(f"  tools run: {', '.join(tools.ran)}; on_cancel: {', '.join(tools.closed)}")
    console.print("  clock's answer is kept in the run's final checkpoint (a tool call is a "
                  "unit of the run); the model's turn has an unanswered call.")
    return str(run.run_id)


async def _stop_between_model_and_tools(console: Console, agent: Any,
                                        chat: dict[str, Any]) -> None:
    _rule(console, "2. Stop between the model and its tools")
    _say(console, "user", "Just the time, please.")
    run = agent.astream({"messages": [("user", "Just the time, please.")]},
                        {**chat, "budget": {"steps": 1}}, stream_mode="updates")
    with contextlib.suppress(RunCancelled):
        async for update in run:
            _show_update(console, update)
    info = agent.get_run(run.run_id)
    console.print(Text.assemble(("■ ", "red"), (info.status.value, "bold red"),
                                f"  ({info.reason.kind}: {info.reason.message})"))
    console.print("  The model asked for clock; the run's budget of one step stopped it "
                  "before the tool ran.")


async def _repaired(console: Console, agent: Any, chat: dict[str, Any], model: Any,
                    check: Any) -> None:
    _rule(console, "3. The repaired thread: the next message goes on")
    _say(console, "user", "Thanks!")
    async for update in agent.astream({"messages": [("user", "Thanks!")]}, chat,
                                      stream_mode="updates"):
        _show_update(console, update)
    state = await agent.aget_state(chat)
    console.print()
    console.print("[bold]The thread[/bold]")
    for message in state.values["messages"]:
        console.print(f"  {_line(message)}", highlight=False, markup=False)
    check(model.calls[-1])  # the scripted model, like real chat APIs, refuses a dangling call
    console.print("[green]Every tool call is answered exactly once: the model (which refuses "
                  "dangling calls, as real APIs do) accepted the conversation.[/green]")


async def _kept(agent: Any, chat: dict[str, Any], call_id: str) -> None:
    """Wait until the answer to `call_id` is stored with the run (the cue to stop)."""
    thread = chat["configurable"]["thread_id"]
    while True:
        latest = await agent.checkpointer.aget_checkpoint(thread, "", None)
        if latest is not None and any(getattr(w.value, "tool_call_id", None) == call_id
                                      for w in latest.pending_writes):
            return
        await asyncio.sleep(0.01)


def _show_update(console: Console, update: Any) -> None:
    for node, value in update.items():
        if node == "__repair__":
            console.print(Text.assemble(("  ✚ __repair__", "yellow"),
                                        " (the open calls of the stopped run answered first)"))
            for message in (value or {}).get("messages", []):
                console.print(f"      {_line(message)}", highlight=False, markup=False)
        elif isinstance(value, dict):
            for message in value.get("messages", []):
                console.print(f"  {node}: {_line(message)}", highlight=False, markup=False)


def _line(message: Any) -> str:
    kind = getattr(message, "type", "?")
    if kind == "ai" and getattr(message, "tool_calls", None):
        calls = ", ".join(f"{c['name']}({c['id']})" for c in message.tool_calls)
        return f"ai    → calls {calls}"
    if kind == "tool":
        return f"tool  [{message.tool_call_id}] {message.status}: {message.content}"
    return f"{kind:<5} {message.content}"


def _say(console: Console, who: str, text: str) -> None:
    console.print(Text.assemble((f"{who}: ", "bold cyan"), text))


def _rule(console: Console, title: str) -> None:
    console.print(Rule(title), width=min(console.width, RULE_WIDTH))


__all__ = ["run_agent_demo"]
