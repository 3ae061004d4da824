"""`tether worker` processes on a real Postgres: runs spread across workers, cancels from the API
reach whichever worker holds the run (by NOTIFY, or by polling when the listener is gone), a
worker killed mid-run is replaced and its run ends as an uninterrupted one does, nothing is
driven by two workers at once, a cancel racing a crash ends `cancelled`, deadlines hold with no
worker holding the run, and SIGTERM drains (hand back, or cancel as `shutdown`)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from typing import Any

import pytest

from tether.checkpoint.postgres import PostgresSaver
from tether.types import CancelReason, RunInfo, RunStatus

from .worker_cluster import Cluster, eventually, no_overlap
from .worker_graphs import PIPELINE_END, SCHEMA_ENV, pipeline

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(60)]

def phases(store: PostgresSaver, run_id: str) -> list[str]:
    return [e.phase for e in store.events(run_id)]


# -- spreading and cancelling -----------------------------------------------------------------


def test_runs_spread_across_workers_and_each_runs_exactly_once(cluster: Cluster) -> None:
    workers = cluster.start(3, "--concurrency", "2")
    runs = [cluster.enqueue("counter", {"n": 0, "until": 3, "pause": 0.05}) for _ in range(12)]
    for run_id in runs:
        assert cluster.ended(run_id).status is RunStatus.SUCCESS
        assert cluster.store.load(run_id).values["n"] == 3
        entries = cluster.ledger(run_id)
        assert [e[0] for e in entries] == ["tick"] * 3
        no_overlap(entries)
        assert phases(cluster.store, run_id).count("claim") == 1
    pids = {e[1] for run_id in runs for e in cluster.ledger(run_id)}
    assert len(pids) >= 2 and pids <= {w.pid for w in workers}


def _launcher(cluster: Cluster) -> tuple[Any, Any]:
    """A `QueueLauncher` as the server would build it, and the sleeper's assistant."""
    from tether.server.feed import RunFeed
    from tether.server.graphs import Assistant
    from tether.server.launcher import run_config
    from tether.worker import QueueLauncher

    from .worker_graphs import sleeper

    launcher = QueueLauncher(cluster.store, feed_factory=lambda r: RunFeed(r, limit=1000),
                             run_config=run_config, poll=0.02)
    return launcher, Assistant("sleeper", "sleeper", sleeper.rebind(cluster.store, name="sleeper"))


def _order(assistant: Any, seconds: float) -> Any:
    from tether.server.launcher import RunOrder

    return RunOrder(assistant=assistant, thread_id=uuid.uuid4().hex, run_id=str(uuid.uuid4()),
                    input={"seconds": seconds, "log": []})


