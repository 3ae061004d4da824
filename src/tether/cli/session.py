"""One run driven from the terminal: start it, show it live, stop it on Ctrl-C, report its end
(with the exact command that resumes it) and turn the end into an exit code."""

from __future__ import annotations

import asyncio
import shlex
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from tether.cli import display
from tether.cli.exits import ExitCode, for_status
from tether.cli.progress import PROGRESS_MODE, ChunkPrinter, Progress
from tether.cli.signals import SignalGuard
from tether.constants import INTERRUPT
from tether.errors import RunCancelled
from tether.graph.compiled import CompiledStateGraph
from tether.runs.handle import Run
from tether.types import CancelReason, RunInfo, RunSnapshot, RunStatus

HOLD_STARTS = 0.05
"""Seconds a step's task starts are held to be printed as one line."""

ALWAYS_SHOWN = ("updates", "lifecycle")
"""Stream modes every run is watched with: per-node updates and the run's lifecycle events."""


@dataclass(slots=True)
class Launch:
    """What to run and how to name it in the commands the CLI prints.

    Attributes:
        graph_ref: the `module:attr` the graph was loaded from.
        shown: stream modes asked for with `--stream-mode` (printed besides updates/lifecycle).
    """

    graph: CompiledStateGraph
    graph_ref: str
    db: str
    input: Any
    config: dict[str, Any]
    shown: tuple[str, ...] = ()


@dataclass(slots=True)
class Ending:
    """How a run ended, as the terminal reports it."""

    info: RunInfo
    output: Any = None
    error: BaseException | None = None
    snapshot: RunSnapshot | None = None


def stream_modes(shown: Sequence[str]) -> list[str]:
    """The modes a watched run streams: the always-shown ones, the progress feed, the asked."""
    modes = [*ALWAYS_SHOWN, PROGRESS_MODE]
    return modes + [m for m in shown if m not in modes]


async def watch(launch: Launch, console: Console,
                alongside: Callable[[Run], Awaitable[Any]] | None = None) -> Ending:
    """Start the run and follow it to its end, live; Ctrl-C cancels it, twice forces.

    Args:
        alongside: a coroutine function run beside the watch with the run's handle (the demo
            cancels the run from there); it is cancelled when the run ends.

    Raises:
        TetherError: the run could not start (thread busy, bad config...).

    Cancellation:
        Cancelling the caller (the event loop shutting down) cancels the run through its
        driver, with kind `shutdown`; its final checkpoint is still written. A signal is not a
        cancel of the caller: it cancels the run and `watch` returns its ending.
    """
    # The run's record names the graph as the user named it (`tether runs ls` shows it).
    metadata = {**(launch.config.get("metadata") or {}), display.GRAPH_REF_KEY: launch.graph_ref}
    run = launch.graph.astream(launch.input, {**launch.config, "metadata": metadata},
                               stream_mode=stream_modes(launch.shown))
    _header(console, run, launch)
    progress = Progress(run.run_id)
    printer = ChunkPrinter(console, frozenset({*ALWAYS_SHOWN, *launch.shown}))

    async def first(sig: signal.Signals, reason: CancelReason) -> RunInfo:
        progress.cancelling(f"{sig.name}: cancelling... (again to force exit)")
        console.print(Text(f"⏹ {sig.name}: cancelling run {run.run_id} gracefully "
                           f"(its final checkpoint is written; a second {sig.name} exits at "
                           "once)", style="yellow"))
        return await run.cancel(reason, wait=False)

    def force(sig: signal.Signals) -> None:
        console.print(Text(
            f"✖ second {sig.name}: exiting now. Run {run.run_id} is left 'cancelling' in "
            f"{launch.db}; the next tether command to open it reports it orphaned "
            "(status error), and it can still be resumed from its last checkpoint.",
            style="red bold"))

    guard = SignalGuard(first, force)
    # A cancel recorded by another process (`tether cancel RUN_ID`) reaches the run through the
    # runtime itself (tether.runs.remote), as the SQLite store is shared between processes.
    helpers = [asyncio.ensure_future(_flush_starts(progress, console))]
    if alongside is not None:
        helpers.append(asyncio.ensure_future(alongside(run)))
    with guard, Live(progress, console=console, transient=True, refresh_per_second=8):
        try:
            error = await _consume(run, progress, printer)
            await guard.settled()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
    return await _ending(run, launch, error)


async def _flush_starts(progress: Progress, console: Console) -> None:
    # A step whose tasks run long prints its `▶ step` line without waiting for their results.
    while True:
        await asyncio.sleep(HOLD_STARTS)
        line = progress.flush(older_than=HOLD_STARTS)
        if line is not None:
            console.print(Text(line, style="cyan"))


