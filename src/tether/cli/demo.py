"""`tether demo`: a bundled research graph, run on SQLite, cancelled mid-step and resumed.

The graph is importable as `tether.cli.demo:graph`, so the commands the demo prints (`tether
resume ... --graph tether.cli.demo:graph`, `tether run tether.cli.demo:graph`) work as shown.
"""

from __future__ import annotations

import asyncio
import operator
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypedDict

import typer
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

import tether
from tether.checkpoint.ids import uuid7
from tether.cli import display
from tether.cli.exits import ExitCode
from tether.cli.loading import attach_store, open_store
from tether.cli.session import Ending, Launch, report, resume_command, watch
from tether.graph import END, START, StateGraph
from tether.runs.handle import Run
from tether.types import CancelReason, RunStatus

GRAPH_REF = "tether.cli.demo:graph"
SEARCHES = ("search_web", "search_papers", "read_archive")
SECONDS = {"plan": 0.6, "search_web": 0.8, "search_papers": 1.2, "read_archive": 3.0,
           "write_report": 0.6}
"""How long each node works; read_archive is the slow one the demo cancels."""

EXECUTED: list[str] = []
"""Node executions in this process, in start order (how the demo shows what ran twice)."""


class _Quick:
    """Set once both quick searches have finished (the demo's cue to cancel)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.done: set[str] = set()
        self.event = asyncio.Event()

    def finished(self, node: str) -> None:
        self.done.add(node)
        if {"search_web", "search_papers"} <= self.done:
            self.event.set()


_quick = _Quick()


class Research(TypedDict):
    """The demo's state: a topic, notes that every search appends to, and the report."""

    topic: str
    notes: Annotated[list[str], operator.add]
    report: str


async def _work(node: str) -> None:
    EXECUTED.append(node)
    await tether.sleep(SECONDS[node])  # wakes at once on cancel
    _quick.finished(node)


async def plan(state: Research) -> dict[str, Any]:
    """Decide what to look at.

    Cancellation:
        Wakes at once from its sleep (`tether.sleep`); writes nothing.
    """
    await _work("plan")
    return {"notes": [f"plan: web, papers and the archive on {state['topic']!r}"]}


async def search_web(state: Research) -> dict[str, Any]:
    """A quick search.

    Cancellation:
        Wakes at once from its sleep (`tether.sleep`); writes nothing.
    """
    await _work("search_web")
    return {"notes": ["web: 3 blog posts"]}


async def search_papers(state: Research) -> dict[str, Any]:
    """A slower search.

    Cancellation:
        Wakes at once from its sleep (`tether.sleep`); writes nothing.
    """
    await _work("search_papers")
    return {"notes": ["papers: 2 surveys"]}


async def read_archive(state: Research) -> dict[str, Any]:
    """The slow one: holds an archive connection that must be closed if it is cancelled.

    Cancellation:
        Wakes at once from its sleep; its `on_cancel` hook closes the archive.
    """
    tether.on_cancel(_close_archive)
    await _work("read_archive")
    return {"notes": ["archive: 1 old report"]}


def _close_archive() -> None:
    """The `on_cancel` hook of read_archive: runs once, shielded, if the task is cancelled."""


async def write_report(state: Research) -> dict[str, Any]:
    """Join the notes.

    Cancellation:
        Wakes at once from its sleep (`tether.sleep`); writes nothing.
    """
    await _work("write_report")
    return {"report": f"{state['topic']}: " + "; ".join(state["notes"][1:])}


def build() -> StateGraph[Research]:
    """plan → three searches in parallel → write_report."""
    builder = StateGraph(Research)
    builder.add_node("plan", plan)
    for name, fn in zip(SEARCHES, (search_web, search_papers, read_archive), strict=True):
        builder.add_node(name, fn)
        builder.add_edge("plan", name)
    builder.add_node("write_report", write_report)
    builder.add_edge(START, "plan")
    builder.add_edge(list(SEARCHES), "write_report")
    builder.add_edge("write_report", END)
    return builder


graph = build().compile(name="research")


async def _cancel_mid_step(run: Run) -> None:
    # Cancel once the two quick searches have finished and read_archive is half-way.
    await _quick.event.wait()
    await asyncio.sleep(SECONDS["read_archive"] / 3)
    await run.cancel(CancelReason("user", "demo: cancelled mid-step, read_archive still running",
                                  "tether demo"), wait=False)


def demo(
    db: Annotated[str | None, typer.Option(
        "--db", help="SQLite file to use (default: a new file in a temporary directory)",
        show_default=False)] = None,
    topic: Annotated[str, typer.Option("--topic", help="What the graph researches.")
                     ] = "cancellation",
    agent: Annotated[bool, typer.Option(
        "--agent", help="Instead: a scripted chat agent stopped during a tool and between "
                        "its model and tools, then its repaired thread (needs tether[agents]).")
                     ] = False,
) -> None:
    """Watch a run being cancelled mid-step and resumed, on SQLite, in a few seconds."""
    path = db or str(Path(tempfile.mkdtemp(prefix="tether-demo-")) / "demo.db")
    console = display.make_console()
    if agent:
        from tether.cli.agent_demo import run_agent_demo

        raise typer.Exit(run_agent_demo(console, path))
    raise typer.Exit(asyncio.run(_demo(console, path, topic)))