def test_a_cancel_from_the_api_reaches_the_run_on_whichever_worker_holds_it(
        cluster: Cluster) -> None:
    cluster.start(2, "--concurrency", "1")

    async def scenario() -> list[RunInfo]:
        launcher, assistant = _launcher(cluster)
        try:
            started = [await launcher.start(_order(assistant, 60)) for _ in range(2)]
            for info in started:
                eventually(lambda i=info: cluster.info(i.run_id).status is RunStatus.RUNNING, 20)
            begun = time.monotonic()
            ended = [await launcher.cancel(i.run_id, CancelReason("user", "stop it"), wait=True)
                     for i in started]
            assert time.monotonic() - begun < 2.0
            return ended
        finally:
            await launcher.aclose()

    ended = asyncio.run(scenario())
    holders = {cluster.holder(i.run_id).owner for i in ended}
    assert len(holders) == 2
    for info in ended:
        assert info.status is RunStatus.CANCELLED
        assert info.reason is not None and info.reason.message == "stop it"
        found = phases(cluster.store, info.run_id)
        # Every phase is recorded, even with no node in flight (the cancel came before it began).
        assert [p for p in found[found.index("request"):] if p not in ("claim", "release")] == [
            "request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


class _ThreadDeletes:
    """The cluster's store, noting how each thread delete is asked for (sync or async)."""

    def __init__(self, store: PostgresSaver) -> None:
        self._store = store
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete_thread(self, thread_id: str) -> bool:
        self.calls.append(("sync", thread_id))
        return self._store.delete_thread(thread_id)

    async def adelete_thread(self, thread_id: str) -> bool:
        self.calls.append(("async", thread_id))
        return await self._store.adelete_thread(thread_id)


def test_a_stateless_runs_thread_is_deleted_by_the_stores_async_call_once_it_ends(
        cluster: Cluster) -> None:
    from dataclasses import replace

    from tether.server.feed import RunFeed
    from tether.server.launcher import run_config
    from tether.worker import QueueLauncher

    cluster.start(1, "--concurrency", "1")
    store = _ThreadDeletes(cluster.store)
    _unused, assistant = _launcher(cluster)
    order = replace(_order(assistant, 0.05), temporary=True)
    cluster.store.put_thread(order.thread_id)

    async def scenario() -> RunInfo:
        launcher = QueueLauncher(store, feed_factory=lambda r: RunFeed(r, limit=1000),  # type: ignore[arg-type]
                                 run_config=run_config, poll=0.02)
        try:
            started = await launcher.start(order)
            ended = await launcher.wait(started.run_id, 30)
            for _ in range(200):  # the delete follows the end, as a task of the loop
                if store.calls:
                    break
                await asyncio.sleep(0.01)
            return ended
        finally:
            await launcher.aclose()

    ended = asyncio.run(scenario())
    assert ended.status is RunStatus.SUCCESS
    assert store.calls == [("async", order.thread_id)]
    assert cluster.store.get_thread(order.thread_id) is None


def test_a_queued_run_streams_its_events_and_states_to_the_server_feed(
        cluster: Cluster) -> None:
    cluster.start(1)

    async def scenario() -> tuple[list[str], RunInfo, Any]:
        launcher, assistant = _launcher(cluster)
        try:
            info = await launcher.start(_order(assistant, 0.1))
            feed = launcher.feed(info.run_id)
            sub = feed.subscribe()
            events = []
            async with asyncio.timeout(20):
                while not sub.done:
                    events += sub.take()
                    await sub.wait(1.0)
            ended = await launcher.wait(info.run_id, 5)
            return [e.event for e in events], ended, feed.latest(("values",))
        finally:
            await launcher.aclose()

    names, ended, last = asyncio.run(scenario())
    assert ended.status is RunStatus.SUCCESS
    assert names[0] == "metadata" and "values" in names and "lifecycle" in names
    assert last is not None and last.payload == {"seconds": 0.1, "log": ["nap"]}


@pytest.mark.parametrize("listener", ["terminated", "disabled"])
def test_cancels_arrive_by_polling_without_the_listen_connection(
        cluster: Cluster, listener: str) -> None:
    options = ("--no-listen",) if listener == "disabled" else ()
    (worker,) = cluster.start(1, *options, lease=1.5)
    run_id = cluster.enqueue("sleeper", {"seconds": 60, "log": []})
    eventually(lambda: cluster.info(run_id).status is RunStatus.RUNNING, 20)
    if listener == "terminated":
        cut = cluster.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"tether-listen {worker.owner}",))
        assert cut == [(True,)]
    cluster.store.request_cancel(run_id, CancelReason("user", "by polling"))
    info = cluster.ended(run_id, 5)
    assert info.status is RunStatus.CANCELLED
    assert "propagate" in phases(cluster.store, run_id)
    if listener == "terminated":
        eventually(lambda: "LISTEN connection lost" in worker.output(), 5)


# -- crashes ----------------------------------------------------------------------------------


