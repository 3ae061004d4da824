"""The write queue shared by a process's publishers: the batches of every run queued in one turn
go out in one write, in order, each caller gets its own answer, and a caller that leaves early
loses no one's events."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tether.bus import BusEvent
from tether.bus.batching import Batch, WriteQueue

pytestmark = pytest.mark.anyio


class Recorder:
    """A write that records each call's batches; `gate`, when set, holds every write until it
    is opened; `fail` names runs whose batch fails alone."""

    def __init__(self) -> None:
        self.writes: list[list[Batch]] = []
        self.gate: asyncio.Event | None = None
        self.fail: set[str] = set()

    async def __call__(self, batches: Sequence[Batch]) -> list[set[int] | Exception]:
        self.writes.append(list(batches))
        if self.gate is not None:
            await self.gate.wait()
        return [ValueError(b.run_id) if b.run_id in self.fail else set() for b in batches]

    def runs(self, write: int) -> list[str]:
        return [batch.run_id for batch in self.writes[write]]


def events(*seqs: int) -> list[BusEvent]:
    return [BusEvent(seq, "custom", str(seq).encode()) for seq in seqs]


async def test_the_batches_of_many_runs_queued_in_one_turn_go_out_in_one_write_in_order() -> None:
    write = Recorder()
    queue = WriteQueue(write, limit=1000)
    answers = await asyncio.gather(*(queue.append(f"r{i}", events(1, 2)) for i in range(50)))
    assert answers == [set()] * 50
    assert queue.writes == 1
    assert write.runs(0) == [f"r{i}" for i in range(50)]
    assert all([e.seq for e in b.events] == [1, 2] for b in write.writes[0])


async def test_batches_that_come_while_every_write_is_in_flight_go_together_in_the_next() -> None:
    write = Recorder()
    write.gate = asyncio.Event()
    queue = WriteQueue(write, limit=1000, concurrency=1)
    first = asyncio.ensure_future(queue.append("a", events(1)))
    while not write.writes:  # the writer takes "a" alone: nothing waits for company
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(queue.append(run, events(1))) for run in ("b", "c", "d")]
    await asyncio.sleep(0)
    assert write.runs(0) == ["a"] and len(write.writes) == 1  # its one write is in flight
    write.gate.set()
    await asyncio.gather(first, *later)
    assert [write.runs(i) for i in range(len(write.writes))] == [["a"], ["b", "c", "d"]]


async def test_a_slow_write_does_not_hold_up_batches_while_writes_are_free() -> None:
    write = Recorder()
    write.gate = asyncio.Event()
    queue = WriteQueue(write, limit=1000, concurrency=3)
    callers = []
    for run in ("a", "b", "c", "d", "e"):
        callers.append(asyncio.ensure_future(queue.append(run, events(1))))
        while sum(len(w) for w in write.writes) < min(len(callers), 3):
            await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [write.runs(i) for i in range(len(write.writes))] == [["a"], ["b"], ["c"]]
    write.gate.set()
    await asyncio.gather(*callers)
    assert [write.runs(i) for i in range(len(write.writes))][3:] == [["d", "e"]]


async def test_a_write_takes_about_limit_events_and_the_rest_go_in_the_next() -> None:
    write = Recorder()
    queue = WriteQueue(write, limit=5, concurrency=1)
    await asyncio.gather(*(queue.append(f"r{i}", events(1, 2)) for i in range(6)))
    assert [len(w) for w in write.writes] == [3, 3]
    assert [r for i in range(2) for r in write.runs(i)] == [f"r{i}" for i in range(6)]


async def test_a_batch_that_fails_alone_fails_only_its_caller() -> None:
    write = Recorder()
    write.fail = {"bad"}
    queue = WriteQueue(write, limit=1000)
    good, bad = await asyncio.gather(queue.append("good", events(1)),
                                     queue.append("bad", events(1)), return_exceptions=True)
    assert good == set()
    assert isinstance(bad, ValueError)


async def test_a_failed_write_fails_every_batch_in_it_and_the_next_write_goes_on() -> None:
    calls = 0

    async def flaky(batches: Sequence[Batch]) -> list[set[int] | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return [set() for _ in batches]

    queue = WriteQueue(flaky, limit=1000)
    found = await asyncio.gather(queue.append("a", events(1)), queue.append("b", events(1)),
                                 return_exceptions=True)
    assert all(isinstance(answer, ConnectionError) for answer in found)
    assert await queue.append("a", events(1)) == set()


async def test_a_caller_cancelled_while_waiting_loses_no_events_of_its_own_or_others() -> None:
    write = Recorder()
    write.gate = asyncio.Event()
    queue = WriteQueue(write, limit=1000, concurrency=1)
    callers = [asyncio.ensure_future(queue.append(f"r{i}", events(i + 1))) for i in range(4)]
    while not write.writes:
        await asyncio.sleep(0)
    callers[1].cancel()  # two callers of the write in flight leave
    extra = asyncio.ensure_future(queue.append("late", events(9)))
    await asyncio.sleep(0)
    callers[2].cancel()
    write.gate.set()
    answers = await asyncio.gather(*callers, extra, return_exceptions=True)
    assert isinstance(answers[1], asyncio.CancelledError)
    assert isinstance(answers[2], asyncio.CancelledError)
    assert answers[0] == answers[3] == answers[4] == set()
    written = [(b.run_id, [e.seq for e in b.events]) for w in write.writes for b in w]
    assert written == [("r0", [1]), ("r1", [2]), ("r2", [3]), ("r3", [4]), ("late", [9])]


async def test_aclose_waits_for_what_is_queued() -> None:
    write = Recorder()
    write.gate = asyncio.Event()
    queue = WriteQueue(write, limit=1000)
    pending = asyncio.ensure_future(queue.append("a", events(1)))
    while not write.writes:
        await asyncio.sleep(0)
    closing = asyncio.ensure_future(queue.aclose())
    await asyncio.sleep(0)
    assert not closing.done()
    write.gate.set()
    await closing
    assert pending.done() and pending.result() == set()