async def _demo(console: Console, path: str, topic: str) -> int:
    store = open_store(path, must_exist=False)
    try:
        compiled = attach_store(graph, store)
        _intro(console, path)
        thread = f"demo-{uuid7()[-12:]}"
        first = Launch(compiled, GRAPH_REF, path, {"topic": topic},
                       {"configurable": {"thread_id": thread}})
        EXECUTED.clear()
        _quick.reset()
        ending = await watch(first, console, alongside=_cancel_mid_step)
        code = report(console, ending, first)
        if ending.info.status is not RunStatus.CANCELLED:
            return code
        ran_first = list(EXECUTED)
        _explain_cancel(console, store.events(ending.info.run_id), ending)
        second = await _resume(console, compiled, first, ending)
        if second is None:
            return ExitCode.ERROR
        code = report(console, second, first)
        _compare(console, ran_first, list(EXECUTED), ending)
        _outro(console, path, ending.info.run_id, second.info.run_id)
        return code
    finally:
        store.close()


async def _resume(console: Console, compiled: Any, first: Launch,
                  ending: Ending) -> Ending | None:
    from tether.graph.run_resume import resume_config

    _rule(console, "3. Resume it: a new run on the same thread, from the final checkpoint")
    console.print(Text.assemble(("same as: ", "dim"),
                                (resume_command(ending.info.run_id, first), "cyan")))
    EXECUTED.clear()
    config = resume_config(compiled, ending.info.run_id, None)
    again = Launch(compiled, GRAPH_REF, first.db, None, config)
    second = await watch(again, console)
    return second if second.info.status is RunStatus.SUCCESS else None


RULE_WIDTH = 100
"""At most this wide: output sent to a pipe is as wide as its longest line (display.PIPE_WIDTH)."""


def _rule(console: Console, title: str) -> None:
    console.print(Rule(title), width=min(console.width, RULE_WIDTH))


def _intro(console: Console, path: str) -> None:
    _rule(console, "[bold]tether demo[/bold]: every run can be stopped; stopping loses nothing")
    console.print("The graph: [bold]plan[/bold] → [bold]search_web[/bold] ‖ "
                  "[bold]search_papers[/bold] ‖ [bold]read_archive[/bold] (in parallel) → "
                  "[bold]write_report[/bold]")
    console.print(f"Runs, checkpoints and audit logs go to the SQLite file [bold]{path}[/bold].")
    console.print()
    _rule(console, "1. Start a run; it is cancelled mid-step")
    console.print("[dim]The two quick searches finish; read_archive is still working when the "
                  "cancel arrives. (Ctrl-C would do the same to any `tether run`.)[/dim]")


_PHASES = {
    "request": "the cancel is recorded durably, before anything else",
    "propagate": "the run's cancel scope is cancelled: no new step or task may start",
    "terminate_node": "read_archive is stopped at its next await",
    "cleanup": "its on_cancel hook runs (shielded, bounded): the archive is closed",
    "checkpoint": "one final checkpoint: the last completed step + the finished searches' writes",
    "terminate": "status cancelled; the stream ends; waiters wake",
}


def _explain_cancel(console: Console, events: list[Any], ending: Ending) -> None:
    _rule(console, "2. What the cancel did: the run's audit log (store.events(run_id))")
    console.print(display.events_table(events))
    console.print()
    for phase, meaning in _PHASES.items():
        console.print(Text.assemble((f"  {phase:<15}", "yellow"), meaning))
    latency = ending.info.cancel_latency_ms
    if latency is not None:
        console.print(Text.assemble(("cancel latency: ", "bold"),
                                    f"{latency:.2f} ms from the request to the run's end, "
                                    "final checkpoint included"))


def _compare(console: Console, ran_first: list[str], ran_second: list[str],
             ending: Ending) -> None:
    _rule(console, "4. Finished work was not redone")
    cancelled = set(ending.snapshot.cancelled_tasks if ending.snapshot else ())
    first = ", ".join(f"{n} (cancelled)" if n in cancelled else n for n in ran_first)
    console.print(Text.assemble(("first run executed:   ", "bold"), first))
    console.print(Text.assemble(("resumed run executed: ", "bold"), ", ".join(ran_second)))
    kept = sorted(set(ran_first) - set(ran_second))
    console.print(f"[green]{', '.join(kept)}[/green] did not run again: the finished searches' "
                  "writes were kept in the final checkpoint as pending writes, and plan's "
                  "result was already checkpointed.")


def _outro(console: Console, path: str, first_id: str, second_id: str) -> None:
    _rule(console, "Explore")
    for command in (f"tether runs ls --db {path}", f"tether runs show {first_id} --db {path}",
                    f"tether runs events {first_id} --db {path}",
                    f"tether runs show {second_id} --db {path}",
                    f"tether run {GRAPH_REF} --input '{{\"topic\": \"yours\"}}' --db {path}   "
                    "(press Ctrl-C while it runs)"):
        console.print(f"  {command}", highlight=False)


__all__ = ["GRAPH_REF", "Research", "build", "demo", "graph"]
