"""`PostgresSaver` beyond the conformance suite: schema versions, one round trip per
checkpoint, cancels that notify, fencing epochs, and the run queue's rules (multitask,
priority, sweeps). Each test has a schema of its own on the test server."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from conformance.conftest import Chain, fresh_schema, new_run, write
from tether.checkpoint.base import RunFinish
from tether.checkpoint.postgres import PostgresSaver, ops
from tether.checkpoint.postgres.queue import CANCEL_CHANNEL, Order
from tether.checkpoint.postgres.schema import LATEST_VERSION
from tether.errors import (
    CheckpointNotFound,
    CorruptStoreError,
    SchemaVersionError,
    StaleLeaseError,
    ThreadBusyError,
)
from tether.types import CancelReason, RunEvent, RunStatus, utcnow

pytestmark = pytest.mark.postgres


@pytest.fixture
def where() -> Iterator[tuple[str, str]]:
    """(dsn, schema) of a fresh schema."""
    with fresh_schema() as found:
        yield found


@pytest.fixture
def store(where: tuple[str, str]) -> Iterator[PostgresSaver]:
    made = PostgresSaver(where[0], schema=where[1])
    yield made
    made.close()


def sql(where: tuple[str, str], statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(where[0], autocommit=True, options=f"-c search_path={where[1]}") as c:
        cur = c.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def order(thread: str = "t", multitask: str = "enqueue", **fields: Any) -> Order:
    config = {"configurable": {"thread_id": thread}, **fields.pop("config", {})}
    return Order(graph=fields.pop("graph", "g"), thread_id=thread, input={"x": 1},
                 config=config, multitask=multitask, **fields)


# -- the schema -------------------------------------------------------------------------------


def test_a_schema_written_by_a_newer_tether_is_refused_and_left_unchanged(
        where: tuple[str, str]) -> None:
    PostgresSaver(where[0], schema=where[1]).close()
    sql(where, "INSERT INTO tether_schema (version, description) VALUES (99, 'future')")
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        PostgresSaver(where[0], schema=where[1])
    assert [v for (v,) in sql(where, "SELECT version FROM tether_schema ORDER BY 1")] == [
        *range(1, LATEST_VERSION + 1), 99]


def test_a_schema_holding_tables_tether_did_not_make_is_refused(where: tuple[str, str]) -> None:
    with psycopg.connect(where[0], autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {where[1]}")  # type: ignore[arg-type]
        conn.execute(f"CREATE TABLE {where[1]}.runs (id int)")  # type: ignore[arg-type]
    with pytest.raises(CorruptStoreError, match="did not make"):
        PostgresSaver(where[0], schema=where[1])


def test_stores_opening_a_new_schema_at_once_migrate_it_exactly_once(
        where: tuple[str, str]) -> None:
    opened: list[PostgresSaver] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresSaver(where[0], schema=where[1]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for made in opened:
        made.close()
    assert errors == [] and len(opened) == 4
    assert sql(where, "SELECT version FROM tether_schema ORDER BY 1") == [
        (v,) for v in range(1, LATEST_VERSION + 1)]


# -- cost and notifications -----------------------------------------------------------------


class _Counting:
    """A connection that counts the statements it executes."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn, self.count = conn, 0

    def execute(self, query: Any, params: Any = None) -> Any:
        self.count += 1
        return self.conn.execute(query, params)


def test_a_checkpoint_its_values_and_its_run_pointer_are_one_statement(
        store: PostgresSaver) -> None:
    from tether.checkpoint.postgres import checkpoints

    run_id = new_run(store, metadata={"checkpoint_ns": ""}).run_id
    record = Chain(store, run_id=run_id).record({"a": 1, "b": [2], "c": "three"})
    with store.db.connect() as conn:
        counting = _Counting(conn)
        params = checkpoints.put_params(record, store.serde, None)
        ops.run(counting, checkpoints.put(record, params))  # type: ignore[arg-type]
    assert counting.count == 1
    info = store.get_run(run_id)
    assert info is not None and info.checkpoint_id == record.id
    stored = store.get_checkpoint("t")
    assert stored is not None and stored.values == {"a": 1, "b": [2], "c": "three"}


