"""`tether`: the command line. Run a graph from `module:attr` with live progress (Ctrl-C cancels
gracefully, twice forces), inspect, cancel and resume recorded runs, serve graphs, and a demo."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, get_args

import typer

from tether.checkpoint.ids import uuid7
from tether.checkpoint.sqlite import SqliteSaver
from tether.cli import demo, extras, records, serving
from tether.cli.display import GRAPH_REF_KEY, make_console
from tether.cli.exits import EPILOG, ExitCode
from tether.cli.loading import attach_store, load_graph, open_store, parse_json, resolve_db
from tether.cli.plain_help import PlainCommand, PlainGroup
from tether.cli.session import Launch, report, watch
from tether.errors import TetherError
from tether.store.base import BaseStore
from tether.store.beside import store_beside
from tether.types import Command, StreamMode
from tether.worker import command as worker_command

STREAM_MODES = tuple(m for m in get_args(StreamMode) if m not in ("updates", "lifecycle"))

app = typer.Typer(
    cls=PlainGroup,
    name="tether",
    help="Run stateful agent graphs that can always be stopped: live progress, Ctrl-C cancels "
         "gracefully (final checkpoint written, resumable), runs recorded in SQLite.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

GraphArg = Annotated[str, typer.Argument(metavar="MODULE:GRAPH",
                                         help="The compiled graph (or StateGraph), e.g. "
                                              "app.graphs:graph; the current directory is on "
                                              "the import path.")]
DbOpt = Annotated[str | None, typer.Option(
    "--db", metavar="PATH", help="SQLite file that records runs and checkpoints "
                 "(default: $TETHER_DB, else tether.db)", show_default=False)]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", metavar="SECONDS", min=0.0,
    help="Cancel the run after this many seconds (kind timeout; exit 4).")]
ModesOpt = Annotated[list[str] | None, typer.Option(
    "--stream-mode", "-m", metavar="MODE",
    help=f"Also print chunks of this stream mode (repeatable): {', '.join(STREAM_MODES)}. "
         "Updates and lifecycle events are always shown.")]


@app.command(epilog=EPILOG, cls=PlainCommand)
def run(
    graph_ref: GraphArg,
    *,
    input: Annotated[str, typer.Option(
        "--input", "-i", metavar="JSON", help="The graph input as JSON, or @file.json.")] = "{}",
    thread: Annotated[str | None, typer.Option(
        "--thread", "-t", help="Thread id (a new one when omitted).")] = None,
    timeout: TimeoutOpt = None,
    db: DbOpt = None,
    stream_mode: ModesOpt = None,
    resume_value: Annotated[str | None, typer.Option(
        "--resume-value", metavar="JSON",
        help="Answer the thread's pending interrupt with this JSON value "
             "(Command(resume=...)); needs --thread.")] = None,
) -> None:
    """Run a graph to its end with live progress. Ctrl-C cancels gracefully; twice forces."""
    if resume_value is not None and thread is None:
        raise typer.BadParameter("--resume-value answers a paused thread: give its --thread",
                                 param_hint="'--resume-value'")
    graph_input: Any = (Command(resume=parse_json(resume_value, "'--resume-value'"))
                        if resume_value is not None else parse_json(input, "'--input'"))
    modes = _modes(stream_mode)
    graph = load_graph(graph_ref)
    path = resolve_db(db)
    store = open_store(path, must_exist=False)
    memory = store_beside(store)
    try:
        graph = _with_store(graph, store, memory)
        thread_id = thread or uuid7()
        store.put_thread(thread_id, {GRAPH_REF_KEY: graph_ref})
        config: dict[str, Any] = {"configurable": {"thread_id": thread_id}}
        if timeout is not None:
            config["timeout"] = timeout
        code = _drive(Launch(graph, graph_ref, path, graph_input, config, modes))
    finally:
        memory.close()
        store.close()
    raise typer.Exit(code)


@app.command(epilog=EPILOG, cls=PlainCommand)
def resume(
    run_id: Annotated[str, typer.Argument(help="A cancelled, timed-out or failed run.")],
    *,
    graph_ref: Annotated[str | None, typer.Option(
        "--graph", "-g", metavar="MODULE:GRAPH",
        help="The graph the run belongs to (default: the one `tether run` recorded on the "
             "run's thread).")] = None,
    db: DbOpt = None,
    timeout: TimeoutOpt = None,
    stream_mode: ModesOpt = None,
) -> None:
    """Continue a cancelled run from its final checkpoint, as a new run on the same thread.

    Only the tasks that had not finished run again.
    """
    from tether.graph.run_resume import resume_config

    modes = _modes(stream_mode)
    path = resolve_db(db)
    store = open_store(path, must_exist=True)
    memory = store_beside(store)
    console = make_console()
    try:
        ref = graph_ref or _recorded_ref(store, run_id)
        graph = _with_store(load_graph(ref, "'--graph'"), store, memory)
        try:
            config = resume_config(graph, run_id, {"timeout": timeout} if timeout else None)
        except TetherError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(ExitCode.ERROR) from None
        console.print(f"resuming run [bold]{run_id}[/bold] from checkpoint "
                      f"{config['configurable']['checkpoint_id']}")
        code = _drive(Launch(graph, ref, path, None, config, modes))
    finally:
        memory.close()
        store.close()
    raise typer.Exit(code)


def _recorded_ref(store: SqliteSaver, run_id: str) -> str:
    info = store.get_run(run_id)
    thread = store.get_thread(info.thread_id) if info and info.thread_id else None
    ref = thread.metadata.get(GRAPH_REF_KEY) if thread is not None else None
    if not isinstance(ref, str):
        raise typer.BadParameter(
            f"name the graph of run {run_id} (MODULE:GRAPH): it was not started by `tether run`"
            + ("" if info else " (and there is no such run in this database)"),
            param_hint="'--graph'")
    return ref


def _with_store(graph: Any, store: SqliteSaver, memory: BaseStore) -> Any:
    if graph.checkpointer is not None and graph.checkpointer is not store:
        make_console(stderr=True).print(
            "[yellow]note:[/yellow] the graph was compiled with its own checkpointer; runs are "
            "recorded there, not in --db")
    return attach_store(graph, store, memory)


def _modes(asked: list[str] | None) -> tuple[str, ...]:
    modes: list[str] = []
    for item in asked or []:
        for mode in filter(None, (m.strip() for m in item.split(","))):
            if mode not in get_args(StreamMode):
                raise typer.BadParameter(
                    f"unknown stream mode {mode!r} (choose from {', '.join(STREAM_MODES)})",
                    param_hint="'--stream-mode'")
            if mode not in modes:
                modes.append(mode)
    return tuple(modes)


def _drive(launch: Launch) -> int:
    console = make_console()
    try:
        ending = asyncio.run(watch(launch, console))
    except TetherError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return ExitCode.ERROR
    except KeyboardInterrupt:  # before the run's signal guard was in place
        return ExitCode.FORCED
    return report(console, ending, launch)


app.command("cancel", epilog=EPILOG, cls=PlainCommand)(records.cancel)
app.command("serve", epilog=EPILOG, cls=PlainCommand)(serving.serve)
app.command("demo", epilog=EPILOG, cls=PlainCommand)(demo.demo)
app.command("worker", epilog=EPILOG, cls=PlainCommand)(
    extras.needing("postgres", "worker", "psycopg", "psycopg_pool")(worker_command.worker))
app.add_typer(records.runs_app, name="runs")


def main() -> None:
    """The `tether` console script."""
    app()


__all__ = ["app", "main"]
