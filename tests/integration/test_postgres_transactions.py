"""A Postgres store's transactions (`tether.checkpoint.postgres.connection._committed`): BEGIN
and COMMIT travel in the pipeline with the statements, so a run's end is two round trips (the
lock's, then everything else with the commit); an error of the database or of the operation
rolls the whole transaction back and leaves the connection fit for the next call; a cancel
does too."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any, TypedDict

import psycopg
import psycopg_pool
import pytest

from conformance.conftest import postgres_dsn
from tether.checkpoint.postgres import PostgresSaver
from tether.checkpoint.postgres.connection import Database, connection_kwargs
from tether.checkpoint.postgres.ops import AtCommit
from tether.checkpoint.postgres.queue import Order
from tether.checkpoint.query import Op, Query
from tether.errors import CheckpointNotFound
from tether.graph import END, StateGraph

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def table() -> Iterator[str]:
    name = f"tx_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, note text)")
        try:
            yield name
        finally:
            conn.execute(f"DROP TABLE {name}")


@pytest.fixture(params=[None, 0], ids=["unprepared", "prepared"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    # Prepared at once (threshold 0) too: psycopg must forget the statements an aborted
    # pipeline never prepared, and those of a rolled back transaction.
    dsn = postgres_dsn()
    kwargs = connection_kwargs(dsn, schema=None, application_name="tether-tx-test",
                               prepare_threshold=request.param)
    made = Database(dsn, kwargs, min_size=1, max_size=1, async_size=1, connect_timeout=10.0)
    try:
        yield made
    finally:
        made.close()


def rows_of(table: str) -> list[Any]:
    with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
        return conn.execute(f"SELECT id, note FROM {table} ORDER BY id").fetchall()


def insert(table: str, *ids: int, then: BaseException | None = None) -> Op[int]:
    for n in ids:
        yield Query(f"INSERT INTO {table} VALUES (%s, 'x')", (n,), "none")
    if then is not None:
        raise then
    row: Any = yield Query(f"SELECT count(*) FROM {table}")
    return int(row[0])


def insert_last(table: str, n: int) -> Op[int | AtCommit[int]]:
    cursor = yield Query(f"INSERT INTO {table} VALUES (%s, 'x') RETURNING id", (n,), "later")
    return AtCommit(cursor, lambda row: int(row[0]) * 10)


def test_the_statements_commit_together(db: Database, table: str) -> None:
    assert db.run(insert(table, 1, 2), transaction=True) == 2
    assert rows_of(table) == [(1, "x"), (2, "x")]


async def call(db: Database, make: str, op: Op[Any]) -> Any:
    """`op` in a transaction of `db`, through its sync or its async path."""
    if make == "sync":
        return db.run(op, transaction=True)
    return await db.arun(op, transaction=True)


@pytest.mark.parametrize("make", ["sync", "async"])
@pytest.mark.parametrize("case", [
    ((1, 2), ValueError("refused"), ValueError),
    ((1, 2, 1), None, psycopg.errors.UniqueViolation),  # found at the count's sync
], ids=["the-operations-error", "the-databases-error"])
async def test_an_error_rolls_everything_back(
        db: Database, table: str, make: str,
        case: tuple[tuple[int, ...], BaseException | None, type[BaseException]]) -> None:
    ids, then, error = case
    with pytest.raises(error):
        await call(db, make, insert(table, *ids, then=then))
    assert rows_of(table) == []
    # The connection is fit for the next call (the pool holds only this one).
    assert await call(db, make, insert(table, 3)) == 1


@pytest.mark.parametrize("make", ["sync", "async"])
async def test_a_row_read_after_the_commit(db: Database, table: str, make: str) -> None:
    assert await call(db, make, insert_last(table, 4)) == 40
    # Its statement's failure surfaces at the commit, and nothing of the transaction stays.
    with pytest.raises(psycopg.errors.UniqueViolation):
        await call(db, make, insert_last(table, 4))
    assert rows_of(table) == [(4, "x")]


def test_a_failure_at_the_commit_is_tethers_error(db: Database) -> None:
    # A pending write for a checkpoint that does not exist, left for after the commit: the
    # foreign key refuses it at the commit, as `CheckpointNotFound`.
    with PostgresSaver.from_conn_string(postgres_dsn()) as saver:
        saver.setup()

    def orphan_write() -> Op[int | AtCommit[int]]:
        cursor = yield Query(
            "INSERT INTO writes (thread_id, ns, checkpoint_id, task_id, idx, task_name, "
            "channel, value) VALUES (%s, '', 'nope', 't', 0, 'n', 'c', '') RETURNING idx",
            (f"missing-{uuid.uuid4().hex}",), "later")
        return AtCommit(cursor, lambda row: int(row[0]))

    with pytest.raises(CheckpointNotFound):
        db.run(orphan_write(), transaction=True)


async def test_a_cancelled_transaction_commits_nothing(db: Database, table: str) -> None:
    def slow() -> Op[int]:
        yield Query(f"INSERT INTO {table} VALUES (7, 'x')", None, "none")
        yield Query("SELECT pg_sleep(5)")
        return 1

    task = asyncio.ensure_future(db.arun(slow(), transaction=True))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rows_of(table) == []
    assert await db.arun(insert(table, 8), transaction=True) == 1


class Count(TypedDict):
    n: int


@contextlib.contextmanager
def libpq_trace(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """libpq's trace of every connection the sync pools hand out meanwhile, as lines."""
    lines: list[str] = []
    traced: list[Any] = []
    getconn = psycopg_pool.ConnectionPool.getconn
    with tempfile.TemporaryFile() as log:

        def tracing(pool: Any, *args: Any, **kwargs: Any) -> Any:
            conn = getconn(pool, *args, **kwargs)
            if conn not in traced:
                traced.append(conn)
                conn.pgconn.trace(log.fileno())
                conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS
                                            | psycopg.pq.Trace.REGRESS_MODE)
            return conn

        monkeypatch.setattr(psycopg_pool.ConnectionPool, "getconn", tracing)
        try:
            yield lines
        finally:
            monkeypatch.undo()
            for conn in traced:
                conn.pgconn.untrace()
            log.seek(0)
            lines.extend(log.read().decode(errors="replace").splitlines())


