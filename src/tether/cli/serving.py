"""`tether serve`: the HTTP server (Agent Server routes, SSE, web page) over one graph.

The server lives in `tether.server` and needs the `server` extra; it is imported only here, when
the command runs, so the rest of the CLI works without it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated, Any

import typer

from tether.cli.display import make_console
from tether.cli.exits import ExitCode
from tether.cli.loading import load_graph, resolve_db
from tether.worker.command import project_graphs

SERVER_DEPENDENCIES = frozenset({"fastapi", "uvicorn", "starlette", "pydantic", "sse_starlette"})


def serve(
    graph_ref: Annotated[str | None, typer.Argument(
        metavar="MODULE:GRAPH", help="The graph to serve, e.g. app.graphs:graph (default: the "
                                       "graphs of ./langgraph.json).", show_default=False)] = None,
    *,
    config: Annotated[str | None, typer.Option(
        "--config", help="A LangGraph project's langgraph.json: its graphs (by graph id), env "
                         "and local dependencies (default: ./langgraph.json when no "
                         "MODULE:GRAPH is given).", show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535)] = 2024,
    db: Annotated[str | None, typer.Option(
        "--db", help="SQLite file for runs and checkpoints (default: $TETHER_DB, else tether.db)",
        show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="The graph id clients use (assistant_id) (default: the attribute name).")
    ] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Accept requests without an API key (loopback hosts only).")
    ] = False,
    api_keys_file: Annotated[str | None, typer.Option(
        "--api-keys-file", help="`key:tenant` lines (default: $TETHER_API_KEYS).")] = None,
) -> None:
    """Serve a graph over HTTP: the Agent Server routes for runs, SSE streams, a web page.

    Ctrl-C stops the server; runs still going are cancelled (kind shutdown) and checkpointed.
    """
    graphs = _graphs(graph_ref, config, name)
    serve_graphs = _import_server()
    options: dict[str, Any] = {"db": resolve_db(db), "host": host, "port": port,
                               "no_auth": no_auth}
    if api_keys_file is not None:
        options["api_keys_file"] = api_keys_file
    try:
        serve_graphs(graphs=graphs, **options)
    except ValueError as exc:  # the server refuses its options (no keys, no auth off loopback)
        make_console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.USAGE) from None


def _graphs(graph_ref: str | None, config: str | None, name: str | None) -> dict[str, Any]:
    """The graphs to serve by id: `MODULE:GRAPH` (named by `--name` or its attribute), or a
    LangGraph project's `langgraph.json`."""
    if graph_ref is None:
        if name is not None:
            raise typer.BadParameter("a project's graphs are named by their ids in "
                                     "langgraph.json", param_hint="'--name'")
        return project_graphs(config, "tether serve")
    if config is not None:
        raise typer.BadParameter("give MODULE:GRAPH or --config, not both",
                                 param_hint="'--config'")
    graph_id = name or graph_ref.rpartition(":")[2].rpartition(".")[2]
    return {graph_id: load_graph(graph_ref)}


def _import_server() -> Callable[..., Any]:
    console = make_console(stderr=True)
    try:
        server = importlib.import_module("tether.server")
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing in SERVER_DEPENDENCIES:
            console.print(f"[red]error:[/red] `tether serve` needs the server extra "
                          f"({missing} is not installed): pip install 'tether[server]'")
        elif (exc.name or "").startswith("tether.server"):
            console.print("[red]error:[/red] this tether installation has no server "
                          "(tether.server is missing)")
        else:
            raise
        raise typer.Exit(ExitCode.ERROR) from None
    serve_graphs: Callable[..., Any] | None = getattr(server, "serve", None)
    if serve_graphs is None:
        console.print("[red]error:[/red] tether.server has no serve() function")
        raise typer.Exit(ExitCode.ERROR)
    return serve_graphs


__all__ = ["serve"]
