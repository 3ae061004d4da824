"""The SQLite store's async reads that grow with the data run in a reader thread of their own:
off the event loop, and never queued behind the writer thread's writes (a group commit, a write
waiting for the file's lock); a point read by key runs inline (cheaper than the hand-off). A
read changes nothing, so a cancelled one is not waited for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sqlite_lock import WriteLock
from tether.checkpoint.sqlite import SqliteSaver
from tether.checkpoint.sqlite.reads import POINT_READS
from tether.types import RunInfo, RunStatus

from .test_sqlite_writer import record

pytestmark = pytest.mark.anyio


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "reads.db")


@pytest.fixture
def store(path: str) -> Iterator[SqliteSaver]:
    # A long busy timeout: the held write must wait for the test, never give up.
    opened = SqliteSaver(path, busy_timeout=60.0)
    yield opened
    opened.close()


async def test_async_reads_do_not_queue_behind_a_write_in_progress(store: SqliteSaver,
                                                                   path: str) -> None:
    first = record()
    store.put_checkpoint(first)
    store.put_thread("t", {"k": 1})
    store.create_run(RunInfo("r", "t", RunStatus.PENDING))
    with WriteLock(path):
        write = asyncio.ensure_future(store.aput_checkpoint(record(value=2)))
        await asyncio.sleep(0.1)  # time for the writer thread to take the write (not asserted)
        # Each read answers while the write waits for the file's lock (it would wait behind
        # it in the writer thread's queue).
        reads = asyncio.gather(
            store.aget_checkpoint("t"), store.aget_run("r"), store.aget_thread("t"),
            store.alist_runs(thread_id="t"), store.asearch_threads(metadata={"k": 1}),
            store.aevents("r"), store.acancel_requests(["r"]), store.aload("r"),
            _all(store, "t"))
        checkpoint, run, thread, runs, threads, events, cancels, kept, history = \
            await asyncio.wait_for(reads, 30)
        assert not write.done()
    assert checkpoint is not None and checkpoint.id == first.id
    assert run is not None and thread is not None and [r.run_id for r in runs] == ["r"]
    assert [t.thread_id for t in threads] == ["t"] and events == [] and cancels == {}
    assert kept.checkpoint_id is None and [c.id for c in history] == [first.id]
    await asyncio.wait_for(write, 60)
    assert (await store.aget_checkpoint("t")) != checkpoint


async def _all(store: SqliteSaver, thread_id: str) -> list[object]:
    return [c async for c in store.alist_checkpoints(thread_id)]


async def test_reads_that_grow_with_the_data_run_off_the_event_loop(
        store: SqliteSaver) -> None:
    seen: list[int] = []
    list_runs = store.list_runs

    def noted(**kwargs: object) -> list[RunInfo]:
        seen.append(threading.get_ident())
        return list_runs(**kwargs)  # type: ignore[arg-type]

    store.list_runs = noted  # type: ignore[method-assign]
    assert await store.alist_runs(thread_id="nobody") == []
    assert seen and threading.get_ident() not in seen


async def test_point_reads_by_key_run_inline_on_the_loop(store: SqliteSaver) -> None:
    seen: list[str] = []
    for name in POINT_READS:
        read = getattr(store, name)

        def noted(*args: object, _read: Any = read, _name: str = name) -> object:
            assert threading.current_thread() is threading.main_thread()
            seen.append(_name)
            return _read(*args)

        setattr(store, name, noted)
    assert await store.aget_run("nobody") is None
    assert await store.aget_thread("nobody") is None
    assert await store.acancel_requests(["nobody"]) == {}
    assert await store.aget_writes("nobody", "", "none", "channel") == ()
    assert sorted(seen) == sorted(POINT_READS)


async def test_a_cancelled_read_is_not_waited_for(store: SqliteSaver) -> None:
    started, release = threading.Event(), threading.Event()
    list_runs = store.list_runs

    def slow(**kwargs: object) -> list[RunInfo]:
        started.set()
        release.wait(30)  # a read held up (a slow disk)
        return list_runs(**kwargs)  # type: ignore[arg-type]

    store.list_runs = slow  # type: ignore[method-assign]
    read = asyncio.ensure_future(store.alist_runs(thread_id="t"))
    assert await asyncio.to_thread(started.wait, 30)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(read, 5)  # at once: the read is still held
    release.set()
    store.list_runs = list_runs  # type: ignore[method-assign]
    assert await store.alist_runs(thread_id="t") == []  # the thread serves the next read