def transaction_of(lines: list[str], marker: str) -> list[str]:
    """The trace of the transaction whose statements include the first one with `marker`, from
    its BEGIN to the server's answer that it is over. (A statement's text goes on over the
    lines after its `Parse` when it has line breaks.)"""
    at = next(i for i, line in enumerate(lines) if marker in line and not line.startswith("B"))
    begin = max(i for i in range(at) if _parses(lines[i], "BEGIN"))
    end = next(i for i in range(at, len(lines))
               if lines[i].startswith("B") and "ReadyForQuery" in lines[i]
               and lines[i].rstrip().endswith("I"))
    seen = lines[begin:end + 1]
    assert any(_parses(line, "COMMIT") for line in seen), "\n".join(seen)
    return seen


def waits_of_transaction(lines: list[str], marker: str) -> int:
    """How many times the client waited for the server in the transaction whose statements
    include one with `marker`: each change from what it sent (F) to what it received (B)."""
    return sum(1 for sent, got in itertools.pairwise(transaction_of(lines, marker))
               if sent.startswith("F") and got.startswith("B"))


def test_a_runs_end_is_two_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    # BEGIN travels with the lock of the run; the checkpoint, the flip and its events with the
    # COMMIT (it was five round trips: psycopg's transaction() waits for its BEGIN, and syncs
    # again before its COMMIT).
    with PostgresSaver.from_conn_string(postgres_dsn()) as saver:
        saver.setup()
        builder = StateGraph(Count).add_node("a", lambda s: {"n": s["n"] + 1})
        builder.set_entry_point("a")
        builder.add_edge("a", END)
        graph = builder.compile(checkpointer=saver)
        with libpq_trace(monkeypatch) as lines:
            graph.invoke({"n": 0}, {"configurable": {"thread_id": uuid.uuid4().hex}})
    assert waits_of_transaction(lines, "FOR UPDATE") == 2


def test_a_runs_input_checkpoint_and_first_steps_are_one_round_trip(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing runs between the two (no router from START): the input checkpoint goes with the
    # first step's, in its transaction; BEGIN, both and the COMMIT in one round trip. (Two
    # steps: the second step's checkpoint is a statement of its own.)
    with PostgresSaver.from_conn_string(postgres_dsn()) as saver:
        saver.setup()
        builder = StateGraph(Count).add_node("a", lambda s: {"n": s["n"] + 1})
        builder.add_node("b", lambda s: {"n": s["n"] + 1})
        builder.set_entry_point("a")
        builder.add_edge("a", "b")
        builder.add_edge("b", END)
        graph = builder.compile(checkpointer=saver)
        thread = uuid.uuid4().hex
        with libpq_trace(monkeypatch) as lines:
            assert graph.invoke({"n": 0}, {"configurable": {"thread_id": thread}}) == {"n": 2}
        steps = [c.step for c in saver.list_checkpoints(thread)]
    assert steps == [2, 1, 0, -1]
    put = "UPDATE runs SET heartbeat_at"  # a line of `PUT_CHECKPOINT`, one per checkpoint
    assert sum(1 for line in transaction_of(lines, put) if put in line) == 2
    assert waits_of_transaction(lines, put) == 1
    # Every checkpoint is stored: the pair, the second step's alone, the last with the end.
    assert sum(1 for line in lines if put in line) == 4


def test_a_run_is_queued_in_one_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    # The thread's lock, the insert (with its busy check) and the COMMIT go together; the
    # insert's row is read after the commit.
    with PostgresSaver.from_conn_string(postgres_dsn()) as saver:
        saver.setup()
        thread = uuid.uuid4().hex
        with libpq_trace(monkeypatch) as lines:
            saver.queue.enqueue(Order(graph="g", thread_id=thread, input={"x": 1},
                                      config={"configurable": {"thread_id": thread}},
                                      multitask="reject"))
    assert waits_of_transaction(lines, "pg_advisory_xact_lock") == 1


def _parses(line: str, statement: str) -> bool:
    return line.startswith("F") and "Parse" in line and f'"{statement}"' in line