def test_a_worker_killed_mid_step_is_replaced_and_the_run_ends_as_an_uninterrupted_one(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.start(2, "--concurrency", "1")
    run_id = cluster.enqueue("pipeline", {"log": []}, context={"slow": 30})
    # `fast` finished in the step `slow` is still running: its write is kept as pending.
    eventually(lambda: cluster.sql("SELECT 1 FROM writes WHERE task_name = 'fast'"), 20)
    victim = cluster.holder(run_id)
    assert any(e[0] == "slow" and e[1] == victim.pid for e in cluster.ledger(run_id))
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.time()
    victim.process.wait(10)
    info = cluster.ended(run_id, 20)
    assert info.status is RunStatus.SUCCESS
    monkeypatch.setenv(SCHEMA_ENV, cluster.schema)
    reference = pipeline.invoke({"log": []}, {"run_id": str(uuid.uuid4())}, context={"slow": 0})
    assert reference == PIPELINE_END
    assert cluster.store.load(run_id).values == reference
    entries = cluster.ledger(run_id)
    assert [e[0] for e in entries].count("fast") == 1, "a finished task ran again"
    assert [e[0] for e in entries].count("slow") == 2
    no_overlap(entries, {victim.pid: killed_at})
    claims = [e.detail for e in cluster.store.events(run_id) if e.phase == "claim"]
    assert [(c["epoch"], c["resumed"]) for c in claims] == [(1, False), (2, True)]


def test_a_cancel_racing_a_worker_crash_ends_cancelled(cluster: Cluster) -> None:
    cluster.start(2, "--concurrency", "1")
    run_id = cluster.enqueue("sleeper", {"seconds": 60, "log": []})
    eventually(lambda: cluster.info(run_id).status is RunStatus.RUNNING, 20)
    victim = cluster.holder(run_id)
    cluster.store.request_cancel(run_id, CancelReason("user", "racing the crash"))
    os.kill(victim.pid, signal.SIGKILL)
    info = cluster.ended(run_id, 10)
    assert info.status is RunStatus.CANCELLED
    assert info.reason is not None and info.reason.message == "racing the crash"


def test_a_deadline_holds_for_a_queued_run_no_worker_serves(cluster: Cluster) -> None:
    cluster.start(1)
    run_id = cluster.enqueue("unserved", {"x": 1}, config={"timeout": 0.3})
    info = cluster.ended(run_id, 10)
    assert info.status is RunStatus.TIMEOUT
    assert info.reason is not None and info.reason.requested_by == "deadline"
    assert phases(cluster.store, run_id) == [
        "create", "request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


# -- draining ---------------------------------------------------------------------------------


def test_sigterm_hands_a_run_back_at_a_step_boundary_and_another_worker_finishes_it(
        cluster: Cluster) -> None:
    (first,) = cluster.start(1, "--concurrency", "1")
    run_id = cluster.enqueue("counter", {"n": 0, "until": 8, "pause": 0.25})
    eventually(lambda: len(cluster.ledger(run_id)) >= 2, 20)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(15) == 0
    # Started only now, so the handover does not race a worker's start-up against the run.
    cluster.start(1, "--concurrency", "1")
    info = cluster.ended(run_id, 20)
    assert info.status is RunStatus.SUCCESS
    assert cluster.store.load(run_id).values["n"] == 8
    entries = cluster.ledger(run_id)
    assert len(entries) == 8 and all(e[3] is not None for e in entries)
    no_overlap(entries)
    assert "release" in phases(cluster.store, run_id)
    assert "handed back to the queue" in first.output()


def test_sigterm_with_on_shutdown_cancel_cancels_the_run_as_shutdown(cluster: Cluster) -> None:
    (worker,) = cluster.start(1, "--on-shutdown", "cancel")
    run_id = cluster.enqueue("counter", {"n": 0, "until": 1000, "pause": 0.1})
    eventually(lambda: len(cluster.ledger(run_id)) >= 2, 20)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(15) == 0
    info = cluster.info(run_id)
    assert info.status is RunStatus.CANCELLED
    assert info.reason is not None and info.reason.kind == "shutdown"
    snapshot = cluster.store.load(run_id)
    assert snapshot.values["n"] == len(cluster.ledger(run_id))
