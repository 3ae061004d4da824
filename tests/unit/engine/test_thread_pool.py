"""The sync-node pool grows with the nodes running at once and shrinks back when they are gone,
without ever leaving a queued job with no thread to run it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.engine.to_thread import ThreadPool


async def _run_together(pool: ThreadPool, count: int, hold: float) -> list[int]:
    """`count` jobs at once, each holding its thread for `hold` seconds."""
    started = threading.Barrier(count, timeout=5) if hold else None

    def job(i: int) -> int:
        if started is not None:
            started.wait()  # every job on a thread of its own at once
            time.sleep(hold)
        return i

    jobs = [pool.submit(lambda i=i: job(i)) for i in range(count)]
    return list(await asyncio.gather(*(j.future for j in jobs)))


async def _until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5.0
    while not predicate():
        assert time.monotonic() < deadline, "the pool did not shrink in time"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_idle_threads_beyond_the_kept_ones_exit() -> None:
    pool = ThreadPool(max_threads=16, keep_threads=2, idle_seconds=0.05)
    try:
        assert await _run_together(pool, 8, 0.01) == list(range(8))
        assert pool.threads == 8
        await _until(lambda: pool.threads == 2)
        await asyncio.sleep(0.2)  # the kept ones stay, however long they wait
        assert pool.threads == 2
        # ...and the pool still runs (and grows for) whatever comes next.
        assert await _run_together(pool, 5, 0.01) == list(range(5))
    finally:
        pool.close()


@pytest.mark.anyio
async def test_a_pool_that_keeps_nothing_shrinks_to_no_thread_and_starts_again() -> None:
    pool = ThreadPool(max_threads=4, keep_threads=0, idle_seconds=0.02)
    try:
        assert await _run_together(pool, 3, 0.0) == [0, 1, 2]
        await _until(lambda: pool.threads == 0)
        assert await _run_together(pool, 3, 0.0) == [0, 1, 2]
    finally:
        pool.close()


@pytest.mark.anyio
async def test_jobs_queued_behind_busy_threads_leave_no_phantom_idle_thread() -> None:
    """Jobs queued while every thread is busy are taken by threads as they finish, which no
    submit counted on. Once all the threads have retired, a lone job must still get one."""
    pool = ThreadPool(max_threads=2, keep_threads=0, idle_seconds=0.01)
    try:
        assert await _run_together(pool, 2, 0.0) == [0, 1]  # two threads, then idle

        def held(i: int) -> int:
            time.sleep(0.02)
            return i

        jobs = [pool.submit(lambda i=i: held(i)) for i in range(4)]  # two queue behind
        assert await asyncio.gather(*(j.future for j in jobs)) == [0, 1, 2, 3]
        await _until(lambda: pool.threads == 0)
        lone = pool.submit(lambda: "ran")
        assert await asyncio.wait_for(lone.future, 5) == "ran"
    finally:
        pool.close()


@settings(max_examples=40, deadline=None)
@given(waves=st.lists(st.tuples(st.integers(1, 8), st.sampled_from([0.0, 0.001, 0.004])),
                      min_size=1, max_size=6),
       idle=st.sampled_from([0.001, 0.003, 0.01]), keep=st.integers(0, 2),
       hold=st.sampled_from([0.0, 0.001]))
def test_retiring_threads_never_strand_a_queued_job(
        waves: list[tuple[int, float]], idle: float, keep: int, hold: float) -> None:
    """Waves of jobs submitted while threads time out and retire (idle timeouts as short as
    the gaps between waves), some waves larger than the pool (jobs queue behind busy threads,
    and are taken by threads no submit counted on): every job is run, and the count of live
    threads stays true."""
    def job(i: int) -> int:
        if hold:
            time.sleep(hold)
        return i

    async def main() -> None:
        pool = ThreadPool(max_threads=4, keep_threads=keep, idle_seconds=idle)
        try:
            for count, gap in waves:
                jobs = [pool.submit(lambda i=i: job(i)) for i in range(count)]
                done = await asyncio.wait_for(asyncio.gather(*(j.future for j in jobs)), 5)
                assert done == list(range(count))
                assert 0 <= pool.threads <= pool.max_threads
                await asyncio.sleep(gap)
        finally:
            pool.close()

    asyncio.run(main())


def test_bad_pool_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="idle_seconds"):
        ThreadPool(idle_seconds=0)
    with pytest.raises(ValueError, match="max_threads"):
        ThreadPool(max_threads=0)
