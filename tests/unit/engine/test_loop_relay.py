"""`LoopRelay`: chunks made on worker threads reach the loop's thread whole and in order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tether.engine.stream import LoopRelay


@pytest.mark.anyio
async def test_chunks_from_threads_arrive_in_order_on_the_loops_thread() -> None:
    got: list[tuple[int, int]] = []
    threads_seen: set[int] = set()

    def emit(chunk: tuple[int, int]) -> None:
        threads_seen.add(threading.get_ident())
        got.append(chunk)

    relay = LoopRelay(emit, asyncio.get_running_loop())
    relay((-1, 0))  # from the loop's own thread: straight through
    assert got == [(-1, 0)]

    def produce(worker: int) -> None:
        for n in range(2000):
            relay((worker, n))

    await asyncio.gather(*(asyncio.to_thread(produce, w) for w in range(3)))
    await asyncio.sleep(0)  # the last drain
    for _ in range(100):
        if len(got) == 6001:
            break
        await asyncio.sleep(0.01)
    assert len(got) == 6001
    for worker in range(3):
        assert [n for w, n in got if w == worker] == list(range(2000))
    assert threads_seen == {threading.get_ident()}
