"""What is particular to each backend's class: LangGraph's async classes (awaited `setup()` and
sweeper), opening from LangGraph's arguments, and Postgres beside `PostgresSaver`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from conformance.conftest import fresh_schema
from tether.store.memory import InMemoryStore

from .conftest import FakeClock

pytestmark = pytest.mark.anyio


async def test_async_sqlite_store_awaits_setup_and_its_sweeper(tmp_path: Path) -> None:
    from tether.store.sqlite.aio import AsyncSqliteStore

    clock = FakeClock()
    async with AsyncSqliteStore.from_conn_string(str(tmp_path / "s.db"),
                                                 ttl={"default_ttl": 1}, clock=clock) as store:
        await store.setup()
        await store.aput(("ns",), "k", {"v": 1})
        clock.advance(120)
        assert await store.sweep_ttl() == 1
        done = await store.start_ttl_sweeper(sweep_interval_minutes=0.001)
        assert await store.stop_ttl_sweeper(timeout=5) is True
        await asyncio.wait_for(done, 5)


@pytest.mark.postgres
async def test_async_postgres_store_awaits_setup_and_its_sweeper() -> None:
    from tether.store.postgres.aio import AsyncPostgresStore

    with fresh_schema() as (dsn, schema):
        async with AsyncPostgresStore.from_conn_string(dsn, schema=schema,
                                                       pool_config={"max_size": 2}) as store:
            await store.setup()
            await store.aput(("ns",), "k", {"v": 1}, ttl=1)
            assert await store.sweep_ttl() == 0
            assert (await store.aget(("ns",), "k")).value == {"v": 1}
            done = await store.start_ttl_sweeper()
            done.cancel()  # cancelling the sweeper's future stops it
            assert await store.stop_ttl_sweeper(timeout=5) is True


def test_cancelling_the_sweepers_future_stops_its_thread() -> None:
    store = InMemoryStore()
    done = store.start_ttl_sweeper(sweep_interval_minutes=60)
    assert done.cancel()
    deadline = time.monotonic() + 5
    while not store.stop_ttl_sweeper(timeout=0.1):
        assert time.monotonic() < deadline


@pytest.mark.postgres
@pytest.mark.parametrize("store_first", [True, False])
def test_postgres_store_and_saver_share_a_schema(store_first: bool) -> None:
    import psycopg

    from tether.checkpoint.postgres import PostgresSaver
    from tether.store.postgres import PostgresStore

    with fresh_schema() as (dsn, schema):
        opened = []
        for kind in ((PostgresStore, PostgresSaver) if store_first
                     else (PostgresSaver, PostgresStore)):
            opened.append(kind(dsn, schema=schema))
        store = next(s for s in opened if isinstance(s, PostgresStore))
        saver = next(s for s in opened if isinstance(s, PostgresSaver))
        store.put(("users", "u1"), "name", {"v": "Ada"})
        saver.put_thread("t1", {"user": "u1"})
        assert store.get(("users", "u1"), "name").value == {"v": "Ada"}
        for handle in opened:
            handle.close()
        with psycopg.connect(dsn) as conn:
            tables = {name for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,))}
        assert {"store_items", "store_vectors", "runs", "checkpoints"} <= tables


@pytest.mark.postgres
def test_postgres_store_opens_from_a_psycopg_connection_or_pool() -> None:
    import psycopg
    from psycopg_pool import ConnectionPool

    from tether.store.postgres import PostgresStore

    with fresh_schema() as (dsn, schema):
        url = f"{dsn}?options=-csearch_path%3D{schema}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        with psycopg.connect(url) as conn:
            store = PostgresStore(conn)
            store.put(("ns",), "k", {"v": 1})
            store.close()
        with ConnectionPool(url, open=True, min_size=1, max_size=1) as pool:
            store = PostgresStore(pool)
            assert store.get(("ns",), "k").value == {"v": 1}
            store.close()
        with pytest.raises(TypeError, match="connection string"):
            PostgresStore(42)
