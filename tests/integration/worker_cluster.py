"""`tether worker` processes on one Postgres schema, for the worker tests: `Cluster` starts
them, queues runs and reads what they did (the store, the ledger their nodes write);
`no_overlap` checks that no run was driven by two workers at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.checkpoint.postgres import PostgresSaver
from tether.checkpoint.postgres.queue import Order
from tether.types import RunInfo

from .worker_graphs import LEDGER, SCHEMA_ENV, connect

TESTS = Path(__file__).resolve().parent.parent
GRAPHS = [f"integration.worker_graphs:{name}" for name in ("pipeline", "counter", "sleeper")]


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    owner: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Cluster:
    """Worker processes on one schema, the store they share, and the ledger of their nodes."""

    def __init__(self, dsn: str, schema: str, tmp: Path) -> None:
        self.dsn, self.schema, self.tmp = dsn, schema, tmp
        self.store = PostgresSaver(dsn, schema=schema)
        with connect(schema) as conn:
            conn.execute(LEDGER)  # type: ignore[arg-type]
        self.workers: list[WorkerProcess] = []

    def start(self, count: int = 1, *options: str, lease: float = 1.0) -> list[WorkerProcess]:
        """Start `count` workers serving every test graph; return once all are ready."""
        env = {**os.environ, SCHEMA_ENV: self.schema,
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        started = []
        for _ in range(count):
            owner = f"test-{uuid.uuid4().hex[:8]}"
            log = self.tmp / f"{owner}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "tether", "worker", *GRAPHS, "--db", self.dsn,
                     "--schema", self.schema, "--owner", owner, "--lease", str(lease),
                     "--poll", "0.1", "--sweep-every", "0.2", *options],
                    env=env, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT)
            started.append(WorkerProcess(process, log, owner))
        self.workers += started
        for worker in started:
            eventually(lambda w=worker: "ready" in w.output() or _died(w), 30)
        return started

    def enqueue(self, graph: str, graph_input: Any, *, thread: str | None = None,
                config: dict[str, Any] | None = None, context: Any = None) -> str:
        thread = thread or uuid.uuid4().hex
        order = Order(graph=graph, thread_id=thread, input=graph_input,
                      config={"configurable": {"thread_id": thread}, **(config or {})},
                      options={"context": context}, multitask="enqueue")
        return self.store.queue.enqueue(order).run_id

    def ended(self, run_id: str, timeout: float = 20) -> RunInfo:
        eventually(lambda: self.info(run_id).terminal, timeout)
        return self.info(run_id)

    def info(self, run_id: str) -> RunInfo:
        found = self.store.get_run(run_id)
        assert found is not None
        return found

    def holder(self, run_id: str) -> WorkerProcess:
        """The worker process holding the run's lease, once it has claimed it."""
        owner = eventually(lambda: self.sql("SELECT lease_owner FROM runs WHERE run_id = %s",
                                            (run_id,))[0][0], 20)
        return next(w for w in self.workers if w.owner == owner)

    def ledger(self, run_id: str) -> list[tuple[str, int, float, float | None]]:
        return [tuple(r) for r in self.sql(  # type: ignore[misc]
            "SELECT node, pid, started_at, ended_at FROM ledger WHERE run_id = %s ORDER BY id",
            (run_id,))]

    def sql(self, statement: str, params: Any = None) -> list[Any]:
        with connect(self.schema) as conn:
            cur = conn.execute(statement, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(10)
        self.store.close()


def _died(worker: WorkerProcess) -> bool:
    if worker.process.poll() is not None:
        raise AssertionError(f"worker exited early:\n{worker.output()}")
    return False


def eventually(probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {probe}")
        time.sleep(0.02)


def no_overlap(entries: list[tuple[str, int, float, float | None]],
               killed: dict[int, float] | None = None) -> None:
    """No two workers executed nodes of one run at the same time (a killed worker's open entry
    ends when it was killed)."""
    spans = [(pid, start, end if end is not None else (killed or {}).get(pid, float("inf")))
             for _node, pid, start, end in entries]
    for pid, start, end in spans:
        for other, o_start, o_end in spans:
            if other != pid:
                assert end <= o_start or o_end <= start, f"{pid} and {other} overlap: {spans}"


