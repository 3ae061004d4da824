"""A subscription's bookkeeping, on a scripted store and live feed: holes below a live event are
filled from the store, holes the store cannot fill are passed over, repeats are dropped, and an
event too large for a notification is read from the store in its place."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import pytest

from tether.bus import END_EVENT, BusEvent
from tether.bus.postgres.payloads import PAYLOAD_LIMIT, pack, unpack
from tether.bus.subscription import Subscription

pytestmark = pytest.mark.anyio


def ev(seq: int, data: bytes | None = b"x", event: str = "custom") -> BusEvent:
    return BusEvent(seq, event, data)


class Scripted:
    """A store holding `stored`; `join` answers `known`; records the reads made."""

    def __init__(self, stored: list[BusEvent], known: int | None) -> None:
        self.stored, self.known = stored, known
        self.reads: list[tuple[int, int | None]] = []
        self.members: list[Subscription] = []

    async def join(self, subscription: Subscription) -> int | None:
        self.members.append(subscription)
        return self.known

    def leave(self, subscription: Subscription) -> None:
        self.members.remove(subscription)

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        self.reads.append((after, upto))
        top = upto if upto is not None else 1 << 62
        return [e for e in self.stored if after < e.seq <= top][:limit]


async def take(sub: Subscription, count: int) -> list[int]:
    async with asyncio.timeout(5):
        return [(await anext(sub)).seq for _ in range(count)]


async def test_a_hole_below_a_live_event_is_filled_from_the_store() -> None:
    store = Scripted([ev(1), ev(2), ev(3)], known=0)
    sub = Subscription(store, "r")
    sub.offer([ev(4)])  # live delivery started after 1-3 were published
    assert await take(sub, 4) == [1, 2, 3, 4]
    assert store.reads == [(0, 3)]


async def test_a_hole_the_store_cannot_fill_is_passed_over() -> None:
    store = Scripted([ev(1), ev(5), ev(6)], known=0)  # 2-4 trimmed away
    sub = Subscription(store, "r")
    sub.offer([ev(4), ev(5), ev(6)])
    assert await take(sub, 3) == [1, 4, 5]


async def test_repeated_and_reordered_live_events_come_out_once_in_order() -> None:
    store = Scripted([ev(i) for i in range(1, 7)], known=0)
    sub = Subscription(store, "r", after=2)
    sub.offer([ev(3), ev(3), ev(5), ev(4), ev(6)])
    assert await take(sub, 4) == [3, 4, 5, 6]


async def test_an_event_sent_without_its_data_is_read_from_the_store() -> None:
    store = Scripted([ev(1), ev(2, b"big" * 5000)], known=0)
    sub = Subscription(store, "r")
    sub.offer([ev(1), ev(2, None)])
    first, second = await anext(sub), await anext(sub)
    assert (first.seq, second.seq, second.data) == (1, 2, b"big" * 5000)
    assert store.reads == [(1, 2)]


async def test_a_reader_of_a_store_without_live_position_reads_everything_first() -> None:
    store = Scripted([ev(1), ev(2), ev(3, b"done", END_EVENT)], known=None)
    sub = Subscription(store, "r")
    got = [e.seq async for e in sub]
    assert got == [1, 2, 3] and sub.ended and store.members == []


class Held(Scripted):
    """A store whose reads answer (with what it held when asked) only once `release` is set, as
    a read queued behind busy connections does; `cancelled` counts the reads given up."""

    def __init__(self, stored: list[BusEvent], known: int | None) -> None:
        super().__init__(stored, known)
        self.release = asyncio.Event()
        self.cancelled = 0

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        found = await super().read(run_id, after, upto, limit)  # what the store has now
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return found


async def test_the_next_event_live_is_handed_out_while_the_store_read_is_in_flight() -> None:
    store = Held([ev(1), ev(2), ev(3)], known=None)
    sub = Subscription(store, "r")
    sub.offer([ev(1)])
    assert await take(sub, 1) == [1]  # the read of what came before has not answered
    sub.offer([ev(2), ev(4)])
    assert await take(sub, 1) == [2]
    waiting = asyncio.ensure_future(anext(sub))  # 4 is not next: 3 may be in the store
    await asyncio.sleep(0.01)
    assert not waiting.done()
    store.release.set()
    async with asyncio.timeout(5):
        assert (await waiting).seq == 3
    assert await take(sub, 1) == [4]
    assert store.reads == [(2, None)]  # read when needed, from where the live events left off


async def test_a_resync_while_the_store_is_read_reads_it_again() -> None:
    store = Held([ev(1)], known=None)
    sub = Subscription(store, "r")
    waiting = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0.01)
    sub.resync()  # live delivery may have missed events published after the read began
    store.stored.append(ev(2))
    store.release.set()
    async with asyncio.timeout(5):
        assert (await waiting).seq == 1
    assert await take(sub, 1) == [2]
    assert store.reads == [(0, None), (1, None)]


async def test_closing_a_reader_gives_up_its_store_read() -> None:
    store = Held([ev(1)], known=None)
    sub = Subscription(store, "r")
    waiting = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0.01)
    await sub.aclose()
    async with asyncio.timeout(5):
        with pytest.raises(StopAsyncIteration):
            await waiting
    assert store.cancelled == 1 and store.members == []


class Deaf(Scripted):
    """A store whose read, cancelled, goes on and then fails (as a client library may do when
    a cancel lands while it connects, and the connection is closed under it)."""

    def __init__(self) -> None:
        super().__init__([], known=None)
        self.started, self.failed = asyncio.Event(), asyncio.Event()

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        self.started.set()
        with contextlib.suppress(asyncio.CancelledError):  # the cancel is lost
            await asyncio.sleep(5)
        await asyncio.sleep(0)
        self.failed.set()
        raise ConnectionError("closed under the read")


async def test_a_store_read_that_fails_after_its_reader_closed_is_not_left_unretrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        store = Deaf()
        sub = Subscription(store, "r")
        sub.offer([ev(1)])  # handed out live while the read of what came before is in flight
        assert await take(sub, 1) == [1]
        sub.offer([ev(3)])
        waiting = asyncio.ensure_future(anext(sub))  # 2 may be in the store: the read is asked
        async with asyncio.timeout(5):
            await store.started.wait()
        await sub.aclose()
        async with asyncio.timeout(5):
            with pytest.raises(StopAsyncIteration):
                await waiting
            await store.failed.wait()
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()  # a task whose exception nobody took reports it when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_a_negative_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        Subscription(Scripted([], 0), "r", after=-1)


def test_notification_payloads_stay_under_the_limit_and_round_trip() -> None:
    events = [ev(i, bytes([i % 256]) * (i * 37 % 3000)) for i in range(1, 200)]
    events.append(ev(200, b"y" * 50_000))
    payloads = pack(events)
    assert all(len(p.encode()) <= PAYLOAD_LIMIT for p in payloads)
    back = [e for p in payloads for e in unpack(p)]
    assert [e.seq for e in back] == list(range(1, 201))
    assert back[:-1] == events[:-1] and back[-1] == BusEvent(200, "custom", None)
    assert unpack("not json") == [] and unpack('[["x"]]') == []
