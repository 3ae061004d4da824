"""A worker whose database fails it: the end of a run survives a lost connection, a run whose end
cannot be written is given up (its lease lapses, the sweeper or another worker ends it) instead
of being held for ever, and a run that cannot start ends `error` after a few tries instead of
circling the workers and blocking its thread.

The worker runs in this process, on a store that fails on cue: its connections closed by the
server right before the run's end is written, or its writes refused."""

from __future__ import annotations

import asyncio
import logging
import operator
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypedDict

import psycopg
import pytest

import tether
from conformance.conftest import fresh_schema
from tether.checkpoint.base import FinishResult, RunFinish
from tether.checkpoint.postgres import PostgresSaver
from tether.checkpoint.postgres.queue import Order
from tether.graph import END, START, StateGraph
from tether.types import CancelReason, RunInfo, RunStatus
from tether.worker import Worker, WorkerOptions

pytestmark = [pytest.mark.postgres, pytest.mark.anyio, pytest.mark.timeout(60)]

LEASE = 1.0


class Ticks(TypedDict, total=False):
    n: int
    until: int
    log: Annotated[list[int], operator.add]


async def tick(state: Ticks) -> dict[str, Any]:
    await tether.sleep(0.02)
    return {"n": state.get("n", 0) + 1, "log": [state.get("n", 0)]}


def ticking() -> Any:
    builder = StateGraph(Ticks).add_node("tick", tick).add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda s: END if s["n"] >= s["until"] else "tick")
    return builder.compile()


def terminate(dsn: str, application_name: str) -> int:
    """Have the server close every connection of that name (waiting until they are gone)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                            "WHERE application_name = %s", (application_name,)).fetchall()
    return len(rows)


class ClosedBeforeTheEnd(PostgresSaver):
    """Every connection of this store is closed by the server right before a run's end is
    written (as a Postgres restart or `pg_terminate_backend` would)."""

    name = ""
    closed = 0

    async def afinish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        self.closed += terminate(self.conninfo, self.name)
        return await super().afinish_run(run_id, finish)


class Unwritable(PostgresSaver):
    """A store that can no longer write a run's end, nor read it back (its server is gone for
    this process), while the queue's own statements still work."""

    async def afinish_run(self, run_id: str, finish: RunFinish) -> FinishResult:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    def get_run(self, run_id: str) -> RunInfo | None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")


@pytest.fixture
def where() -> Iterator[tuple[str, str]]:
    with fresh_schema() as found:
        yield found


@asynccontextmanager
async def working(store: PostgresSaver, **options: Any) -> AsyncIterator[Worker]:
    """A worker on `store` serving `ticking` as "ticks", in this event loop."""
    worker = Worker(store, {"ticks": ticking().rebind(store, name="ticks")}, WorkerOptions(
        lease=LEASE, poll=0.05, sweep_every=0.2, owner=f"faults-{uuid.uuid4().hex[:6]}",
        **options))
    task = asyncio.get_running_loop().create_task(worker.run())
    try:
        yield worker
    finally:
        worker.drain(force=True)
        await asyncio.wait_for(task, 30)


def enqueue(store: PostgresSaver, until: int, *, thread: str | None = None,
            config: dict[str, Any] | None = None) -> str:
    thread = thread or uuid.uuid4().hex
    order = Order(graph="ticks", thread_id=thread, input={"n": 0, "until": until},
                  config={"configurable": {"thread_id": thread}, **(config or {})},
                  multitask="enqueue")
    return store.queue.enqueue(order).run_id


async def ended(store: PostgresSaver, run_id: str, timeout: float) -> RunInfo:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        info = store.get_run(run_id)
        assert info is not None
        if info.terminal or time.monotonic() > deadline:
            return info
        await asyncio.sleep(0.05)


async def running(store: PostgresSaver, run_id: str) -> None:
    for _ in range(400):
        info = store.get_run(run_id)
        if info is not None and info.status is RunStatus.RUNNING and info.checkpoint_id:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} did not start")


async def test_the_end_of_a_run_is_written_on_a_fresh_connection_when_its_own_was_closed(
        where: tuple[str, str]) -> None:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    store = ClosedBeforeTheEnd(where[0], schema=where[1], application_name=name)
    store.name = name
    check = PostgresSaver(*where[:1], schema=where[1])
    try:
        async with working(store):
            run_id = enqueue(check, 5)
            info = await ended(check, run_id, 15)
        assert info.status is RunStatus.SUCCESS, info
        assert store.closed >= 2  # at least the connection of the write, and the listener's
        state = check.load(run_id)
        assert state.values["n"] == 5 and state.values["log"] == [0, 1, 2, 3, 4]
    finally:
        store.close()
        check.close()


async def test_a_run_whose_end_cannot_be_written_is_given_up_and_its_cancel_ends_it(
        where: tuple[str, str]) -> None:
    store = Unwritable(where[0], schema=where[1])
    check = PostgresSaver(where[0], schema=where[1])
    try:
        async with working(store):
            run_id = enqueue(check, 10_000)
            await running(check, run_id)
            asked = time.monotonic()
            check.request_cancel(run_id, CancelReason("user", "stop"))
            info = await ended(check, run_id, 15)
            took = time.monotonic() - asked
        # Ended by the sweeper once the lease lapsed: within the run's grace and one lease
        # (and a sweep), not held for ever.
        assert info.status is RunStatus.CANCELLED, info
        assert took < 2.0 + LEASE + 2.0, took
        lease = check.db.run(_lease(run_id))
        assert lease is None or lease[0] is None
    finally:
        store.close()
        check.close()


def _lease(run_id: str) -> Any:
    from tether.checkpoint.postgres.ops import Query

    row = yield Query("SELECT lease_expires_at FROM runs WHERE run_id = %s", (run_id,))
    return row


async def test_a_run_that_cannot_start_ends_error_after_three_tries_and_frees_its_thread(
        where: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    store = PostgresSaver(where[0], schema=where[1])
    try:
        thread = uuid.uuid4().hex
        # Queued past the server's checks (another client, an older server): a config the
        # graph refuses.
        poison = enqueue(store, 1, thread=thread, config={"not_a_config_key": 1})
        after = enqueue(store, 2, thread=thread)
        with caplog.at_level(logging.INFO, logger="tether.worker"):
            async with working(store):
                bad = await ended(store, poison, 15)
                good = await ended(store, after, 15)
        assert bad.status is RunStatus.ERROR, bad
        assert bad.error is not None and "not_a_config_key" in bad.error
        assert "failed to start 3 times" in bad.error
        releases = [e for e in store.events(poison) if e.phase == "release"]
        assert [("start_failed" in e.detail) for e in releases] == [True, True]
        assert good.status is RunStatus.SUCCESS
        # The traceback once; its repeats as one line with a count.
        failures = [r for r in caplog.records if "could not be started" in r.getMessage()]
        assert [r.exc_info is not None for r in failures] == [True, False, False]
        assert "the same failure 3 times" in failures[-1].getMessage()
    finally:
        store.close()
