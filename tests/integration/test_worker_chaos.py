"""Chaos on a real Postgres: while two `tether worker` processes drive runs, the server closes
every connection of one worker, then of the other, again and again (`pg_terminate_backend`, as
a Postgres restart does), and some runs are cancelled in the middle of it. Every run still ends
terminal, the ones not cancelled with the state of an uninterrupted run, no run is ever driven
by two workers at once, the cancelled ones can be resumed to the end, and the workers go on
taking work."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from tether.checkpoint.postgres.queue import Order
from tether.graph.run_resume import resume_config
from tether.types import CancelReason, RunStatus

from .worker_cluster import Cluster, WorkerProcess, no_overlap
from .worker_graphs import counter

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(120)]

RUNS, TICKS = 6, 40
ROUNDS = 6
"""Times the server closes a worker's connections (alternating between the two workers)."""


def close_connections(cluster: Cluster, worker: WorkerProcess) -> int:
    """Have the server close every connection of `worker` (its pools and its LISTEN one)."""
    names = [f"tether-worker {worker.owner}", f"tether-listen {worker.owner}"]
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                            "WHERE application_name = ANY(%s)", (names,)).fetchall()
    return len(rows)


def test_runs_end_and_resume_while_workers_lose_their_connections_again_and_again(
        cluster: Cluster) -> None:
    workers = cluster.start(2, "--concurrency", str(RUNS))
    # The runs to cancel are longer, so that they are still going when their cancel comes.
    until = {cluster.enqueue("counter", {"n": 0, "until": n, "pause": 0.03}): n
             for n in [TICKS * 3] * 2 + [TICKS] * (RUNS - 2)}
    runs = list(until)
    cancelled: list[str] = []
    _eventually_running(cluster, runs)
    closed = 0
    for round_ in range(ROUNDS):
        closed += close_connections(cluster, workers[round_ % 2])
        if round_ == 1:
            for run_id in runs[:2]:
                info, _first = cluster.store.request_cancel(
                    run_id, CancelReason("user", "in the chaos"))
                if not info.terminal:  # else it ended first, and that end stands
                    cancelled.append(run_id)
        time.sleep(0.3)
    assert cancelled, "every run to cancel had ended before its cancel"
    assert closed >= ROUNDS * 2  # each round closed a worker's pool and listener at least
    ends = {run_id: cluster.ended(run_id, 40) for run_id in runs}
    for run_id, info in ends.items():
        # A tick a worker gave up in its middle never recorded its end: the others did.
        no_overlap([entry for entry in cluster.ledger(run_id) if entry[3] is not None])
        expected = RunStatus.CANCELLED if run_id in cancelled else RunStatus.SUCCESS
        assert info.status is expected, (info.error, _log_tail(workers))
        if expected is RunStatus.SUCCESS:
            assert cluster.store.load(run_id).values["n"] == until[run_id]
    # What was cancelled goes on from its final checkpoint to the same end.
    graph = counter.rebind(cluster.store, name="counter")
    for run_id in cancelled:
        info = ends[run_id]
        assert info.thread_id is not None
        resumed = cluster.store.queue.enqueue(Order(
            graph="counter", thread_id=info.thread_id, input=None,
            config=resume_config(graph, run_id, None), multitask="enqueue")).run_id
        after = cluster.ended(resumed, 30)
        assert after.status is RunStatus.SUCCESS, (after.error, _log_tail(workers))
        assert cluster.store.load(resumed).values["n"] == until[run_id]
    for worker in workers:
        assert worker.process.poll() is None, worker.output()[-3000:]
    fresh = cluster.enqueue("counter", {"n": 0, "until": 2})
    assert cluster.ended(fresh, 20).status is RunStatus.SUCCESS


def _eventually_running(cluster: Cluster, runs: list[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(cluster.info(r).status is RunStatus.RUNNING for r in runs):
            return
        time.sleep(0.02)
    raise AssertionError("the runs did not all start")


def _log_tail(workers: list[WorkerProcess]) -> Any:
    return {w.owner: w.output()[-2000:] for w in workers}
