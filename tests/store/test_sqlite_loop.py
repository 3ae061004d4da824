"""The SQLite long-term store's async methods never hold the event loop: a write waiting for
the file's write lock (another process's transaction, a slow disk) waits in the store's writer
thread while the loop goes on; reads and writes keep their order and their whole-or-nothing
batches; a cancel waits for the step it interrupted and lands at the caller's next await.

Reads run on the reading connection, which never waits for a writer; on the loop when short,
in the store's reader thread when a statement needs more than `INLINE_STEPS` of SQLite's steps.

The slow part is made deterministic: a connection of the test holds the file's write lock, so
the store's next write waits (in SQLite's busy handler) until the test lets it go.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sqlite_lock import WriteLock
from tether.store.base import PutOp
from tether.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio

TURNS = 50
"""Loop turns taken while the store's write is held: any number > 0 would do."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    # A long busy timeout: a held write must wait for the test, never give up.
    opened = SqliteStore(path, busy_timeout=60.0)
    yield opened
    opened.close()


async def test_a_held_write_does_not_block_the_event_loop(store: SqliteStore,
                                                          path: Path) -> None:
    store.put(("docs",), "warm", {"v": 0})
    ticks = 0
    with WriteLock(path):
        # Inline, this call would hold the loop inside SQLite's busy handler until the lock
        # went away (here: never, since only the loop could let it go).
        write = asyncio.ensure_future(store.aput(("docs",), "a", {"v": 1}))
        for _ in range(TURNS):
            await asyncio.sleep(0)
            ticks += 1
        assert not write.done()
        assert ticks == TURNS
    await asyncio.wait_for(write, 60)
    item = await store.aget(("docs",), "a")
    assert item is not None and item.value == {"v": 1}


async def test_writes_and_reads_keep_the_order_they_were_made_in(store: SqliteStore) -> None:
    calls = [store.aput(("docs",), "k", {"v": n}) for n in range(10)]
    read = store.aget(("docs",), "k")
    await asyncio.gather(*calls)
    item = await read
    assert item is not None and item.value == {"v": 9}
    assert [i.key for i in await store.asearch(("docs",))] == ["k"]


async def test_a_cancel_waits_for_the_write_and_lands_at_the_next_await(
        store: SqliteStore, path: Path) -> None:
    with WriteLock(path):
        write = asyncio.ensure_future(store.abatch([]))  # warm: the thread exists
        await write
        write = asyncio.ensure_future(store.aput(("docs",), "b", {"v": 2}))
        for _ in range(TURNS):
            await asyncio.sleep(0)
        write.cancel()
        for _ in range(TURNS):
            await asyncio.sleep(0)
        assert not write.done()  # the step handed over is still waiting for the lock
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(write, 60)
    # The write it was waiting for was not torn: it committed whole.
    item = store.get(("docs",), "b")
    assert item is not None and item.value == {"v": 2}


async def test_async_calls_after_close_fail_as_before(path: Path) -> None:
    opened = SqliteStore(path)
    await opened.aput(("docs",), "a", {"v": 1})
    opened.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await opened.aget(("docs",), "a")


async def test_reads_do_not_wait_for_a_held_write(store: SqliteStore, path: Path) -> None:
    await store.aput(("docs",), "a", {"v": 1})
    with WriteLock(path):
        write = asyncio.ensure_future(store.aput(("docs",), "a", {"v": 2}))
        await asyncio.sleep(0)
        # The write waits for the lock; reads answer meanwhile with what is committed.
        item = await asyncio.wait_for(store.aget(("docs",), "a"), 5)
        assert item is not None and item.value == {"v": 1}
        assert [i.key for i in await asyncio.wait_for(store.asearch(("docs",)), 5)] == ["a"]
        assert not write.done()
    await asyncio.wait_for(write, 60)
    item = await store.aget(("docs",), "a")
    assert item is not None and item.value == {"v": 2}


def _decoded_in(threads: set[int]) -> Callable[[str], dict]:
    """A deserializer that notes the thread each value is decoded in."""

    def loads(text: str) -> dict:
        threads.add(threading.get_ident())
        return json.loads(text)

    return loads


async def test_a_short_search_runs_on_the_loop_and_a_long_one_in_the_reader_thread(
        path: Path) -> None:
    threads: set[int] = set()
    store = SqliteStore(path, deserializer=_decoded_in(threads))
    try:
        store.batch([PutOp(("docs",), f"k{i}", {"i": i, "kind": "a" if i % 2 else "b"})
                     for i in range(2000)])
        store.batch([PutOp(("few",), f"k{i}", {"i": i}) for i in range(5)])
        loop_thread = threading.get_ident()
        for _ in range(100):  # one cached statement, run many times: each run within budget
            short = await store.asearch(("few",), limit=3)
            assert [item.key for item in short] == ["k0", "k1", "k2"]
        assert threads == {loop_thread}
        threads.clear()
        # Every item is read to apply this filter (no SQL condition for `$gte`): more SQLite
        # steps than a read may take on the loop; the search starts again in the thread.
        long = await store.asearch(("docs",), filter={"i": {"$gte": 1990}}, limit=20)
        assert [item.key for item in long] == [f"k{i}" for i in range(1990, 2000)]
        assert threads and loop_thread not in threads
        assert store.search(("docs",), filter={"i": {"$gte": 1990}}, limit=20) == long
        assert [i.key for i in await store.asearch(("docs",), filter={"kind": "a"},
                                                    limit=2)] == ["k1", "k3"]
    finally:
        store.close()
