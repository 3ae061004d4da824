"""The server on Postgres: runs are queued for `tether worker` processes (`QueueLauncher`)
instead of running in the server, and the same API streams, cancels and joins them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from conformance.conftest import fresh_schema
from tether.checkpoint.postgres import PostgresSaver
from tether.server import create_app
from tether.types import RunStatus

from .server_graphs import KEYS, LiveServer, chat, eventually, graphs, memo

pytestmark = pytest.mark.postgres
TESTS = Path(__file__).resolve().parent.parent
LONG = {"count": 0, "limit": 100_000}


@pytest.fixture
def queued(tmp_path: Path) -> Iterator[tuple[LiveServer, PostgresSaver, Any]]:
    with fresh_schema() as (dsn, schema):
        store = PostgresSaver(dsn, schema=schema)
        workers: list[subprocess.Popen[bytes]] = []

        def start_worker(ref: str = "integration.server_graphs:counter_graph",
                         name: str = "counter") -> None:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(TESTS), os.environ.get("PYTHONPATH", "")])}
            log = (tmp_path / f"worker-{len(workers)}.log").open("wb")
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "tether", "worker",
                 ref, "--name", name, "--db", dsn,
                 "--schema", schema, "--poll", "0.05", "--lease", "1"],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT))
            log.close()

        try:
            served = {**graphs(), "memo": memo(), "chat": chat()}
            with LiveServer(create_app(served, store, api_keys=KEYS)) as server:
                yield server, store, start_worker
        finally:
            for worker in workers:
                worker.terminate()
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(5)
            store.close()


def _tether_status(http: httpx.Client, tid: str, run_id: str) -> str:
    return str(http.get(f"/threads/{tid}/runs/{run_id}").json()["tether_status"])


def test_a_queued_run_nobody_claimed_is_cancelled_at_once(
        queued: tuple[LiveServer, PostgresSaver, Any]) -> None:
    server, store, _start_worker = queued
    with httpx.Client(base_url=server.url, headers={"x-api-key": "key-a"}) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        run = http.post(f"/threads/{tid}/runs", json={"assistant_id": "counter",
                                                       "input": LONG}).json()
        assert run["tether_status"] == "pending"
        time.sleep(0.2)
        assert _tether_status(http, tid, run["run_id"]) == "pending"
        answer = http.post(f"/threads/{tid}/runs/{run['run_id']}/cancel", params={"wait": 1},
                           json={"reason": "not needed any more"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["tether_status"] == "cancelled"
    info = store.get_run(run["run_id"])
    assert info is not None and info.status is RunStatus.CANCELLED
    assert info.reason is not None and info.reason.message == "not needed any more"


@pytest.mark.anyio
async def test_a_worker_runs_the_queued_run_and_the_api_streams_and_cancels_it(
        queued: tuple[LiveServer, PostgresSaver, Any]) -> None:
    server, store, start_worker = queued
    start_worker()
    async with get_client(url=server.url, api_key="key-a") as client:
        tid = (await client.threads.create())["thread_id"]
        done = await client.runs.wait(tid, "counter", input={"count": 0, "limit": 3})
        assert done == {"count": 3, "limit": 3}
        run = await client.runs.create(tid, "counter", input=LONG)
        counts: list[int] = []
        async for part in client.runs.join_stream(tid, run["run_id"], stream_mode="values"):
            counts.append(part.data["count"])
            if len(counts) == 3:
                await client.runs.cancel(tid, run["run_id"])
        ended = await client.runs.get(tid, run["run_id"])
        assert ended["tether_status"] == "cancelled" and ended["status"] == "interrupted"
        assert counts == sorted(counts)
        state = await client.threads.get_state(tid)
        assert state["next"] == ["tick"] and state["values"]["count"] >= counts[-1]
    info = await eventually(lambda: store.get_run(run["run_id"]))
    assert info.status is RunStatus.CANCELLED and info.checkpoint_id == ended["checkpoint_id"]


@pytest.mark.anyio
async def test_a_worker_gives_a_graph_the_store_the_server_serves(
        queued: tuple[LiveServer, PostgresSaver, Any]) -> None:
    server, _store, start_worker = queued
    start_worker("integration.server_graphs:memo_graph", "memo")
    async with get_client(url=server.url, api_key="key-a") as client:
        await client.store.put_item(["tenant-a", "profile"], "me", {"name": "Ada"})
        done = await client.runs.wait(None, "memo", input={"topic": "tides"})
        assert done["greeting"] == "hello Ada, noted: tides"  # read in the worker process
        item = await client.store.get_item(["tenant-a", "memories"], "tides")
        assert item["value"] == {"topic": "tides"}  # written there, served here


@pytest.mark.anyio
async def test_a_workers_chat_model_streams_its_tokens_to_the_sdk(
        queued: tuple[LiveServer, PostgresSaver, Any]) -> None:
    server, _store, start_worker = queued
    start_worker("integration.server_graphs:chat_graph", "chat")
    async with get_client(url=server.url, api_key="key-a") as client:
        parts = [p async for p in client.runs.stream(
            None, "chat", input={"messages": [{"role": "user", "content": "hi"}]},
            stream_mode="messages-tuple")]
    tokens = [p.data for p in parts if p.event == "messages"]
    assert "".join(t[0]["content"] for t in tokens) == "Tokens from a worker"
    assert tokens[0][1]["langgraph_node"] == "model"


def test_serve_opens_postgres_for_a_url_and_sqlite_for_a_path(tmp_path: Path) -> None:
    import psycopg

    from tether.checkpoint.sqlite import SqliteSaver
    from tether.server.app import open_store

    with fresh_schema() as (dsn, schema):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        sep = "&" if "?" in dsn else "?"
        store = open_store(f"{dsn}{sep}options=-csearch_path%3D{schema}")
        try:
            assert isinstance(store, PostgresSaver) and store.has_workers
        finally:
            store.close()
    local = open_store(str(tmp_path / "runs.db"))
    try:
        assert isinstance(local, SqliteSaver)
    finally:
        local.close()
