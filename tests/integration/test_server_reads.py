"""The server never reads its store with a blocking call on its event loop: every read route
(threads, search, state, history, runs, join, the console's list, run and timeline, the live
board) awaits the store's async reads, which do real async I/O (Postgres) or run off the loop
(SQLite's reader thread; SQLite's point reads by key, which never wait in WAL mode, run inline
by design: `tether.checkpoint.sqlite.reads`). A sync read on the loop would stall every request
and stream the loop serves for a disk's or a network round trip's time.

The store here notes each sync read made on the server's thread; the data is written before
the server starts (through the library), so only the routes read while the server serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.conftest import fresh_schema
from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.checkpoint.sqlite import SqliteSaver
from tether.checkpoint.sqlite.reads import POINT_READS
from tether.server import create_app
from tether.server.wire import TENANT_KEY
from tether.types import CancelReason, RunInfo, RunStatus

from .server_graphs import KEYS, LiveServer, graphs

pytestmark = pytest.mark.anyio

SYNC_READS = ("get_thread", "get_run", "list_runs", "search_threads", "get_checkpoint",
              "list_checkpoints", "list_threads", "events", "load", "cancel_requests")
"""Every sync read of the store protocol."""


class NotesLoopReads:
    """A store mixin noting each sync read made on `loop_thread` (the server's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop_thread: threading.Thread | None = None
        self.on_loop: list[str] = []

    def noted(self, name: str) -> None:
        """Note a sync read if it is made on the server's thread."""
        if threading.current_thread() is self.loop_thread:
            self.on_loop.append(name)


def _noting(name: str) -> Callable[..., Any]:
    def read(self: NotesLoopReads, *args: Any, **kwargs: Any) -> Any:
        self.noted(name)
        return getattr(super(NotesLoopReads, self), name)(*args, **kwargs)

    read.__name__ = name
    return read


for _name in SYNC_READS:
    setattr(NotesLoopReads, _name, _noting(_name))


class Sqlite(NotesLoopReads, SqliteSaver):
    """SQLite, noting sync reads on the server's loop."""


def _sqlite(tmp: Path) -> Iterator[Any]:
    made = Sqlite(tmp / "reads.db")
    yield made
    made.close()


def _postgres(_tmp: Path) -> Iterator[Any]:
    from tether.checkpoint.postgres import PostgresSaver

    class Postgres(NotesLoopReads, PostgresSaver):
        """Postgres, noting sync reads on the server's loop."""

    with fresh_schema() as (dsn, schema):
        made = Postgres(dsn, schema=schema)
        yield made
        made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store noting sync reads made on the server's loop."""
    opened = _sqlite if request.param == "sqlite" else _postgres
    yield from opened(tmp_path)


Seeded = dict[str, str]


def _seed(store: CheckpointStore) -> Seeded:
    """Threads of tenant-a with runs of every end, written through the library: "t1" with
    an ended run, a cancelled one holding the thread's head and one recorded without a tenant;
    "t2" with a paused run; "t3" with a failed one."""
    served = graphs()
    tenant = {TENANT_KEY: "tenant-a"}
    ids: Seeded = {}
    for thread_id, graph_id, graph_input in (("t1", "counter", {"count": 0, "limit": 2}),
                                             ("t2", "approval", {"question": "ok?"}),
                                             ("t3", "failing", {"value": 1})):
        store.put_thread(thread_id, {**tenant, "graph_id": graph_id, "k": thread_id})
        graph = served[graph_id].rebind(store, name=graph_id)
        with contextlib.suppress(Exception):  # the failing graph raises
            graph.invoke(graph_input, {"configurable": {"thread_id": thread_id}})
        ids[graph_id] = store.list_runs(thread_id=thread_id)[0].run_id
    head = store.get_checkpoint("t1")
    assert head is not None
    store.create_run(RunInfo("stopped", "t1", RunStatus.PENDING, metadata={"graph": "counter"}))
    store.mark_running("stopped")
    store.finish_run("stopped", RunFinish(
        status=RunStatus.CANCELLED, checkpoint_id=head.id, thread_id="t1",
        reason=CancelReason("user", "stop", "test")))
    ids["stopped"], ids["checkpoint"] = "stopped", head.id
    # A cancelled run whose thread has moved on since (its checkpoint is not the head).
    first = list(store.list_checkpoints("t1"))[-1]
    store.create_run(RunInfo("older", "t1", RunStatus.PENDING, metadata={"graph": "counter"}))
    store.mark_running("older")
    store.finish_run("older", RunFinish(
        status=RunStatus.CANCELLED, checkpoint_id=first.id, thread_id="t1",
        reason=CancelReason("user", "stop", "test")))
    return ids


@pytest.fixture
def seeded(store: Any) -> Seeded:
    return _seed(store)


@contextlib.contextmanager
def _serving(store: Any) -> Iterator[LiveServer]:
    with LiveServer(create_app(graphs(), store, api_keys=KEYS)) as server:
        store.loop_thread = server.thread
        try:
            yield server
        finally:
            store.loop_thread = None


@pytest.fixture
async def http(store: Any, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    del seeded
    with _serving(store) as server:
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": "key-a"},
                                     timeout=10) as client:
            yield client


def _reads(ids: Seeded) -> list[tuple[str, str, Any, int]]:
    """Every read route: method, path, JSON body, the status it answers."""
    ended, paused, failed = ids["counter"], ids["approval"], ids["failing"]
    checkpoint = ids["checkpoint"]
    return [
        ("GET", "/threads/t1", None, 200),
        ("GET", "/threads/nope", None, 404),
        ("POST", "/threads/search", {"metadata": {"k": "t1"}}, 200),
        ("POST", "/threads/search", {"status": "idle", "limit": 5}, 200),
        ("GET", "/threads/t1/state", None, 200),
        ("GET", f"/threads/t1/state/{checkpoint}", None, 200),
        ("POST", "/threads/t1/state/checkpoint", {"checkpoint": {"checkpoint_id": checkpoint}},
         200),
        ("POST", "/threads/t1/history", {"limit": 10}, 200),
        ("GET", "/threads/t1/runs", None, 200),
        ("GET", f"/threads/t1/runs/{ended}", None, 200),
        ("GET", "/threads/t1/runs/stopped", None, 200),
        ("GET", f"/threads/t1/runs/{ended}/join", None, 200),
        ("GET", f"/threads/t2/runs/{paused}/join", None, 200),
        ("GET", f"/threads/t3/runs/{failed}/join", None, 200),
        ("GET", "/tether/runs", None, 200),
        ("GET", "/tether/runs?status=cancelled&q=stop", None, 200),
        ("GET", f"/tether/runs/{ended}", None, 200),
        ("GET", "/tether/runs/stopped", None, 200),
        ("GET", f"/tether/runs/{paused}", None, 200),
        ("GET", f"/tether/runs/{failed}", None, 200),
        ("GET", f"/tether/runs/{ended}/timeline", None, 200),
        ("GET", "/tether/runs/stopped/timeline", None, 200),
        ("GET", f"/threads/t1/runs/{ended}/stream", None, 200),
        ("GET", f"/tether/runs/{ended}/stream", None, 200),
        ("POST", "/tether/runs/older/resume", {}, 409),
        ("POST", "/runs/cancel", {"status": "pending"}, 404),
    ]


async def test_no_read_route_reads_the_store_on_the_event_loop(
        store: Any, seeded: Seeded, http: httpx.AsyncClient) -> None:
    answers, on_loop = {}, {}
    for method, path, body, status in _reads(seeded):
        store.on_loop = []
        answer = await http.request(method, path, json=body)
        assert answer.status_code == status, (path, answer.text)
        if store.on_loop:
            on_loop[f"{method} {path}"] = store.on_loop
        answers[path] = answer.json() if "json" in answer.headers["content-type"] \
            else answer.text
    if isinstance(store, SqliteSaver):  # SQLite's point reads run inline, by design
        on_loop = {route: names for route, names in on_loop.items()
                   if not set(names) <= POINT_READS}
    assert sorted(on_loop) == [], on_loop  # the routes that read the store on the loop
    # The reads answered what the store holds.
    assert answers["/threads/t1"]["metadata"]["k"] == "t1"
    assert answers["/threads/t1/state"]["values"] == {"count": 2, "limit": 2}
    assert len(answers["/threads/t1/history"]) >= 3
    assert {r["run_id"] for r in answers["/threads/t1/runs"]} >= {seeded["counter"], "stopped"}
    assert answers[f"/threads/t2/runs/{seeded['approval']}/join"]["__interrupt__"]
    assert [r["run_id"] for r in answers["/tether/runs?status=cancelled&q=stop"]["runs"]] == [
        "older", "stopped"]
    assert answers[f"/tether/runs/{seeded['approval']}"]["interrupts"]
    assert answers[f"/tether/runs/{seeded['counter']}/timeline"]
    assert "has moved on" in answers["/tether/runs/older/resume"]["detail"]


async def test_the_live_board_reads_the_store_off_the_event_loop(
        store: Any, seeded: Seeded, http: httpx.AsyncClient) -> None:
    del seeded
    store.on_loop = []
    seq = (await http.get("/tether/runs")).json()["board_seq"]
    found: list[dict[str, Any]] = []
    async with http.stream("GET", "/tether/live", headers={"last-event-id": str(seq)}) as sse:
        # A run recorded meanwhile by another handle (no tenant of its own: the board reads
        # its thread to tell whose it is) reaches the page through the board's looks.
        await asyncio.to_thread(_record_a_run, store)
        async with asyncio.timeout(10):
            event = ""
            async for line in sse.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "run":
                    found.append(json.loads(line[5:]))
                    if found[-1]["run_id"] == "later":
                        break
    assert found[-1]["run_id"] == "later"
    assert [name for name in store.on_loop
            if not (isinstance(store, SqliteSaver) and name in POINT_READS)] == []


def _record_a_run(store: CheckpointStore) -> None:
    store.create_run(RunInfo("later", "t1", RunStatus.PENDING, metadata={"graph": "counter"}))
    store.mark_running("later")
    store.finish_run("later", RunFinish(status=RunStatus.SUCCESS))
