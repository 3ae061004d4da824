"""The server's hottest routes do only the work a request needs: no FastAPI dependency to
resolve, no re-validation of the records they answer (the OpenAPI document still declares
them), no store write that blocks the event loop (on any store), and no store read to answer a
thread just created."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from conformance.conftest import fresh_schema
from sqlite_lock import WriteLock
from tether.checkpoint.base import RunFinish, StoredCheckpoint, ThreadRecord
from tether.checkpoint.memory import InMemorySaver
from tether.checkpoint.sqlite import SqliteSaver
from tether.server import create_app
from tether.server.app import DOCUMENTED, MATCHED
from tether.server.feed import RunFeed
from tether.server.routes import cancel, runs, stateless, threads
from tether.types import CancelReason, RunInfo, RunStatus

from .server_graphs import eventually, graphs, in_process

pytestmark = pytest.mark.anyio

HOT = [
    ("POST", "/threads"),
    ("GET", "/threads/{thread_id}"),
    ("POST", "/threads/{thread_id}/runs"),
    ("POST", "/threads/{thread_id}/runs/stream"),
    ("POST", "/threads/{thread_id}/runs/wait"),
    ("GET", "/threads/{thread_id}/runs"),
    ("GET", "/threads/{thread_id}/runs/{run_id}"),
    ("GET", "/threads/{thread_id}/runs/{run_id}/join"),
    ("GET", "/threads/{thread_id}/runs/{run_id}/stream"),
    ("POST", "/threads/{thread_id}/runs/{run_id}/cancel"),
    ("POST", "/runs/stream"),
    ("POST", "/runs/wait"),
]
"""Create a thread or a run, read it, join it, stream it, cancel it."""


class NotesWriters:
    """A store mixin noting every thread or run write: the store method of each made with the
    async API (`calls`; `entered` is set as one begins) and the OS thread of each made with
    the sync API (`writers`): the server must make them without blocking its event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writers: list[int] = []
        self.calls: list[str] = []
        self.entered: asyncio.Event | None = None

    def _began(self, name: str) -> None:
        self.calls.append(name)
        if self.entered is not None:
            self.entered.set()

    async def aput_thread(self, thread_id: str,
                          metadata: dict[str, Any] | None = None) -> ThreadRecord:
        self._began("aput_thread")
        return await super().aput_thread(thread_id, metadata)  # type: ignore[misc, no-any-return]

    async def adelete_thread(self, thread_id: str) -> None:
        self._began("adelete_thread")
        await super().adelete_thread(thread_id)  # type: ignore[misc]

    async def adelete_run(self, run_id: str) -> bool:
        self._began("adelete_run")
        return await super().adelete_run(run_id)  # type: ignore[misc, no-any-return]

    def put_thread(self, thread_id: str, metadata: dict[str, Any] | None = None) -> ThreadRecord:
        self.writers.append(threading.get_ident())
        return super().put_thread(thread_id, metadata)  # type: ignore[misc, no-any-return]

    def delete_thread(self, thread_id: str) -> None:
        self.writers.append(threading.get_ident())
        super().delete_thread(thread_id)  # type: ignore[misc]

    def delete_run(self, run_id: str) -> bool:
        self.writers.append(threading.get_ident())
        return super().delete_run(run_id)  # type: ignore[misc, no-any-return]