async def _consume(run: Run, progress: Progress, printer: ChunkPrinter) -> BaseException | None:
    try:
        async for chunk in run:
            mode, payload = chunk
            line = progress.feed(mode, payload)
            if line is not None:
                printer.console.print(Text(line, style="cyan"))
            printer.show(mode, payload)
    except RunCancelled as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - the run's failure, reported to the user
        return exc
    finally:
        line = progress.flush()
        if line is not None:
            printer.console.print(Text(line, style="cyan"))
    return None


async def _ending(run: Run, launch: Launch, error: BaseException | None) -> Ending:
    info = run.info
    ending = Ending(info, error=error)
    if info.status in (RunStatus.SUCCESS, RunStatus.INTERRUPTED):
        ending.output = await run.result()
    elif info.status in (RunStatus.CANCELLED, RunStatus.TIMEOUT):
        ending.snapshot = await launch.graph.ledger.aload(run.run_id)
    return ending


def _header(console: Console, run: Run, launch: Launch) -> None:
    console.print(Text.assemble(
        ("run ", "dim"), (run.run_id, "bold"), ("  thread ", "dim"), (str(run.thread_id), "bold"),
        ("  graph ", "dim"), (launch.graph_ref, ""), ("  db ", "dim"), (launch.db, ""),
    ))


def resume_command(run_id: str, launch: Launch) -> str:
    """The exact command that resumes `run_id`."""
    return shlex.join(["tether", "resume", run_id, "--graph", launch.graph_ref,
                       "--db", launch.db])


def report(console: Console, ending: Ending, launch: Launch) -> ExitCode:
    """Print how the run ended; return the exit code for it."""
    info = ending.info
    status = info.status
    took = display.duration(info)
    head = Text.assemble(("■ " if status is not RunStatus.SUCCESS else "✔ ",
                          display.STATUS_STYLE[status]),
                         display.status_text(status), (f"  run {info.run_id} after {took}", ""))
    console.print(head)
    if status is RunStatus.SUCCESS:
        console.print(Text("final state:", style="bold"))
        console.print(Text(display.to_json(ending.output, indent=2)))
    elif status in (RunStatus.CANCELLED, RunStatus.TIMEOUT):
        _report_cancel(console, ending, launch)
    elif status is RunStatus.INTERRUPTED:
        _report_pause(console, ending, launch)
    else:
        message = info.error or (f"{type(ending.error).__name__}: {ending.error}"
                                 if ending.error is not None else "unknown error")
        where = f" in node {info.error_node}" if info.error_node else ""
        console.print(Text(f"error{where}: {message}", style="red"))
        if info.error_traceback:
            console.print(Text(info.error_traceback, style="dim"))
        if info.checkpoint_id is not None:
            console.print(Text.assemble(("resume it from its last checkpoint: ", "dim"),
                                        (resume_command(info.run_id, launch), "bold")))
    return for_status(status)


def _report_cancel(console: Console, ending: Ending, launch: Launch) -> None:
    info = ending.info
    console.print(Text.assemble(("reason ", "dim"), display.reason_text(info.reason)))
    if info.cancel_latency_ms is not None:
        console.print(Text.assemble(("cancel latency ", "dim"),
                                    f"{info.cancel_latency_ms:.2f} ms (request → run ended)"))
    console.print(Text.assemble(("final checkpoint ", "dim"), info.checkpoint_id or "-"))
    if ending.snapshot is not None:
        console.print(display.snapshot_view(ending.snapshot, max(console.width - 30, 30)))
    if info.checkpoint_id is not None:
        console.print(Text.assemble(("resume it: ", "bold"),
                                    (resume_command(info.run_id, launch), "bold cyan")))


def _report_pause(console: Console, ending: Ending, launch: Launch) -> None:
    output = ending.output if isinstance(ending.output, dict) else {}
    for item in output.get(INTERRUPT, []):
        value = getattr(item, "value", item)
        console.print(Text.assemble(("waiting for input: ", "magenta"), display.to_json(value)))
    command = shlex.join(["tether", "run", launch.graph_ref, "--thread",
                          str(ending.info.thread_id), "--db", launch.db,
                          "--resume-value", "JSON"])
    console.print(Text.assemble(("answer it: ", "bold"), (command, "bold cyan")))


__all__ = ["ALWAYS_SHOWN", "Ending", "Launch", "report",
           "resume_command", "stream_modes", "watch"]
