"""`tether worker`: a worker process claiming queued runs from Postgres.

SIGTERM (or Ctrl-C) drains: claiming stops, runs reach a step boundary within `--grace`, then
are handed back to the queue or cancelled (`--on-shutdown`); a second signal acts at once.
SIGKILL loses nothing either: the runs' leases lapse and other workers resume them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from tether.worker import graphs as loading
from tether.worker import project
from tether.worker.options import OnShutdown, WorkerOptions

if TYPE_CHECKING:
    from tether.checkpoint.postgres.store import PostgresSaver
    from tether.graph.compiled import CompiledStateGraph
    from tether.store.base import IndexConfig, TTLConfig

USAGE = 2
MAX_POOL = 16
"""Connections a worker's event loop keeps at most, whatever its concurrency."""
DB_ENV = "TETHER_DB"


GraphsArg = Annotated[list[str] | None, typer.Argument(
    metavar="MODULE:GRAPH...", help="The graph(s) to serve, e.g. app.graphs:graph (default: "
                                      "the graphs of ./langgraph.json).", show_default=False)]
ConfigOpt = Annotated[str | None, typer.Option(
    "--config", help="A LangGraph project's langgraph.json: its graphs (by graph id), env and "
                     "local dependencies (default: ./langgraph.json when no MODULE:GRAPH is "
                     "given).", show_default=False)]
DbOpt = Annotated[str | None, typer.Option(
    "--db", help="PostgreSQL URL of the queue and store (default: $TETHER_DB).",
    show_default=False)]
SchemaOpt = Annotated[str | None, typer.Option(
    "--schema", help="Schema of tether's tables (default: the search_path).")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", min=1,
                                             help="Runs driven at once.")]
LeaseOpt = Annotated[float, typer.Option(
    "--lease", min=0.1, help="Seconds a claim lasts unless renewed (renewed every third).")]
PollOpt = Annotated[float, typer.Option(
    "--poll", min=0.01, help="Seconds between claims when nothing wakes the worker.")]
ListenOpt = Annotated[bool, typer.Option(
    "--listen/--no-listen", help="LISTEN for cancels and new runs (else poll only).")]
ShutdownOpt = Annotated[str, typer.Option(
    "--on-shutdown", help="On SIGTERM, at a step boundary: requeue (hand back) or cancel.")]
GraceOpt = Annotated[float, typer.Option(
    "--grace", min=0.0, help="Seconds a shutdown waits for runs to reach a step boundary.")]
SweepOpt = Annotated[float, typer.Option(
    "--sweep-every", min=0.01,
    help="Seconds between sweeps of abandoned, cancelled or overdue runs.")]
NameOpt = Annotated[str | None, typer.Option(
    "--name", help="Queue name of the graph (one graph only; default: its attribute name, "
                   "as `tether serve` names it).")]
OwnerOpt = Annotated[str | None, typer.Option(
    "--owner", help="This worker's name in leases and logs.")]
RedisOpt = Annotated[str | None, typer.Option(
    "--redis", metavar="URL",
    help="Redis for the stream bus (redis://host:6379/0), as `tether serve --redis` "
         "(default: LISTEN/NOTIFY in the database).", show_default=False)]


