"""The scale-out topology, started as a user starts it: two `tether serve` and two `tether worker`
processes on one Postgres (and one Redis, or the Postgres bus alone), driven with the official
`langgraph-sdk` client. A run created on server A is streamed from server B; its worker is
SIGKILLed mid-run and the other worker finishes it; the client, cut off and reconnecting with
`Last-Event-ID` (to the other server), gets every event exactly once; a cancel made on A ends
the stream on B and wakes a join there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client

from conformance.conftest import drop_redis_keys, fresh_schema, redis_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(120)]

TESTS = Path(__file__).resolve().parent.parent
GRAPH = "integration.topology_graphs:ticker"
MODES = ["custom", "values", "updates", "tasks", "lifecycle"]
"""Every mode a run streams here (the order's `custom` and `values`, and the modes every
server feed carries): a client asking for all of them sees every event id."""


@dataclass
class Process:
    """A started `tether` process and its log."""

    popen: subprocess.Popen[bytes]
    log: Path
    name: str
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Deployment:
    """Servers and workers on one schema (and one Redis, when `redis` is set)."""

    dsn: str
    schema: str
    tmp: Path
    redis: str | None
    processes: list[Process] = field(default_factory=list)

    def _start(self, name: str, *args: str) -> Process:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(TESTS), os.environ.get("PYTHONPATH", "")])}
        log = self.tmp / f"{name}.log"
        bus = ["--redis", self.redis] if self.redis else []
        with log.open("wb") as out:
            popen = subprocess.Popen([sys.executable, "-m", "tether", *args, *bus], env=env,
                                     cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT)
        started = Process(popen, log, name)
        self.processes.append(started)
        return started

    def worker(self, name: str) -> Process:
        started = self._start(name, "worker", GRAPH, "--db", self.dsn, "--schema", self.schema,
                              "--owner", name, "--lease", "1", "--poll", "0.05",
                              "--sweep-every", "0.2")
        _wait_for(lambda: "ready" in started.output(), started)
        return started

    def server(self, name: str) -> Process:
        port = _free_port()
        db = f"{self.dsn}{'&' if '?' in self.dsn else '?'}options=" + quote(
            f"-csearch_path={self.schema}")
        started = self._start(name, "serve", GRAPH, "--db", db, "--port", str(port),
                              "--no-auth")
        started.url = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _answers(started.url), started)
        return started

    def holder(self, run_id: str) -> Process:
        """The worker holding the run's lease, once one has claimed it."""
        def owner() -> str | None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                row = conn.execute(f"SELECT lease_owner FROM {self.schema}.runs "
                                   "WHERE run_id = %s AND status = 'running'",
                                   (run_id,)).fetchone()
            return row[0] if row else None

        name = _eventually(owner)
        return next(p for p in self.processes if p.name == name)

    def claims(self, run_id: str) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute(f"SELECT count(*) FROM {self.schema}.events "
                               "WHERE run_id = %s AND phase = 'claim'", (run_id,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        for process in self.processes:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.popen.wait(20)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ok", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_for(check: Any, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{process.name} did not start:\n{process.output()[-3000:]}")
        time.sleep(0.05)


def _eventually(probe: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {probe}")
        time.sleep(0.02)
    return found


@pytest.fixture(scope="module", params=["redis", "postgres"])
def deployment(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two workers and two servers, on Redis + Postgres or on Postgres alone (shared by the
    tests of this module: each leaves two workers running)."""
    redis = redis_url() if request.param == "redis" else None
    with fresh_schema() as (dsn, schema):
        made = Deployment(dsn, schema, tmp_path_factory.mktemp(request.param), redis)
        try:
            made.worker("worker-1")
            made.worker("worker-2")
            made.server("server-a")
            made.server("server-b")
            yield made
        except BaseException:
            for process in made.processes:
                print(f"--- {process.name}\n{process.output()[-4000:]}")
            raise
        finally:
            made.close()
            if redis is not None:
                drop_redis_keys(redis, f"tether:{dsn.rsplit('/', 1)[-1]}.{schema}")


@contextlib.asynccontextmanager
async def _clients(deployment: Deployment) -> AsyncIterator[tuple[Any, Any]]:
    server_a, server_b = (p for p in deployment.processes if p.name.startswith("server"))
    async with get_client(url=server_a.url) as a, get_client(url=server_b.url) as b:
        yield a, b


async def test_a_run_streams_from_another_server_through_a_worker_crash_exactly_once(
        deployment: Deployment) -> None:
    steps, per_step = 8, 10
    async with _clients(deployment) as (a, b):
        thread = (await a.threads.create())["thread_id"]
        run = await a.runs.create(thread, "ticker", stream_mode=["custom", "values"], input={
            "step": 0, "steps": steps, "per_step": per_step, "pause": 0.02})
        run_id = run["run_id"]
        first: list[Any] = []
        async with contextlib.aclosing(b.runs.join_stream(
                thread, run_id, stream_mode=MODES, last_event_id="0")) as stream:
            async for part in stream:
                first.append(part)
                if sum(p.event == "custom" for p in first) == 15:
                    break  # the client is cut off
        killed = deployment.holder(run_id)
        killed.popen.kill()  # SIGKILL, mid-run
        rest: list[Any] = []
        async with contextlib.aclosing(a.runs.join_stream(
                thread, run_id, stream_mode=MODES, last_event_id=first[-1].id)) as stream:
            rest = [part async for part in stream]
        output = await b.runs.join(thread, run_id)
        record = await b.runs.get(thread, run_id)
    ids = [int(part.id) for part in first + rest]
    assert ids == list(range(1, len(ids) + 1)), "an event missing or delivered twice"
    ticks = [(p.data["step"], p.data["i"]) for p in first + rest if p.event == "custom"]
    assert set(ticks) == {(s, i) for s in range(steps) for i in range(per_step)}
    assert [p.data["step"] for p in rest if p.event == "values"][-1] == steps
    assert output["step"] == steps and record["status"] == "success"
    assert deployment.claims(run_id) == 2  # taken over by the other worker
    deployment.worker(f"{killed.name}-again")


async def test_a_cancel_on_one_server_ends_the_stream_and_the_join_on_another(
        deployment: Deployment) -> None:
    async with _clients(deployment) as (a, b):
        thread = (await a.threads.create())["thread_id"]
        run = await a.runs.create(thread, "ticker", stream_mode=["custom"], input={
            "step": 0, "steps": 10**6, "per_step": 10, "pause": 0.01})
        run_id = run["run_id"]
        joining = asyncio.ensure_future(b.runs.join(thread, run_id))
        seen = 0
        async with contextlib.aclosing(b.runs.join_stream(
                thread, run_id, stream_mode=["custom"])) as stream:
            async for part in stream:  # ends with the run
                seen += part.event == "custom"
                if seen == 5:
                    answer = await a.runs.cancel(thread, run_id)
                    assert answer["tether_status"] in ("cancelling", "cancelled")
        await asyncio.wait_for(joining, 10)
        record = await b.runs.get(thread, run_id)
    assert record["tether_status"] == "cancelled" and seen >= 5