class _Answered:
    """A connection in pipeline mode that counts the statements whose rows are read: each
    read waits for the server (a round trip), the others travel with the next one."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn, self.waited = conn, 0

    def execute(self, query: Any, params: Any = None) -> Any:
        return _Read(self, self.conn.execute(query, params))


class _Read:
    def __init__(self, owner: _Answered, cursor: Any) -> None:
        self.owner, self.cursor = owner, cursor

    def fetchone(self) -> Any:
        self.owner.waited += 1
        return self.cursor.fetchone()

    def fetchall(self) -> Any:
        self.owner.waited += 1
        return self.cursor.fetchall()


def test_a_runs_end_with_its_last_checkpoint_waits_for_two_answers(
        store: PostgresSaver) -> None:
    # The lock of the run and the status flip: the checkpoint travels with the flip.
    from tether.checkpoint.postgres import runs

    run_id = new_run(store, metadata={"checkpoint_ns": ""}).run_id
    store.mark_running(run_id)
    record = Chain(store, run_id=run_id).record({"a": 1})
    end = RunFinish(status=RunStatus.SUCCESS, checkpoint_id=record.id, thread_id="t",
                    checkpoints=(record,))
    with store.db.connect() as conn:
        answered = _Answered(conn)
        with conn.pipeline(), conn.transaction():
            done = ops.run(answered, runs.finish(run_id, end, store.serde, None))  # type: ignore[arg-type]
    assert answered.waited == 2
    assert done.applied and done.info.status is RunStatus.SUCCESS
    stored = store.get_checkpoint("t")
    assert stored is not None and stored.id == record.id and stored.values == {"a": 1}
    info = store.get_run(run_id)
    assert info is not None and info.checkpoint_id == record.id


def test_a_runs_end_whose_checkpoint_the_database_refuses_changes_nothing(
        store: PostgresSaver, where: tuple[str, str]) -> None:
    # The checkpoint's failure arrives with the flip's answer: the end is rolled back whole.
    sql(where, "ALTER TABLE checkpoints ADD CONSTRAINT few_steps CHECK (step < 5)")
    run_id = new_run(store, metadata={"checkpoint_ns": ""}).run_id
    store.mark_running(run_id)
    chain = Chain(store, run_id=run_id)
    chain.step = 9
    record = chain.record({"a": 1})
    end = RunFinish(status=RunStatus.SUCCESS, checkpoint_id=record.id, thread_id="t",
                    checkpoints=(record,))
    with pytest.raises(psycopg.errors.CheckViolation, match="few_steps"):
        store.finish_run(run_id, end)
    info = store.get_run(run_id)
    assert info is not None and info.status is RunStatus.RUNNING and info.checkpoint_id is None
    assert store.get_checkpoint("t") is None


@pytest.mark.parametrize("multitask", ["reject", "enqueue"])
def test_queueing_a_run_waits_for_one_answer(store: PostgresSaver, multitask: str) -> None:
    # `reject` asks whether the thread is busy in the insert itself: lock and insert travel
    # together, and a busy thread still refuses the second run. The insert's row is read
    # once the transaction has committed (`ops.settle`), so it goes with the COMMIT
    # (`test_postgres_transactions.py` counts the round trips of the store's own path).
    from tether.checkpoint.postgres import queue

    waited = []
    for _ in range(2):
        with store.db.connect() as conn:
            answered = _Answered(conn)
            try:
                with conn.pipeline(), conn.transaction():
                    out = ops.run(answered,  # type: ignore[arg-type]
                                  queue.enqueue(order(multitask=multitask), store.serde))
                ops.settle(out)
            except ThreadBusyError:
                assert multitask == "reject"
            waited.append(answered.waited)
    assert waited == [1, 1]
    queued = [r for r in store.list_runs(thread_id="t") if r.status is RunStatus.PENDING]
    assert len(queued) == (1 if multitask == "reject" else 2)


def test_statements_outside_transactions_share_one_kept_cursor_per_connection(
        where: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A superstep's checkpoint is one statement: making a cursor for it cost about as much
    # client work as the round trip. A refused statement leaves the kept cursor usable.
    from tether.checkpoint.postgres import connection

    made: list[str] = []
    for kind in (connection.Connection, connection.AsyncConnection):
        real = kind.cursor

        def counted(self: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            made.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(kind, "cursor", counted)
    store = PostgresSaver(where[0], schema=where[1], max_size=1, async_size=1)
    try:
        run_id = new_run(store).run_id
        # Opening the store ran its migrations in a transaction (cursors of their own), and
        # `new_run` made the sync connection's kept cursor: from here on, no new one.
        assert made[-1] == "Connection"
        made.clear()
        for _ in range(3):
            assert store.get_run(run_id) is not None
        with pytest.raises(CheckpointNotFound):
            store.put_writes("t", "", "no-such-checkpoint", [write("task", "a", 1)])
        assert store.get_run(run_id) is not None

        async def reads() -> None:
            for _ in range(3):
                assert await store.aget_run(run_id) is not None
            with pytest.raises(CheckpointNotFound):
                await store.aput_writes("t", "", "no-such-checkpoint", [write("task", "a", 1)])
            assert await store.aget_run(run_id) is not None
            await store.aclose()

        asyncio.run(reads())
    finally:
        store.close()
    assert made == ["AsyncConnection"]


def test_a_cancel_request_commits_with_a_notify_carrying_the_run_id(
        where: tuple[str, str], store: PostgresSaver) -> None:
    run_id = new_run(store).run_id
    with psycopg.connect(where[0], autocommit=True) as listener:
        listener.execute(f"LISTEN {CANCEL_CHANNEL}")  # type: ignore[arg-type]
        store.request_cancel(run_id, CancelReason("user", "stop"))
        store.request_cancel(run_id, CancelReason("user", "again"))  # refused: no second notify
        notes = list(listener.notifies(timeout=1.0))
    # The channel is the database's: other schemas' runs (other tests) may notify on it too.
    assert [(n.channel, n.payload) for n in notes if n.payload == run_id] == [
        (CANCEL_CHANNEL, run_id)]


def test_async_twins_work_from_several_event_loops_in_turn(store: PostgresSaver) -> None:
    run_id = new_run(store).run_id

    async def read() -> RunStatus:
        info = await store.aget_run(run_id)
        assert info is not None
        return info.status

    assert [asyncio.run(read()) for _ in range(3)] == [RunStatus.PENDING] * 3
    result: list[RunStatus] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(read())))
    thread.start()
    thread.join(10)
    assert result == [RunStatus.PENDING]


def test_a_sync_invoke_uses_the_sync_pool_and_opens_no_async_one(
        store: PostgresSaver, monkeypatch: pytest.MonkeyPatch) -> None:
    # `invoke` from sync code runs on tether's private loop, which serves that call only: its
    # store calls take the sync pool in the calling thread (cheaper per superstep than
    # psycopg's async path), so no async pool is ever opened for that loop.
    from typing import TypedDict

    from tether.checkpoint.postgres import connection
    from tether.graph import END, START, StateGraph

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("an async pool was opened for the private loop")

    monkeypatch.setattr(connection, "AsyncConnectionPool", refuse)

    class Count(TypedDict):
        count: int

    builder = StateGraph(Count)
    builder.add_node("tick", lambda state: {"count": state["count"] + 1})
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda s: "tick" if s["count"] < 3 else END)
    graph = builder.compile(checkpointer=store)
    config: Any = {"configurable": {"thread_id": "t"}}
    assert graph.invoke({"count": 0}, config) == {"count": 3}
    assert len(list(graph.get_state_history(config))) >= 4


# -- fencing --------------------------------------------------------------------------------


def _taken_over(where: tuple[str, str], store: PostgresSaver) -> tuple[str, int, int]:
    """A run claimed at epoch 1, whose lease then lapsed and was claimed again (epoch 2)."""
    info = store.queue.enqueue(order())

    async def claim() -> int:
        (job,) = await store.queue.aclaim("w1", ["g"], 30.0, 1)
        return job.epoch

    first = asyncio.run(claim())
    sql(where, "UPDATE runs SET lease_expires_at = now() - interval '1 second'")
    second = asyncio.run(claim())
    return info.run_id, first, second


def test_every_write_of_a_worker_whose_lease_was_taken_over_is_refused_and_logged(
        where: tuple[str, str], store: PostgresSaver, caplog: pytest.LogCaptureFixture) -> None:
    run_id, first, second = _taken_over(where, store)
    assert (first, second) == (1, 2)
    current = PostgresSaver(where[0], schema=where[1])
    try:
        current.bind_lease(run_id, second, "t")
        assert current.mark_running(run_id, [RunEvent("start", utcnow())]) is not None
        kept = Chain(current, run_id=run_id)
        kept.put({"step": "by the current worker"})
        store.bind_lease(run_id, first, "t")
        stale = Chain(store, run_id=run_id)
        stale.refs, stale.last, stale.step = dict(kept.refs), kept.last, kept.step
        before = (current.get_run(run_id), current.events(run_id))
        with caplog.at_level(logging.WARNING, logger="tether.checkpoint.postgres"):
            with pytest.raises(StaleLeaseError):
                stale.put({"step": "by the stale worker"})
            pair = [stale.record({"step": "stale, first"})]
            stale.commit(pair[0])
            pair.append(stale.record({"step": "stale, second"}))
            with pytest.raises(StaleLeaseError):  # both refused, in one transaction
                store.put_checkpoints(pair)
            with pytest.raises(StaleLeaseError):
                asyncio.run(store.aput_checkpoints(pair))
            with pytest.raises(StaleLeaseError):
                store.put_writes("t", "", kept.head, [write("task", "step", "stale")])
            with pytest.raises(StaleLeaseError):
                store.append_events(run_id, [RunEvent("cleanup", utcnow())])
            with pytest.raises(StaleLeaseError):
                store.mark_running(run_id)
            with pytest.raises(StaleLeaseError):
                store.finish_run(run_id, RunFinish(status=RunStatus.SUCCESS))
        assert (current.get_run(run_id), current.events(run_id)) == before
        latest = current.get_checkpoint("t")
        assert latest is not None and latest.values == {"step": "by the current worker"}
        assert latest.pending_writes == ()
        assert [c.values for c in current.list_checkpoints("t")] == [
            {"step": "by the current worker"}]
        assert sum("stale lease" in r.getMessage() for r in caplog.records) == 7
    finally:
        current.close()


def test_a_batch_of_events_is_logged_exactly_in_its_order(store: PostgresSaver) -> None:
    # The events travel as one JSON array (one parameter, `rows.event_params`): every field
    # must come back as given, whatever characters a detail or a node holds, and in order.
    import datetime as dt

    run_id = new_run(store).run_id
    at = dt.datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    awkward = {"q": 'say "hi"', "b": "a\\b\\", "braces": "{1,2}", "u": "é \u2603", "n": None,
               "nested": {"list": [1, "two", {"three": 3.5}]}, "empty": {}}
    batch = [RunEvent("start", at), RunEvent("node", at, 'n"o,d{e}\\', awkward),
             *(RunEvent("custom", at + dt.timedelta(microseconds=i), None, {"i": i})
               for i in range(40)),
             RunEvent("finish", utcnow(), None, {"when": at})]
    store.append_events(run_id, batch)
    logged = store.events(run_id)
    assert logged[:-1] == batch[:-1]
    assert logged[-1].detail == {"when": str(at)}  # a value JSON cannot hold: its str()
    assert logged[0].at.utcoffset() is not None and logged[0].at == at


def test_a_checkpoint_write_tells_the_worker_of_a_durable_cancel(store: PostgresSaver) -> None:
    info = store.queue.enqueue(order())
    (job,) = asyncio.run(store.queue.aclaim("w1", ["g"], 30.0, 1))
    store.bind_lease(info.run_id, job.epoch, "t")
    chain = Chain(store, run_id=info.run_id)
    chain.put({"a": 1})
    assert store.cancel_noted(info.run_id) is None
    store.request_cancel(info.run_id, CancelReason("user", "from elsewhere"))
    chain.put({"a": 2})
    noted = store.cancel_noted(info.run_id)
    assert noted is not None and noted.message == "from elsewhere"


# -- the queue ------------------------------------------------------------------------------


def test_reject_refuses_a_second_run_on_a_thread_with_one_in_flight(store: PostgresSaver) -> None:
    first = store.queue.enqueue(order(multitask="reject"))
    with pytest.raises(ThreadBusyError, match=first.run_id):
        store.queue.enqueue(order(multitask="reject"))
    assert [r.run_id for r in store.list_runs(thread_id="t")] == [first.run_id]


def test_a_run_id_queued_twice_is_refused_and_the_first_stays(store: PostgresSaver) -> None:
    # The insert's failure surfaces at the commit (its row is read after it): still the
    # queue's own error, with nothing of the second order stored.
    first = store.queue.enqueue(order())
    with pytest.raises(ValueError, match="already exists"):
        store.queue.enqueue(order(thread="t2", run_id=first.run_id))

    async def again() -> None:
        await store.queue.aenqueue(order(thread="t3", run_id=first.run_id))

    with pytest.raises(ValueError, match="already exists"):
        asyncio.run(again())
    assert [r.run_id for r in store.list_runs()] == [first.run_id]
    assert store.queue.enqueue(order(thread="t2")).thread_id == "t2"


def test_enqueued_runs_of_a_thread_are_claimed_one_after_the_other(store: PostgresSaver) -> None:
    first = store.queue.enqueue(order())
    second = store.queue.enqueue(order())

    async def claim() -> list[str]:
        return [j.run_id for j in await store.queue.aclaim("w", ["g"], 30.0, 10)]

    assert asyncio.run(claim()) == [first.run_id]
    assert asyncio.run(claim()) == []
    store.finish_run(first.run_id, RunFinish(status=RunStatus.SUCCESS))
    assert asyncio.run(claim()) == [second.run_id]


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
def test_interrupt_and_rollback_cancel_the_runs_in_flight_as_superseded(
        store: PostgresSaver, strategy: str) -> None:
    first = store.queue.enqueue(order())
    second = store.queue.enqueue(order(multitask=strategy))
    before = store.get_run(first.run_id)
    assert before is not None and before.status is RunStatus.CANCELLING
    assert before.reason is not None and before.reason.kind == "superseded"
    assert before.reason.requested_by == second.run_id
    (ended,) = asyncio.run(store.queue.asweep("test"))
    assert ended.run_id == first.run_id and ended.status is RunStatus.CANCELLED
    (job,) = asyncio.run(store.queue.aclaim("w", ["g"], 30.0, 10))
    assert job.run_id == second.run_id
    assert job.supersedes == ((first.run_id,) if strategy == "rollback" else ())


def test_claims_go_by_priority_then_age_and_only_to_workers_of_the_graph(
        store: PostgresSaver) -> None:
    low = store.queue.enqueue(order("a"))
    other = store.queue.enqueue(order("b", graph="other"))
    high = store.queue.enqueue(order("c", config={"priority": 5}))
    later = store.queue.enqueue(order("d"))
    jobs = asyncio.run(store.queue.aclaim("w", ["g"], 30.0, 10))
    assert [j.run_id for j in jobs] == [high.run_id, low.run_id, later.run_id]
    assert other.run_id not in {j.run_id for j in jobs}
    assert [e.phase for e in store.events(high.run_id)] == ["create", "claim"]


def test_a_sweep_ends_unheld_cancelled_runs_and_runs_past_their_deadline(
        where: tuple[str, str], store: PostgresSaver) -> None:
    cancelled = store.queue.enqueue(order("a"))
    overdue = store.queue.enqueue(order("b", config={"timeout": 60}))
    held = store.queue.enqueue(order("c", config={"timeout": 60}))
    claimed = asyncio.run(store.queue.aclaim("w", ["g"], 30.0, 10))
    assert len(claimed) == 3
    # The deadlines pass now (set here: a claim skips a run already overdue, and a short timeout
    # could lapse before the claim on a busy machine); only `held` keeps its worker's lease.
    sql(where, "UPDATE runs SET deadline_at = now() - interval '1 second' WHERE run_id <> %s",
        (cancelled.run_id,))
    sql(where, "UPDATE runs SET lease_expires_at = NULL WHERE run_id <> %s", (held.run_id,))
    store.request_cancel(cancelled.run_id, CancelReason("user", "no longer needed"))
    ended = {i.run_id: i for i in asyncio.run(store.queue.asweep("sweeper"))}
    assert set(ended) == {cancelled.run_id, overdue.run_id}
    assert ended[cancelled.run_id].status is RunStatus.CANCELLED
    timed_out = ended[overdue.run_id]
    assert timed_out.status is RunStatus.TIMEOUT
    assert timed_out.reason is not None and timed_out.reason.kind == "timeout"
    assert [e.phase for e in store.events(overdue.run_id)][-6:] == [
        "request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]
    still = store.get_run(held.run_id)
    assert still is not None and still.status is RunStatus.PENDING
    assert asyncio.run(store.queue.asweep("sweeper")) == []


def test_a_queued_run_records_the_config_metadata_as_a_local_run_does(
        store: PostgresSaver) -> None:
    info = store.queue.enqueue(order(config={"metadata": {"tenant": "t1", "tag": [1]}}))
    assert info.metadata == {"tenant": "t1", "tag": [1], "graph": "g", "checkpoint_ns": ""}
    assert store.get_run(info.run_id) == info
