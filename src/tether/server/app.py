"""The server as an ASGI application (`create_app`) and as a process (`serve`)."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import tether
from tether.cancel.scope import anyio_scope
from tether.checkpoint.base import CheckpointStore
from tether.graph.compiled import CompiledStateGraph
from tether.graph.observer import observer_for
from tether.server import errors, onewrite
from tether.server.auth import ApiKeys, check_bind, load_api_keys
from tether.server.board import ReportingLauncher, RunBoard
from tether.server.context import ServerState
from tether.server.express import Express
from tether.server.graphs import Assistants
from tether.server.guards import Guard
from tether.server.launcher import FEED_MODES, LocalLauncher, RunLauncher, run_config
from tether.server.limits import ServerLimits, StreamSlots
from tether.server.routes import assistants, cancel, console, runs, stateless, threads, ui
from tether.server.routes import store as store_routes
from tether.server.wire import RecentFacts, WireJSON, run_json
from tether.store.base import BaseStore, IndexConfig, TTLConfig
from tether.store.beside import store_beside

if TYPE_CHECKING:
    from tether.bus import StreamBus

_NO_KEYS = ("the server requires API keys and none were given: set TETHER_API_KEYS "
            "('key1:tenantA,key2:tenantB'), pass an API keys file, or serve without auth "
            "on 127.0.0.1 (--no-auth)")


def create_app(graphs: Mapping[str, CompiledStateGraph], store: CheckpointStore | None = None,
               *, api_keys: ApiKeys | Mapping[str, str] | None = None, auth: bool = True,
               limits: ServerLimits | None = None, launcher: RunLauncher | None = None,
               long_term_store: BaseStore | None = None, redis: str | None = None) -> FastAPI:
    """The Agent Server's run routes, tether's extras and the web page, as a FastAPI app.

    Args:
        graphs: graph id → compiled graph. Each is recompiled onto `store` (keeping its
            interrupts and config) if it does not already use it.
        store: where runs, threads and checkpoints live; `SqliteSaver("tether.db")` if None
            (then closed when the app shuts down; a store given is the caller's to close).
        api_keys: key → tenant (or `ApiKeys`); None reads `$TETHER_API_KEYS`.
        auth: False serves without keys; the app then answers only on a loopback address.
        limits: body, stream and feed bounds.
        launcher: how runs are run. If None: in this process (`LocalLauncher`), or, on a store
            that workers serve (`PostgresSaver`), queued for `tether worker` processes
            (`tether.worker.QueueLauncher`), whose runs stream to the server on a bus
            (`tether.bus`): Redis Streams at `redis`, else `LISTEN/NOTIFY` in the store's
            database.
        long_term_store: the long-term store of the graphs compiled without one, served on
            the `/store` routes; if None, one in `store`'s database (`store_beside`), closed
            when the app shuts down (a store given is the caller's to close).
        redis: the Redis URL of the bus, for a store that workers serve.

    Raises:
        ValueError: auth is on and there are no keys; no graphs; `redis` for a store no
            workers serve, or not a Redis URL.
        TypeError: a graph is not a compiled tether graph.
    """
    keys = _keys(api_keys) if auth else None
    owned = store is None
    if store is None:
        from tether.checkpoint.sqlite import SqliteSaver

        store = SqliteSaver("tether.db")
    if redis is not None and not getattr(store, "has_workers", False):
        raise ValueError("a Redis bus carries runs from workers: it needs a postgresql:// store")
    opened = store_beside(store) if long_term_store is None else None
    memory = long_term_store if long_term_store is not None else cast(BaseStore, opened)
    limits = limits or ServerLimits()
    bus = None
    if launcher is None and getattr(store, "has_workers", False):
        from tether.bus import bus_for

        bus = bus_for(store, redis)
    state = _state(Assistants(graphs, store, memory), store, limits, launcher,
                   auth=keys is not None, memory=memory, bus=bus)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.aclose()
        if bus is not None:
            await bus.aclose()
        if opened is not None:
            opened.close()
        close = getattr(store, "close", None)
        if owned and close is not None:
            close()

    app = FastAPI(title="tether", version=tether.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, default_response_class=WireJSON)
    app.state.tether = state
    errors.install(app)
    for module in MATCHED:
        app.include_router(module.router, responses=errors.RESPONSES)
    _document_in_order(app)
    app.mount("/static", StaticFiles(directory=ui.STATIC), name="static")
    # Added last, so outermost: the gate, then the express lane, then FastAPI's routing.
    app.add_middleware(Express, lanes={"POST": [cancel.express], "GET": [runs.express_get]})
    app.add_middleware(Guard, keys=keys, max_body_bytes=limits.max_body_bytes)
    return app


DOCUMENTED = (assistants, threads, runs, stateless, cancel, store_routes, console, ui)
"""The route modules in the order the OpenAPI document lists their paths (the Agent Server's)."""
MATCHED = (cancel, runs, stateless, threads, assistants, store_routes, console, ui)
"""The same modules in the order a request is matched against them. FastAPI tries the routes
one after the other, a few microseconds each: the hottest (cancel a run; create, read, join or
stream one) come first, instead of after twenty others. No path of one module matches a route
of another (a test checks), so the order changes no answer."""


def _document_in_order(app: FastAPI) -> None:
    """Keep the OpenAPI document's paths in `DOCUMENTED` order, whatever order the routes
    are matched in (FastAPI lists paths in match order)."""
    build = app.openapi
    ranked = [route.path for module in DOCUMENTED for route in module.router.routes]

    def openapi() -> dict[str, Any]:
        document = build()
        paths: dict[str, Any] = document.get("paths", {})
        order = [p for p in dict.fromkeys(ranked) if p in paths]
        if list(paths) != order + [p for p in paths if p not in order]:
            document["paths"] = {p: paths[p] for p in [*order, *paths]}
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _state(served: Assistants, store: CheckpointStore, limits: ServerLimits,
           launcher: RunLauncher | None, *, auth: bool, memory: BaseStore,
           bus: StreamBus | None) -> ServerState:
    """The server's parts: its runs launched (and reported to the pages' board)."""
    inner = launcher or _launcher_for(store, served, limits, bus)
    board = RunBoard(store, inner, lambda info: run_json(info, inner.facts(info.run_id)))
    return ServerState(served, store, ReportingLauncher(inner, board), limits,
                       StreamSlots(limits.max_streams_per_key), auth=auth, board=board,
                       long_term_store=memory)


def _launcher_for(store: CheckpointStore, served: Assistants, limits: ServerLimits,
                  bus: StreamBus | None) -> RunLauncher:
    """Runs in this process; or, on a store that workers serve (Postgres), queued for them."""
    if not getattr(store, "has_workers", False):
        return LocalLauncher(served.first.graph, limits)
    from tether.server.feed import RunFeed
    from tether.worker import QueueLauncher

    queued = QueueLauncher(
        store,  # type: ignore[arg-type]
        feed_factory=lambda run_id: RunFeed(run_id, limit=limits.feed_events),
        run_config=run_config, cancel_wait=limits.cancel_wait_seconds,
        feed_retain=limits.feed_retain_seconds, facts=RecentFacts(), bus=bus,
        feed_modes=FEED_MODES)
    # Its feeds are the RunFeeds the factory makes; it declares them as its own Feed protocol.
    return cast(RunLauncher, queued)


def _keys(api_keys: ApiKeys | Mapping[str, str] | None) -> ApiKeys:
    if isinstance(api_keys, ApiKeys):
        return api_keys
    if api_keys is not None:
        return ApiKeys(api_keys)
    found = load_api_keys()
    if found is None:
        raise ValueError(_NO_KEYS)
    return found


def open_store(db: str) -> Any:
    """The store `db` names: a `PostgresSaver` for a `postgresql://` (or `postgres://`) URL,
    else a `SqliteSaver` on that file."""
    if db.startswith(("postgresql://", "postgres://")):
        from tether.checkpoint.postgres import PostgresSaver

        return PostgresSaver(db)
    from tether.checkpoint.sqlite import SqliteSaver

    return SqliteSaver(db)


def serve(graphs: Mapping[str, CompiledStateGraph], *, db: str = "tether.db",
          host: str = "127.0.0.1", port: int = 2024, no_auth: bool = False,
          api_keys_file: str | os.PathLike[str] | None = None,
          limits: ServerLimits | None = None, log_level: str = "info",
          store_index: IndexConfig | None = None, store_ttl: TTLConfig | None = None,
          redis: str | None = None) -> None:
    """Serve `graphs` over HTTP until interrupted (what `tether serve module:graph` runs).

    On shutdown (Ctrl-C, SIGTERM) every run still going is cancelled with kind `shutdown`,
    keeping its final checkpoint, so it can be resumed.

    Args:
        db: the SQLite file for runs, threads and checkpoints; or a `postgresql://` URL, whose
            runs are queued for `tether worker` processes. The server's long-term store (for
            the graphs compiled without one, and the `/store` routes) is in the same database.
        no_auth: serve without API keys; refused unless `host` is a loopback address.
        api_keys_file: `key:tenant` lines; else `$TETHER_API_KEYS`.
        store_index, store_ttl: semantic search and time-to-live settings of the server's
            long-term store (a `langgraph.json`'s `store` key); with a TTL, expired items are
            swept in the background.
        redis: with a `postgresql://` db, the Redis URL of the bus that carries the workers'
            runs to the server (default: `LISTEN/NOTIFY` in the database).

    Raises:
        ValueError: no auth on a non-loopback host; auth with no keys; a malformed key list;
            `redis` without a `postgresql://` db.
    """
    check_bind(host, auth=not no_auth)
    keys: Any = None
    if not no_auth:
        keys = load_api_keys(file=api_keys_file)
        if keys is None:
            raise ValueError(_NO_KEYS)
    store = open_store(db)
    try:
        memory = store_beside(store, index=store_index, ttl=store_ttl)
    except BaseException:
        store.close()
        raise
    try:
        if store_ttl:
            memory.start_ttl_sweeper()
        app = create_app(graphs, store, api_keys=keys, auth=not no_auth, limits=limits,
                         long_term_store=memory, redis=redis)
        _run(app, host=host, port=port, log_level=log_level)
    finally:
        memory.close()
        store.close()


LOOP = "auto"
"""uvicorn's event loop: uvloop where it is installed (the `server` extra installs it, where it
builds), else asyncio's. uvloop runs asyncio's own `Task`s, so tether's cancel scopes and the
cancellation suites behave the same on both."""
HTTP = "auto"
"""uvicorn's HTTP parser: httptools when installed (the `server` extra), else h11; its protocol
writes a response's head and body in one write (`tether.server.onewrite`)."""
SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (`sys.setswitchinterval`;
Python's default is 0.005). The store's writer thread runs Python between its SQLite calls
(preparing a group commit, settling its callers); with the default, the event loop could wait
up to 5 ms for it before it serves the next request. Measured with 50 runs checkpointing and
with HTTP cancels: lower p99 latencies, the same throughput."""


def settle_heap() -> None:
    """Move every object alive now out of the garbage collector's sight (`gc.freeze`), once
    the server is built, before it listens.

    What exists once the server listens (modules, the app and its routes, the compiled graphs,
    pydantic's schemas: the bulk of the heap) lives as long as the process. Left tracked, it
    would be walked by every full collection, which stops the event loop for tens of
    milliseconds while runs and requests wait (measured: a 50 ms pause among 50 runs
    checkpointing, the `server-blocking` row's p99). Frozen, a full collection walks only what
    requests and runs made since. Garbage of the start-up is collected first, so none of it is
    kept.
    """
    gc.collect()
    gc.freeze()


WARM_UP_PATH = "/tether-warm-up/matches-no-route"
"""The path of the request `warm_up` sends through the routes: it matches none, so it is tried
against every one of them (and answered 404 without running any)."""


async def warm_up(app: FastAPI) -> None:
    """Do now, before the server listens, what its first requests and runs would otherwise do
    on the event loop while every other client waits (then `settle_heap` freezes it with the
    rest of the start-up).

    - FastAPI builds what it needs to match a route (and to read its parameters) when a
      request first reaches the route's router: measured, 0.7 s for the first request to
      reach the last of them. One request matching no route is tried against every route.
    - A run of the server streams `messages` (`FEED_MODES`), whose observer imports LangChain's
      callbacks where `langchain-core` is installed (0.4 s), and its first cancel scope
      imports anyio's asyncio backend: on the first run.

    Cancellation:
        Nothing is left half done: a cancelled warm-up leaves the rest to the first requests.
    """
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": WARM_UP_PATH,
             "raw_path": WARM_UP_PATH.encode(), "query_string": b"", "root_path": "",
             "headers": [], "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}
    await app.router(scope, receive, send)
    observer_for(FEED_MODES, records=False)
    anyio_scope()  # the runs' cancel scopes: anyio's asyncio backend, imported on first use


def _run(app: FastAPI, *, host: str, port: int, log_level: str) -> None:
    """Serve `app` with uvicorn until interrupted.

    Raises:
        SystemExit: 3, as `uvicorn.run`, when the server could not start (a port in use...).
    """
    import uvicorn

    state: ServerState = app.state.tether

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await warm_up(app)
            settle_heap()  # before the first request: the pause of the collection is paid here
            await super().startup(sockets)

        async def shutdown(self, sockets: Any = None) -> None:
            # Before uvicorn waits for open connections: end the streams that would otherwise
            # hold it (the pages' boards, the streams of runs still going).
            await state.aclose()
            await super().shutdown(sockets)

    server = Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, ws="none",
                                   loop=LOOP, http=onewrite.protocol(HTTP), lifespan="on",
                                   timeout_graceful_shutdown=30))
    sys.setswitchinterval(SWITCH_INTERVAL)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(3)


__all__ = ["create_app", "open_store", "serve", "settle_heap", "warm_up"]
