"""A Postgres-backed server under concurrent load: many first requests at once open one pool per
event loop (not two), and many concurrent `runs.wait` calls each get their run's output."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from conformance.conftest import fresh_schema
from tether.checkpoint.postgres import PostgresSaver
from tether.checkpoint.postgres.queue import Order, RunQueue
from tether.server import create_app
from tether.types import CancelReason, RunStatus
from tether.worker.watch import Watch

from .server_graphs import KEYS, LiveServer, graphs

pytestmark = pytest.mark.postgres
TESTS = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg_store() -> Iterator[PostgresSaver]:
    with fresh_schema() as (dsn, schema):
        store = PostgresSaver(dsn, schema=schema, async_size=2)
        try:
            yield store
        finally:
            store.close()


def test_concurrent_first_async_calls_on_a_loop_share_one_pool(pg_store: PostgresSaver) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(*(pg_store.aget_run(f"missing-{i}") for i in range(20)))

    assert asyncio.run(main()) == [None] * 20


def test_concurrent_first_requests_to_a_postgres_server_all_succeed(
        pg_store: PostgresSaver) -> None:
    async def create_runs(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, headers={"x-api-key": "key-a"}) as http:
            async def one(i: int) -> httpx.Response:
                return await http.post(f"/threads/t-{i}/runs", json={
                    "assistant_id": "counter", "input": {"count": 0, "limit": 1},
                    "if_not_exists": "create"})
            return await asyncio.gather(*(one(i) for i in range(16)))

    with LiveServer(create_app(graphs(), pg_store, api_keys=KEYS)) as server:
        answers = asyncio.run(create_runs(server.url))
    assert [a.status_code for a in answers] == [200] * 16, [a.text for a in answers]


@pytest.mark.anyio
async def test_a_run_followed_while_a_watch_round_is_in_flight_is_not_reported_missing(
        pg_store: PostgresSaver, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = (pg_store.queue.enqueue(Order(
        graph="counter", thread_id=tid, input={}, config={"configurable": {"thread_id": tid}},
        options={}, multitask="enqueue")) for tid in ("t1", "t2"))
    in_round, go_on = asyncio.Event(), asyncio.Event()
    real = RunQueue.awatch

    async def gated(queue: RunQueue, run_ids: Any) -> Any:
        found = await real(queue, run_ids)
        in_round.set()
        await go_on.wait()
        return found

    monkeypatch.setattr(RunQueue, "awatch", gated)
    watch = Watch(pg_store, poll=0.01)
    try:
        waiting_first = asyncio.ensure_future(watch.ended(first.run_id, 5))
        await in_round.wait()  # the round asked about `first` only
        waiting_second = asyncio.ensure_future(watch.ended(second.run_id, 5))
        await asyncio.sleep(0)
        go_on.set()
        await asyncio.sleep(0.1)
        assert not waiting_second.done(), "a run that exists was reported missing"
        for run in (first, second):
            pg_store.request_cancel(run.run_id, _reason())
            await pg_store.queue.asweep("test", run_id=run.run_id)
        ended = await asyncio.gather(waiting_first, waiting_second)
        assert [info.status for info in ended] == [RunStatus.CANCELLED] * 2
    finally:
        await watch.aclose()
        await pg_store.aclose()


def _reason() -> CancelReason:
    return CancelReason("user", "test over", "test")


@pytest.mark.slow
def test_concurrent_waits_on_queued_runs_each_return_their_output(
        pg_store: PostgresSaver, tmp_path: Path) -> None:
    async def wait_all(url: str) -> list[Any]:
        async with get_client(url=url, api_key="key-a") as client:
            threads = [(await client.threads.create())["thread_id"] for _ in range(8)]
            return await asyncio.gather(*(
                client.runs.wait(tid, "counter", input={"count": 0, "limit": 2 + i})
                for i, tid in enumerate(threads)))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(TESTS), os.environ.get("PYTHONPATH", "")])}
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tether", "worker", "integration.server_graphs:counter_graph",
             "--name", "counter", "--db", pg_store.conninfo, "--schema", str(pg_store.schema),
             "--poll", "0.05", "--concurrency", "8"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        with LiveServer(create_app(graphs(), pg_store, api_keys=KEYS)) as server:
            outputs = asyncio.run(wait_all(server.url))
        assert outputs == [{"count": 2 + i, "limit": 2 + i} for i in range(8)]
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
