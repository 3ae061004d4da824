"""A loop's spare connection (`tether.checkpoint.postgres.connection._Spare`): async calls on a
loop reuse one connection without the pool's `getconn`/`putconn`, a cancelled call gives it
back, and closing the store closes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from conformance.conftest import postgres_dsn
from tether.checkpoint.postgres import connection
from tether.checkpoint.postgres.connection import Database, connection_kwargs
from tether.checkpoint.query import Op, Query

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app_name() -> str:
    return f"tether-spare-{uuid.uuid4().hex[:8]}"


def database(app_name: str, async_size: int) -> Database:
    dsn = postgres_dsn()
    kwargs = connection_kwargs(dsn, schema=None, application_name=app_name,
                               prepare_threshold=None)
    return Database(dsn, kwargs, min_size=1, max_size=2, async_size=async_size,
                    connect_timeout=10.0)


@pytest.fixture
def db(app_name: str) -> Iterator[Database]:
    store = database(app_name, async_size=3)
    try:
        yield store
    finally:
        store.close()


def backend_pid() -> Op[int]:
    row: Any = yield Query("SELECT pg_backend_pid()")
    return int(row[0])


def sleep(seconds: float) -> Op[None]:
    yield Query("SELECT pg_sleep(%s)", (seconds,))


async def test_consecutive_calls_on_a_loop_reuse_one_connection(db: Database) -> None:
    # The pool hands its connections out in turn; the spare is the same one every time.
    pids = [await db.arun(backend_pid()) for _ in range(6)]
    assert len(set(pids)) == 1


async def test_concurrent_calls_still_run_on_several_connections(db: Database) -> None:
    pids = await asyncio.gather(*(db.arun(backend_pid()) for _ in range(20)))
    assert len(pids) == 20
    transaction = await db.arun(backend_pid(), transaction=True)
    assert isinstance(transaction, int)


async def test_a_call_cancelled_mid_statement_gives_the_connection_back(db: Database) -> None:
    await db.arun(backend_pid())  # the spare is kept
    call = asyncio.ensure_future(db.arun(sleep(30)))
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # Every connection is usable again: as many calls at once as the pool has connections.
    pids = await asyncio.gather(*(db.arun(backend_pid()) for _ in range(3)))
    assert len(set(pids)) == 3
    assert await db.arun(backend_pid()) in pids


def test_a_pool_of_one_keeps_no_spare(app_name: str) -> None:
    # A caller finding the spare busy would wait on an empty pool.
    store = database(app_name, async_size=1)

    async def main() -> list[int]:
        try:
            return list(await asyncio.gather(*(store.arun(backend_pid()) for _ in range(5))))
        finally:
            await store.aclose()

    try:
        assert len(set(asyncio.run(main()))) == 1
    finally:
        store.close()


def test_closing_the_store_closes_the_spare(app_name: str) -> None:
    store = database(app_name, async_size=2)

    async def main() -> int:
        pid = await store.arun(backend_pid())
        await store.aclose()
        return pid

    pid = asyncio.run(main())
    with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
        for _ in range(50):  # a backend exits shortly after its client closes
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                               (pid,)).fetchone()
            if row is not None and row[0] == 0:
                break
            conn.execute("SELECT pg_sleep(0.1)")
        else:
            pytest.fail(f"backend {pid} still open after the store closed")


async def test_a_caller_waiting_on_the_pool_gets_the_spare_once_it_is_free(
        db: Database) -> None:
    # Three connections: the spare and two in the pool. A short call holds the spare, two long
    # ones the pool's; a fourth call waits on the pool. When the short one ends, the spare goes
    # to the pool for that waiter instead of staying spare while it waits for a long one.
    await db.arun(backend_pid())  # the spare is kept
    ended: list[str] = []

    async def call(name: str, seconds: float) -> None:
        await db.arun(sleep(seconds))
        ended.append(name)

    short = asyncio.ensure_future(call("short", 0.3))
    await asyncio.sleep(0.05)
    longs = [asyncio.ensure_future(call(f"long{n}", 3.0)) for n in range(2)]
    await asyncio.sleep(0.1)
    waiter = asyncio.ensure_future(call("waiter", 0.0))
    await asyncio.gather(short, waiter, *longs)
    assert ended[:2] == ["short", "waiter"], ended
    # The spare is kept again once no one waits.
    pids = [await db.arun(backend_pid()) for _ in range(4)]
    assert len(set(pids)) == 1


async def test_a_spare_past_its_term_goes_back_through_the_pool(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # The pool hands its connections out in turn. A spare kept for good would escape the
    # pool's `max_lifetime` and `drain`; past its term it goes back to the pool after its call,
    # and the next call takes the pool's next connection (which becomes the spare).
    monkeypatch.setattr(connection, "SPARE_TERM", 0.5)
    first = await db.arun(backend_pid())
    within = [await db.arun(backend_pid()) for _ in range(3)]
    assert within == [first] * 3
    await asyncio.sleep(0.6)
    assert await db.arun(backend_pid()) == first  # its last call, then back to the pool
    after = [await db.arun(backend_pid()) for _ in range(3)]
    assert first not in after
    assert len(set(after)) == 1  # a new spare