def worker(graph_refs: GraphsArg = None, *, config: ConfigOpt = None, db: DbOpt = None,
           schema: SchemaOpt = None,
           concurrency: ConcurrencyOpt = 4, lease: LeaseOpt = 30.0, poll: PollOpt = 1.0,
           listen: ListenOpt = True, on_shutdown: ShutdownOpt = "requeue",
           grace: GraceOpt = 30.0, sweep_every: SweepOpt = 2.0, name: NameOpt = None,
           owner: OwnerOpt = None, redis: RedisOpt = None) -> None:
    """Claim runs queued in Postgres (by `tether serve --db postgresql://...`) and drive them.

    SIGTERM drains gracefully; a second SIGTERM acts at once.
    """
    url = db or os.environ.get(DB_ENV) or ""
    if not url.startswith(("postgresql://", "postgres://")):
        raise typer.BadParameter("give the queue's PostgreSQL URL (postgresql://...)",
                                 param_hint="'--db'")
    if on_shutdown not in ("requeue", "cancel"):
        raise typer.BadParameter("choose requeue or cancel", param_hint="'--on-shutdown'")
    if redis is not None:
        if not redis.startswith(("redis://", "rediss://", "unix://")):
            raise typer.BadParameter("give a Redis URL (redis://host:6379/0)",
                                     param_hint="'--redis'")
        try:
            import redis as _redis  # noqa: F401 - only whether the redis extra is installed
        except ImportError:
            raise typer.BadParameter("a Redis bus needs the redis extra: pip install "
                                     "'tether[redis]'", param_hint="'--redis'") from None
    if graph_refs:
        if name is not None and len(graph_refs) != 1:
            raise typer.BadParameter("--name names one graph", param_hint="'--name'")
        if config is not None:
            raise typer.BadParameter("give MODULE:GRAPH or --config, not both",
                                     param_hint="'--config'")
        served = Served(_graphs(graph_refs, name))
    else:
        if name is not None:
            raise typer.BadParameter("a project's graphs are named by their ids in "
                                     "langgraph.json", param_hint="'--name'")
        served = project_graphs(config, "tether worker")
    mode: OnShutdown = "requeue" if on_shutdown == "requeue" else "cancel"
    options = WorkerOptions(concurrency=concurrency, lease=lease, poll=poll, listen=listen,
                            sweep_every=sweep_every, on_shutdown=mode, grace=grace,
                            owner=owner)
    options = dataclasses.replace(options, owner=options.name())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tether.checkpoint.postgres import PostgresSaver

    # Runs share the pool: a run holds a connection only for a statement, so a hundred runs
    # need far fewer than a hundred connections (Postgres allows 100 by default, in all).
    # Named after the worker, so its connections are told apart in `pg_stat_activity`.
    store = PostgresSaver(url, schema=schema, async_size=min(concurrency + 3, MAX_POOL),
                          application_name=f"tether-worker {options.owner}"[:63])
    try:
        asyncio.run(_serve(store, served, options, redis))
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class Served:
    """What a command serves: graphs by id, and the settings of the long-term store it gives
    those compiled without one (a `langgraph.json`'s `store`; none for `MODULE:GRAPH`)."""

    graphs: dict[str, CompiledStateGraph]
    store_index: IndexConfig | None = None
    store_ttl: TTLConfig | None = None


def project_graphs(config: str | None, command: str) -> Served:
    """The graphs of a LangGraph project's `langgraph.json` (`config`, else the one in the
    current directory), by graph id, and its store settings, after setting its env and
    dependency paths; what tether ignores in the file is noted on stderr.

    Raises:
        typer.BadParameter: no such file (or none in the current directory), or a graph of it
            (or its store's embedding) does not load.
    """
    path = config or project.find()
    if path is None:
        raise typer.BadParameter(f"{command} needs MODULE:GRAPH, or --config langgraph.json "
                                 "(there is none in the current directory)",
                                 param_hint="'MODULE:GRAPH'")
    try:
        found = project.Project.read(path)
        for line in found.notices():
            print(f"note: {line}", file=sys.stderr)
        found.activate()
        return Served(found.load_all(), found.store_index(), found.store.ttl)
    except project.ProjectError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--config'") from exc


def _graphs(refs: list[str], name: str | None) -> dict[str, CompiledStateGraph]:
    found = {}
    for ref in refs:
        try:
            graph = loading.load(ref)
        except (ValueError, TypeError, ImportError) as exc:
            raise typer.BadParameter(str(exc), param_hint="'MODULE:GRAPH'") from exc
        found[name or loading.default_name(ref)] = graph
    return found


async def _serve(store: PostgresSaver, served: Served, options: WorkerOptions,
                 redis: str | None) -> None:
    from tether.bus import bus_for
    from tether.store.beside import store_beside
    from tether.worker.worker import Worker

    memory = store_beside(store, index=served.store_index, ttl=served.store_ttl)
    if served.store_ttl:
        memory.start_ttl_sweeper()
    graphs = {n: g.rebind(store, name=n, default_store=memory)
              for n, g in served.graphs.items()}
    bus = bus_for(store, redis)
    engine = Worker(store, graphs, options, bus=bus)
    loop = asyncio.get_running_loop()
    signals = [0]

    def on_signal() -> None:
        signals[0] += 1
        engine.drain(force=signals[0] > 1)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        await engine.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await bus.aclose()
        aclose = getattr(memory, "aclose", None)
        if aclose is not None:  # a PostgresStore: its pool on this loop too
            await aclose()
        else:
            memory.close()
        await store.aclose()


__all__ = ["Served", "project_graphs", "worker"]
