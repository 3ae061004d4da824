"""What wakes the workers (`NOTIFY tether_queue`): a run queued, and a run that frees its thread
(it ends, or it pauses for input) while another run waits behind it there. A run that ends
alone on its thread wakes nobody: its own worker claims again when it lets the run go."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from conformance.conftest import fresh_schema, make_old_schema
from tether.checkpoint.postgres import PostgresSaver
from tether.checkpoint.postgres.queue import QUEUE_CHANNEL, Order
from tether.checkpoint.store_records import RunFinish
from tether.types import RunStatus

pytestmark = pytest.mark.postgres


UPGRADED_FROM = 3
"""The schema version before the wake-ups were narrowed to runs queued behind."""


class Queue:
    """A store's run queue, with a connection that listens to its wake-ups."""

    def __init__(self, dsn: str, store: PostgresSaver, listener: psycopg.Connection[Any]) -> None:
        self.dsn, self.store, self.listener = dsn, store, listener
        self.graph = f"g-{uuid.uuid4().hex}"  # the channel is the database's: a graph of our own

    def wakes(self) -> int:
        """The wake-ups for this graph sent since the last call. A marker sent now comes after
        every one committed before it (notifications arrive in commit order): they are all
        counted once it is here."""
        marker = f"marker-{uuid.uuid4().hex}"
        with psycopg.connect(self.dsn, autocommit=True) as other:
            other.execute("SELECT pg_notify(%s, %s)", (QUEUE_CHANNEL, marker))
        wakes = 0
        for note in self.listener.notifies(timeout=30):
            if note.payload == marker:
                return wakes
            wakes += note.payload == self.graph
        raise AssertionError("the marker notification did not arrive")

    def add(self, thread_id: str) -> str:
        return self.store.queue.enqueue(Order(graph=self.graph, thread_id=thread_id, input={},
                                              multitask="enqueue")).run_id

    def claim(self) -> list[str]:
        jobs = asyncio.run(self.store.queue.aclaim("worker-1", [self.graph], 30.0, 10,
                                                   start=True))
        return [job.run_id for job in jobs]

    def end(self, run_id: str, status: RunStatus = RunStatus.SUCCESS) -> None:
        assert self.store.finish_run(run_id, RunFinish(status=status)).applied


@pytest.fixture(params=["new", "upgraded"])
def queue(request: pytest.FixtureRequest) -> Iterator[Queue]:
    """The queue of a store of its own schema: made new, or made by the schema version before
    this change and migrated when the store opens it."""
    with fresh_schema() as (dsn, schema):
        if request.param == "upgraded":
            make_old_schema(dsn, schema, UPGRADED_FROM)
        store = PostgresSaver(dsn, schema=schema, async_size=2)
        listener = psycopg.connect(dsn, autocommit=True)
        try:
            listener.execute(f"LISTEN {QUEUE_CHANNEL}")  # type: ignore[arg-type]
            yield Queue(dsn, store, listener)
        finally:
            listener.close()
            store.close()


def test_a_run_that_ends_alone_on_its_thread_wakes_no_worker(queue: Queue) -> None:
    run_id = queue.add("alone")
    assert queue.wakes() == 1  # queued
    assert queue.claim() == [run_id]
    queue.end(run_id)
    assert queue.store.get_run(run_id).status is RunStatus.SUCCESS  # type: ignore[union-attr]
    assert queue.wakes() == 0


@pytest.mark.parametrize("status", [RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.INTERRUPTED])
def test_a_run_that_frees_its_thread_for_a_queued_run_wakes_the_workers(
        queue: Queue, status: RunStatus) -> None:
    first, second = queue.add("busy"), queue.add("busy")
    assert queue.wakes() == 2
    assert queue.claim() == [first]  # the second waits behind the first
    queue.end(first, status)
    assert queue.wakes() == 1
    assert queue.claim() == [second]


def test_a_queued_run_cancelled_before_a_claim_wakes_the_workers_for_the_one_behind(
        queue: Queue) -> None:
    first, second = queue.add("queued"), queue.add("queued")
    assert queue.wakes() == 2
    queue.end(first, RunStatus.CANCELLED)
    assert queue.wakes() == 1
    assert queue.claim() == [second]
