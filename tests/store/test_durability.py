"""What durable backends keep: data across handles, JSON values, one file or schema with the
checkpoints; and what a cancelled async call leaves."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from pathlib import Path

import pytest

from tether.errors import SerializationError

from .conftest import DIMS, Stores


@pytest.mark.durable_only
def test_a_second_handle_sees_the_same_items_and_order(stores: Stores) -> None:
    first = stores.open()
    first.put(("ns",), "b", {"v": 1}, ttl=30)
    first.put(("ns",), "a", {"v": 2})
    second = stores.open()
    assert [i.key for i in second.search(("ns",))] == ["b", "a"]
    assert second.get(("ns",), "b") == first.get(("ns",), "b")
    second.delete(("ns",), "a")
    assert first.get(("ns",), "a") is None


@pytest.mark.durable_only
def test_sql_stores_keep_json_and_refuse_what_has_no_json_form(stores: Stores) -> None:
    api = stores.open()
    moment = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ident = uuid.UUID(int=7)
    api.put(("ns",), "k", {"when": moment, "id": ident, "n": 1.5, "big": 2**60, "u": "é"})
    assert api.get(("ns",), "k").value == {"when": moment.isoformat(), "id": str(ident),
                                           "n": 1.5, "big": 2**60, "u": "é"}
    for bad in ({"v": object()}, {"v": float("nan")}, {"v": b"bytes"}):
        with pytest.raises(SerializationError, match=r"'ns'.*'bad'"):
            api.put(("ns",), "bad", bad)
    assert api.get(("ns",), "bad") is None


@pytest.mark.durable_only
def test_a_custom_deserializer_reads_the_stored_json(stores: Stores) -> None:
    import json

    api = stores.open(deserializer=lambda text: {"raw": json.loads(text)})
    api.put(("ns",), "k", {"v": 1})
    assert api.get(("ns",), "k").value == {"raw": {"v": 1}}


def test_an_async_put_cancelled_while_embedding_stores_nothing(stores: Stores) -> None:
    started = asyncio.Event()

    async def slow_embed(texts: list[str]) -> list[list[float]]:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    api = stores.open(index={"dims": DIMS, "embed": slow_embed})
    store = stores.opened[-1]

    async def scenario() -> None:
        task = asyncio.create_task(store.aput(("ns",), "k", {"text": "cat"}))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert api.get(("ns",), "k") is None


def test_a_sqlite_store_shares_a_file_with_the_checkpoints(tmp_path: Path) -> None:
    from tether.checkpoint.sqlite import SqliteSaver
    from tether.store.sqlite import SqliteStore

    path = tmp_path / "app.db"
    with SqliteStore.from_conn_string(str(path)) as store:
        store.put(("users", "u1"), "name", {"v": "Ada"})
    saver = SqliteSaver(path)  # accepts a file the store made, and keeps the items
    saver.put_thread("t1", {"who": "u1"})
    saver.close()
    with SqliteStore.from_conn_string(str(path)) as store:
        assert store.get(("users", "u1"), "name").value == {"v": "Ada"}
    conn = sqlite3.connect(path)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert {"store_items", "store_vectors", "checkpoints", "runs"} <= tables


def test_a_sqlite_store_opens_the_file_of_a_sqlite3_connection(tmp_path: Path) -> None:
    from tether.store.sqlite import SqliteStore

    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    store = SqliteStore(conn)
    store.put(("ns",), "k", {"v": 1})
    store.close()
    conn.close()
    with SqliteStore.from_conn_string(str(path)) as again:
        assert again.get(("ns",), "k").value == {"v": 1}
    with pytest.raises(TypeError, match="from_conn_string"):
        SqliteStore(42)  # type: ignore[arg-type]


def test_a_sqlite_store_refuses_a_file_that_is_not_tethers(tmp_path: Path) -> None:
    from tether.errors import CorruptStoreError
    from tether.store.sqlite import SqliteStore

    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptStoreError):
        SqliteStore(path)
    conn = sqlite3.connect(path)
    assert [name for (name,) in conn.execute("SELECT name FROM sqlite_master")] == ["mine"]
    conn.close()
