"""`tether runs ls|show|events` and `tether cancel`: recorded runs, read from (and a cancel
request written to) the SQLite store, from any process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.text import Text

from tether.checkpoint.sqlite import SqliteSaver
from tether.cli import display
from tether.cli.exits import EPILOG, ExitCode
from tether.cli.loading import open_store, resolve_db
from tether.cli.plain_help import PlainCommand, PlainGroup
from tether.cli.signals import REQUESTED_BY
from tether.errors import RunNotFound
from tether.runs import control
from tether.types import CancelReason, RunInfo, RunStatus

runs_app = typer.Typer(cls=PlainGroup, help="Inspect recorded runs.", no_args_is_help=True,
                       epilog=EPILOG)

DbOpt = Annotated[str | None, typer.Option(
    "--db", metavar="PATH",
    help="SQLite file that records runs (default: $TETHER_DB, else tether.db)",
    show_default=False)]
RunArg = Annotated[str, typer.Argument(help="The run's id.")]


@contextmanager
def _store(db: str | None) -> Iterator[SqliteSaver]:
    store = open_store(resolve_db(db), must_exist=True)
    try:
        yield store
    finally:
        store.close()


def _get(store: SqliteSaver, run_id: str) -> RunInfo:
    info = store.get_run(run_id)
    if info is None:
        display.make_console(stderr=True).print(
            f"[red]error:[/red] no run {run_id!r} in {store.path}")
        raise typer.Exit(ExitCode.ERROR)
    return info


@runs_app.command("ls", epilog=EPILOG, cls=PlainCommand)
def ls(
    *,
    thread: Annotated[str | None, typer.Option("--thread", "-t", help="Only this thread.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", "-s", help=f"Only runs in this status: {', '.join(s.value for s in RunStatus)}."
    )] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Only the run ids, one per line, newest first (for scripts).")
    ] = False,
    db: DbOpt = None,
) -> None:
    """List runs, newest first."""
    if status is not None and status not in {s.value for s in RunStatus}:
        raise typer.BadParameter(
            f"unknown status {status!r} (choose from {', '.join(s.value for s in RunStatus)})",
            param_hint="'--status'")
    console = display.make_console(listing=True)
    with _store(db) as store:
        infos = store.list_runs(thread_id=thread, status=status, limit=limit)
    if quiet:
        for info in infos:
            print(info.run_id)
        return
    if not infos:
        console.print("no runs")
        return
    console.print(display.runs_table(infos))


@runs_app.command("show", epilog=EPILOG, cls=PlainCommand)
def show(run_id: RunArg, db: DbOpt = None) -> None:
    """A run's record and the state it ended in: values, next, cancelled tasks, pending writes."""
    console = display.make_console()
    with _store(db) as store:
        info = _get(store, run_id)
        snapshot = store.load(run_id)
    console.print(display.record_table(info))
    console.print()
    console.print(display.snapshot_view(snapshot, max(console.width - 30, 30)))


@runs_app.command("events", epilog=EPILOG, cls=PlainCommand)
def events(run_id: RunArg, db: DbOpt = None) -> None:
    """A run's audit log: its lifecycle and the phases of its cancel, with timestamps."""
    console = display.make_console()
    with _store(db) as store:
        _get(store, run_id)
        log = store.events(run_id)
    console.print(display.events_table(log))


def cancel(
    run_id: RunArg,
    *,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded, kind user).")
                      ] = "cancelled from the command line",
    wait: Annotated[float, typer.Option(
        "--wait", "-w", min=0.0, help="Then wait up to this many seconds for the run to end.")
    ] = 0.0,
    db: DbOpt = None,
) -> None:
    """Cancel a run by id. The request is recorded durably; the process running it stops it.

    A run that already ended is left as it is and its terminal record is shown.
    """
    console = display.make_console()
    with _store(db) as store:
        before = _get(store, run_id)
        try:
            info = control.cancel(store, run_id, CancelReason("user", reason, REQUESTED_BY))
        except RunNotFound as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(ExitCode.ERROR) from None
        if before.terminal:
            console.print(Text.assemble(("run already ended: ", "bold"),
                                        display.status_text(before.status),
                                        ("  (nothing to cancel)", "dim")))
            console.print(display.record_table(before))
            return
        console.print(Text.assemble(("cancel requested: ", "bold"),
                                    display.status_text(info.status), "  ",
                                    display.reason_text(info.reason)))
        if wait > 0 and not info.terminal:
            info = _await_end(store, run_id, wait)
    console.print(display.record_table(info))
    if not info.terminal:
        console.print(Text(
            "The request is durable. A run driven by `tether run` stops within a fraction of "
            "a second (it watches its record); a run driven by other code stops when that "
            "process next consults the store, at the latest when the run ends, which is then "
            "recorded as cancelled.", style="dim"))


def _await_end(store: SqliteSaver, run_id: str, timeout: float) -> RunInfo:
    deadline = time.monotonic() + timeout
    info = _get(store, run_id)
    while not info.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
        info = _get(store, run_id)
    return info


__all__ = ["cancel", "runs_app"]