class Watched(NotesWriters, SqliteSaver):
    """A SQLite store that notes the thread of every thread or run write made with the sync
    API, and counts the reads that answer a thread's state and status."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sync_creates = 0
        self.cancel_batches: list[int] = []
        self.state_reads = 0
        self.thread_reads = 0

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        self.thread_reads += 1
        return super().get_thread(thread_id)

    async def arequest_cancels(self, requests: Sequence[tuple[str, CancelReason]],
                               ) -> list[tuple[RunInfo, bool] | Exception]:
        self.cancel_batches.append(len(requests))
        return await super().arequest_cancels(requests)

    def create_run(self, info: RunInfo) -> RunInfo:
        self.sync_creates += 1
        return super().create_run(info)

    def get_checkpoint(self, thread_id: str, ns: str = "",
                       checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        self.state_reads += 1
        return super().get_checkpoint(thread_id, ns, checkpoint_id)

    def list_runs(self, **options: Any) -> list[RunInfo]:
        self.state_reads += 1
        return super().list_runs(**options)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    made = Watched(tmp_path / "hot.db")
    yield made
    made.close()


@pytest.fixture
def app(store: Watched) -> FastAPI:
    return create_app(graphs(), store, auth=False)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app) as client:
        yield client


def _route(method: str, path: str) -> APIRoute:
    return next(r for module in (runs, stateless, threads, cancel) for r in module.router.routes
                if isinstance(r, APIRoute) and r.path == path and method in r.methods)


@pytest.mark.parametrize(("method", "path"), HOT)
def test_hot_routes_resolve_no_dependency(method: str, path: str) -> None:
    # The server and the caller are read from the request (`context.parts`): nothing to
    # resolve per request but the path, the query and the body.
    assert _route(method, path).dependant.dependencies == []


def test_records_answered_as_rendered_keep_their_declared_shape(app: FastAPI) -> None:
    paths = app.openapi()["paths"]

    def schema(path: str, method: str) -> dict[str, Any]:
        found: dict[str, Any] = paths[path][method]["responses"]["200"]["content"][
            "application/json"]["schema"]
        return found

    for path, method in (("/threads", "post"), ("/threads/{thread_id}", "get"),
                         ("/threads/{thread_id}/runs", "post"),
                         ("/threads/{thread_id}/runs/{run_id}", "get")):
        assert schema(path, method)["type"] == "object"
        assert schema(path, method)["additionalProperties"] is True
    listed = schema("/threads/{thread_id}/runs", "get")
    assert listed["type"] == "array" and listed["items"]["type"] == "object"


def test_the_hottest_routes_are_matched_first(store: Watched,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    included: list[Any] = []
    include = FastAPI.include_router

    def noted(self: FastAPI, router: Any, **options: Any) -> None:
        included.append(router)
        include(self, router, **options)

    monkeypatch.setattr(FastAPI, "include_router", noted)
    create_app(graphs(), store, auth=False)
    assert included == [module.router for module in MATCHED]
    assert MATCHED[:4] == (cancel, runs, stateless, threads)


def test_no_path_of_one_route_module_matches_a_route_of_another() -> None:
    # Why matching the hottest modules first changes no answer (nor a 405's Allow).
    assert sorted(m.__name__ for m in MATCHED) == sorted(m.__name__ for m in DOCUMENTED)
    for module in MATCHED:
        for route in module.router.routes:
            path = re.sub(r"\{[^}]+\}", "x1", route.path)  # type: ignore[attr-defined]
            for other in MATCHED:
                if other is module:
                    continue
                clashes = [r.path for r in other.router.routes  # type: ignore[attr-defined]
                           if r.path_regex.match(path)]  # type: ignore[attr-defined]
                assert clashes == [], (route.path, clashes)  # type: ignore[attr-defined]


def test_the_openapi_document_lists_paths_in_the_documented_order(app: FastAPI) -> None:
    documented = list(dict.fromkeys(r.path for m in DOCUMENTED  # type: ignore[attr-defined]
                                    for r in m.router.routes))
    paths = list(app.openapi()["paths"])
    assert paths == [p for p in documented if p in paths]
    assert paths[0].startswith("/assistants")


async def test_thread_writes_are_made_off_the_event_loop(http: httpx.AsyncClient,
                                                         store: Watched) -> None:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    run = (await http.post(f"/threads/{tid}/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 2}})).json()
    await http.get(f"/threads/{tid}/runs/{run['run_id']}/join")
    created = (await http.post("/threads/made-here/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 1},
        "if_not_exists": "create"})).json()
    await http.get(f"/threads/made-here/runs/{created['run_id']}/join")
    assert (await http.patch(f"/threads/{tid}", json={"metadata": {"a": 1}})).status_code == 200
    gone = await http.delete(f"/threads/{tid}/runs/{run['run_id']}")
    assert gone.status_code == 204
    answer = await http.post("/runs/wait", json={"assistant_id": "counter",
                                                 "input": {"count": 0, "limit": 1}})
    assert answer.json()["count"] == 1
    assert (await http.delete("/threads/made-here")).status_code == 204
    # create, record the graph, create with it, patch, delete a run, a stateless run's thread
    # made and deleted, delete a thread: each a write through the store's async methods
    # (SQLite's writer thread, group-committed with the runs' checkpoints), none on the loop.
    assert len(store.calls) >= 7
    assert store.writers == []
    # Runs are recorded through the store's writer thread (`acreate_run`), never by the
    # blocking `create_run` on the loop.
    assert store.sync_creates == 0
    assert store.get_thread("made-here") is None


SAFETY = 4.0
"""Seconds after which a held write lock is let go whatever happens, so that a write that
blocks the loop fails the test instead of hanging it (below SQLite's 5 s busy timeout)."""


class Held:
    """A store's write lock held elsewhere until `release()`, or until `SAFETY` seconds have
    passed (then `released_early`)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release
        self._guard = threading.Lock()
        self.released_early = False
        self._timer = threading.Timer(SAFETY, self._expire)
        self._timer.start()

    def _expire(self) -> None:
        with self._guard:
            self.released_early = self._release is not None
        self.release()

    def release(self) -> None:
        """Let the lock go (once)."""
        self._timer.cancel()
        with self._guard:
            release, self._release = self._release, None
        if release is not None:
            release()


Hold = Callable[[], Held]


def _sqlite_writes(tmp: Path) -> Iterator[tuple[NotesWriters, Hold]]:
    made = Watched(tmp / "writes.db")

    def hold() -> Held:
        lock = WriteLock(made.path)
        lock.__enter__()
        return Held(lambda: lock.__exit__(None, None, None))

    yield made, hold
    made.close()


def _postgres_writes(_tmp: Path) -> Iterator[tuple[NotesWriters, Hold]]:
    import psycopg

    from tether.checkpoint.postgres import PostgresSaver

    class Watched(NotesWriters, PostgresSaver):
        """A Postgres store that notes its thread and run writes."""

    with fresh_schema() as (dsn, schema):
        made = Watched(dsn, schema=schema)

        def hold() -> Held:
            # Plain reads go on (EXCLUSIVE lets SELECTs through); a thread or run write waits.
            conn = psycopg.connect(dsn, options=f"-c search_path={schema}")
            conn.execute("LOCK TABLE threads, runs IN EXCLUSIVE MODE")

            def release() -> None:
                conn.rollback()
                conn.close()

            return Held(release)

        yield made, hold
        made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def lockable(request: pytest.FixtureRequest, tmp_path: Path,
             ) -> Iterator[tuple[NotesWriters, Hold]]:
    """A store whose writes wait on a lock (a file's, a database's), and how to hold it."""
    opened = _sqlite_writes if request.param == "sqlite" else _postgres_writes
    yield from opened(tmp_path)


@contextlib.asynccontextmanager
async def _served(store: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(graphs(), store, auth=False)) as client:
        yield client


def _thread_with_an_ended_run(store: Any) -> None:
    """Thread "t" with the ended run "run-of-t" (made through the store: nothing runs it)."""
    store.put_thread("t", {"owner": "ada"})
    store.create_run(RunInfo("run-of-t", "t", RunStatus.PENDING))
    store.finish_run("run-of-t", RunFinish(status=RunStatus.SUCCESS))
    store.writers.clear()


Write = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]

WRITES: list[tuple[str, Write, int]] = [
    ("aput_thread", lambda http: http.post("/threads", json={"metadata": {"k": 1}}), 200),
    ("aput_thread", lambda http: http.patch("/threads/t", json={"metadata": {"k": 2}}), 200),
    ("adelete_run", lambda http: http.delete("/threads/t/runs/run-of-t"), 204),
    ("adelete_thread", lambda http: http.delete("/threads/t"), 204),
]
"""Each thread or run write route, the store method it writes with, and its answer."""


async def test_a_write_waiting_for_the_stores_lock_leaves_the_loop_serving(
        lockable: tuple[NotesWriters, Hold]) -> None:
    store, hold = lockable
    _thread_with_an_ended_run(store)
    async with _served(store) as http:
        for method, request, status in WRITES:
            store.entered, store.calls = asyncio.Event(), []
            held = hold()
            try:
                write = asyncio.create_task(request(http))
                await store.entered.wait()  # the route has begun its write
                assert (await http.get("/ok")).status_code == 200
                assert not held.released_early, f"{method} blocked the event loop"
                assert not write.done()  # it does wait for the lock
            finally:
                held.release()
            answer = await write
            assert answer.status_code == status, answer.text
            assert store.calls == [method]
    assert store.writers == []  # no write through a sync method, on the loop or elsewhere
    assert store.get_thread("t") is None and store.get_run("run-of-t") is None


class Memory(NotesWriters, InMemorySaver):
    """The memory store, noting its thread and run writes."""


async def test_the_memory_stores_writes_are_made_directly_on_the_loop() -> None:
    # Nothing to wait for (no I/O): its async methods write at once, without a thread hop.
    store = Memory()
    _thread_with_an_ended_run(store)
    async with _served(store) as http:
        for method, request, status in WRITES:
            store.calls = []
            answer = await request(http)
            assert answer.status_code == status, answer.text
            assert store.calls == [method]
    assert store.writers == [threading.get_ident()] * len(WRITES)
    assert store.get_thread("t") is None and store.get_run("run-of-t") is None


async def test_a_bulk_cancel_is_one_batch_of_cancel_requests(http: httpx.AsyncClient,
                                                              store: Watched) -> None:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    ids = [(await http.post(f"/threads/{tid}/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 10_000}})).json()["run_id"]
        for _ in range(3)]  # one running, two queued behind it
    answer = await http.post("/runs/cancel", json={"thread_id": tid, "run_ids": ids})
    assert answer.status_code == 204
    assert store.cancel_batches == [3]  # requested together: one store call, not three
    for run_id in ids:
        ended = (await http.get(f"/threads/{tid}/runs/{run_id}/join"))
        assert ended.status_code == 200
        record = store.get_run(run_id)
        assert record is not None and record.status is RunStatus.CANCELLED


async def test_a_thread_just_created_is_answered_without_reading_the_store(
        http: httpx.AsyncClient, store: Watched) -> None:
    before = store.state_reads
    thread = (await http.post("/threads", json={"metadata": {"k": "v"}})).json()
    assert store.state_reads == before
    assert thread["status"] == "idle" and thread["values"] is None
    assert thread["interrupts"] == {} and thread["metadata"] == {"k": "v"}
    # The same thread read back answers the same.
    again = (await http.get(f"/threads/{thread['thread_id']}")).json()
    assert {k: again[k] for k in ("status", "values", "interrupts", "metadata")} == {
        k: thread[k] for k in ("status", "values", "interrupts", "metadata")}
    # An existing thread (if_exists="do_nothing") is read as before: its status is its own.
    tid = thread["thread_id"]
    run = (await http.post(f"/threads/{tid}/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 2}})).json()
    await http.get(f"/threads/{tid}/runs/{run['run_id']}/join")
    same = (await http.post("/threads", json={"thread_id": tid,
                                              "if_exists": "do_nothing"})).json()
    assert same["values"] == {"count": 2, "limit": 2}
    info = store.get_run(run["run_id"])
    assert info is not None and info.status is RunStatus.SUCCESS


async def test_without_tenants_a_run_is_read_without_its_thread(http: httpx.AsyncClient,
                                                                store: Watched) -> None:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    run = (await http.post(f"/threads/{tid}/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 1}})).json()
    before = store.thread_reads
    read = await http.get(f"/threads/{tid}/runs/{run['run_id']}")
    assert read.status_code == 200 and read.json()["run_id"] == run["run_id"]
    assert store.thread_reads == before
    # Another thread's id, or none at all, is answered as before.
    other = (await http.post("/threads", json={})).json()["thread_id"]
    wrong = await http.get(f"/threads/{other}/runs/{run['run_id']}")
    assert wrong.status_code == 404 and "run" in wrong.json()["detail"]
    missing = await http.get(f"/threads/nope/runs/{run['run_id']}")
    assert missing.status_code == 404 and "thread" in missing.json()["detail"]


def _subscriptions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The run ids of the feeds subscribed to from now on."""
    seen: list[str] = []
    subscribe = RunFeed.subscribe

    def noted(self: RunFeed, *args: Any, **kwargs: Any) -> Any:
        seen.append(self.run_id)
        return subscribe(self, *args, **kwargs)

    monkeypatch.setattr(RunFeed, "subscribe", noted)
    return seen


async def test_a_cancel_that_waits_is_answered_by_the_runs_end_not_its_feed(
        http: httpx.AsyncClient, store: Watched, monkeypatch: pytest.MonkeyPatch) -> None:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    run_id = (await http.post(f"/threads/{tid}/runs", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 10_000}})).json()["run_id"]
    # Running, with a checkpoint (a run stopped before its first one ends with none).
    await eventually(lambda: getattr(store.get_run(run_id), "checkpoint_id", None) is not None)
    subscribed = _subscriptions(monkeypatch)
    answer = await http.post(f"/threads/{tid}/runs/{run_id}/cancel",
                             params={"wait": 1, "action": "interrupt"})
    assert answer.status_code == 200 and answer.json()["status"] == "interrupted"
    # Answered by the run as it ended (its final record), not relayed by its feed.
    assert subscribed == []
    record = store.get_run(run_id)
    assert record is not None and record.status is RunStatus.CANCELLED
    assert record.checkpoint_id == answer.json()["checkpoint_id"] is not None


async def test_a_stateless_runs_cancel_that_waits_answers_once_its_thread_is_gone(
        http: httpx.AsyncClient, store: Watched) -> None:
    streaming = asyncio.ensure_future(http.post("/runs/stream", json={
        "assistant_id": "counter", "input": {"count": 0, "limit": 10_000}}))
    running = await eventually(lambda: store.list_runs(status="running"))
    info = running[0]
    assert info.thread_id is not None
    answer = await http.post(f"/threads/{info.thread_id}/runs/{info.run_id}/cancel",
                             params={"wait": 1})
    assert answer.status_code == 200
    assert store.get_thread(info.thread_id) is None  # deleted before the answer
    assert (await streaming).status_code == 200
