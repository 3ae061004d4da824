"""`tether serve`: the HTTP server (Agent Server routes, SSE, web page) over one graph.

The server lives in `tether.server` and needs the `server` extra; it is imported only here, when
the command runs, so the rest of the CLI works without it."""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from tether.cli import extras
from tether.cli.display import make_console
from tether.cli.exits import ExitCode
from tether.cli.loading import load_graph, resolve_db
from tether.worker.command import Served, project_graphs

UVICORN_STARTUP_FAILURE = 3
"""uvicorn's exit code when it cannot start (the same number as tether's `cancelled`)."""


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
        "--db", metavar="PATH",
        help="SQLite file for runs and checkpoints (default: $TETHER_DB, else tether.db)",
        show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="The graph id clients use (assistant_id) (default: the attribute name).")
    ] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Accept requests without an API key (loopback hosts only).")
    ] = False,
    api_keys_file: Annotated[str | None, typer.Option(
        "--api-keys-file", help="`key:tenant` lines (default: $TETHER_API_KEYS).")] = None,
    redis: Annotated[str | None, typer.Option(
        "--redis", metavar="URL",
        help="With --db postgresql://...: Redis for the stream bus that brings the workers' "
             "runs (redis://host:6379/0; default: LISTEN/NOTIFY in the database).",
        show_default=False)] = None,
) -> None:
    """Serve a graph over HTTP: the Agent Server routes for runs, SSE streams, a web page.

    Ctrl-C stops the server; runs still going are cancelled (kind shutdown) and checkpointed.
    """
    path = resolve_db(db)
    serve_graphs = _import_server(path)
    if redis is not None:
        if not path.startswith(("postgresql://", "postgres://")):
            raise typer.BadParameter("a Redis bus carries runs from workers: it needs "
                                     "--db postgresql://...", param_hint="'--redis'")
        extras.require("redis", "serve --redis", "redis")
    served = _graphs(graph_ref, config, name)
    options: dict[str, Any] = {"db": path, "host": host, "port": port, "no_auth": no_auth}
    for key, value in (("api_keys_file", api_keys_file), ("store_index", served.store_index),
                       ("store_ttl", served.store_ttl), ("redis", redis)):
        if value is not None:
            options[key] = value
    _check_address(host, port)
    try:
        serve_graphs(graphs=served.graphs, **options)
    except ValueError as exc:  # the server refuses its options (no keys, no auth off loopback)
        make_console(stderr=True).print(f"[red]error:[/red] {exc}", markup=False)
        raise typer.Exit(ExitCode.USAGE) from None
    except SystemExit as exc:
        if exc.code == UVICORN_STARTUP_FAILURE:  # bound by someone else meanwhile
            raise typer.Exit(ExitCode.SERVE_FAILED) from None
        raise


def _graphs(graph_ref: str | None, config: str | None, name: str | None) -> Served:
    """The graphs to serve by id: `MODULE:GRAPH` (named by `--name` or its attribute), or a
    LangGraph project's `langgraph.json` (with its store's settings)."""
    if graph_ref is None:
        if name is not None:
            raise typer.BadParameter("a project's graphs are named by their ids in "
                                     "langgraph.json", param_hint="'--name'")
        return project_graphs(config, "tether serve")
    if config is not None:
        raise typer.BadParameter("give MODULE:GRAPH or --config, not both",
                                 param_hint="'--config'")
    graph_id = name or graph_ref.rpartition(":")[2].rpartition(".")[2]
    return Served({graph_id: load_graph(graph_ref)})


def _check_address(host: str, port: int) -> None:
    """Refuse at once, in one line, an address another process is listening on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        _unavailable(f"cannot resolve --host {host}: {exc.strerror}")
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = ("already in use" if exc.errno == errno.EADDRINUSE
                      else exc.strerror or str(exc))
            _unavailable(f"cannot listen on {host}:{port}: {reason}")


def _unavailable(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(ExitCode.SERVE_FAILED)


def _import_server(db: str) -> Callable[..., Any]:
    extras.require("server", "serve", "fastapi", "uvicorn", "pydantic", "tether.server")
    if db.startswith(("postgresql://", "postgres://")):
        extras.require("postgres", "serve --db postgresql://...", "psycopg", "psycopg_pool")
    from tether.server import serve as serve_graphs

    return serve_graphs


__all__ = ["serve"]
