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

from conformance.conftest import fresh_schema
from tether.checkpoint.postgres import PostgresSaver, _migrations
from tether.checkpoint.postgres.queue import QUEUE_CHANNEL, Order
from tether.checkpoint.store_records import RunFinish
from tether.types import RunStatus

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["new", "upgraded"])
def pg(request: pytest.FixtureRequest) -> Iterator[tuple[PostgresSaver, psycopg.Connection[Any]]]:
    """A store of its own schema (made new, or made by the schema version before this change
    and migrated when the store opens it), and a connection that listens to its queue's
    wake-ups."""
    with fresh_schema() as (dsn, schema):
        if request.param == "upgraded":
            _make_schema(dsn, schema, UPGRADED_FROM)
        store = PostgresSaver(dsn, schema=schema, async_size=2)
        listener = psycopg.connect(dsn, autocommit=True)
        try:
            listener.execute(f"LISTEN {QUEUE_CHANNEL}")  # type: ignore[arg-type]
            yield store, listener
        finally:
            listener.close()
            store.close()


UPGRADED_FROM = 3
"""The schema version before the wake-ups were narrowed to runs queued behind."""


def _make_schema(dsn: str, schema: str, version: int) -> None:
    """Make `schema` as a tether of schema `version` left it."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(_migrations.create_schema(schema))  # type: ignore[arg-type]
        conn.execute(f"SET LOCAL search_path = {schema}")  # type: ignore[arg-type]
        conn.execute(_migrations.CREATE_VERSION_TABLE)  # type: ignore[arg-type]
        for number, (description, statements) in enumerate(
                _migrations.MIGRATIONS[:version], start=1):
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute(_migrations.RECORD_VERSION, (number, description))  # type: ignore[arg-type]


def _wakes(listener: psycopg.Connection[Any], graph: str) -> int:
    """The wake-ups for `graph` sent since the last call (each test queues a graph of its own:
    the channel is the database's). A marker sent now comes after every one committed before
    it (notifications arrive in commit order): they are all counted once it is here."""
    marker = f"marker-{uuid.uuid4().hex}"
    with psycopg.connect(listener.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_notify(%s, %s)", (QUEUE_CHANNEL, marker))
    wakes = 0
    for note in listener.notifies(timeout=30):
        if note.payload == marker:
            return wakes
        wakes += note.payload == graph
    raise AssertionError("the marker notification did not arrive")


def _queue(store: PostgresSaver, graph: str, thread_id: str) -> str:
    return store.queue.enqueue(Order(graph=graph, thread_id=thread_id, input={},
                                     multitask="enqueue")).run_id


def _claim(store: PostgresSaver, graph: str) -> list[str]:
    jobs = asyncio.run(store.queue.aclaim("worker-1", [graph], 30.0, 10, start=True))
    return [job.run_id for job in jobs]


def _end(store: PostgresSaver, run_id: str, status: RunStatus = RunStatus.SUCCESS) -> None:
    assert store.finish_run(run_id, RunFinish(status=status)).applied


def test_a_run_that_ends_alone_on_its_thread_wakes_no_worker(
        pg: tuple[PostgresSaver, psycopg.Connection[Any]]) -> None:
    store, listener = pg
    graph = f"g-{uuid.uuid4().hex}"
    run_id = _queue(store, graph, "alone")
    assert _wakes(listener, graph) == 1  # queued
    assert _claim(store, graph) == [run_id]
    _end(store, run_id)
    assert store.get_run(run_id).status is RunStatus.SUCCESS  # type: ignore[union-attr]
    assert _wakes(listener, graph) == 0


@pytest.mark.parametrize("status", [RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.INTERRUPTED])
def test_a_run_that_frees_its_thread_for_a_queued_run_wakes_the_workers(
        pg: tuple[PostgresSaver, psycopg.Connection[Any]], status: RunStatus) -> None:
    store, listener = pg
    graph = f"g-{uuid.uuid4().hex}"
    first, second = _queue(store, graph, "busy"), _queue(store, graph, "busy")
    assert _wakes(listener, graph) == 2
    assert _claim(store, graph) == [first]  # the second waits behind the first
    _end(store, first, status)
    assert _wakes(listener, graph) == 1
    assert _claim(store, graph) == [second]


def test_a_queued_run_cancelled_before_a_claim_wakes_the_workers_for_the_one_behind(
        pg: tuple[PostgresSaver, psycopg.Connection[Any]]) -> None:
    store, listener = pg
    graph = f"g-{uuid.uuid4().hex}"
    first, second = _queue(store, graph, "queued"), _queue(store, graph, "queued")
    assert _wakes(listener, graph) == 2
    _end(store, first, RunStatus.CANCELLED)
    assert _wakes(listener, graph) == 1
    assert _claim(store, graph) == [second]
