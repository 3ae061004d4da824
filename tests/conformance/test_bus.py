"""One suite every stream bus backend passes (memory, Redis Streams, Postgres LISTEN/NOTIFY).

Each test plays several processes: every `site.open()` is a bus of its own (its own
connections, reader and listener) on the same backend. What is held: order, no loss under
bursts, many runs at once, resuming from an offset, history for late readers, the run-ended
signal waking waiters, cancel messages reaching every listener, events larger than a
notification, a publisher taking a run over, and offsets never used twice.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tether.bus import END_EVENT, BusEvent, StreamBus
from tether.bus import subscription as subscriptions
from tether.bus.memory import MemoryBroker, MemoryTransport

from .conftest import (
    drop_redis_keys,
    drop_schema,
    new_schema,
    postgres_dsn,
    redis_prefix,
    redis_url,
)

pytestmark = pytest.mark.anyio

WAIT = 20.0
"""Seconds any one wait in these tests may take before it is a failure."""


@dataclass
class Site:
    """One backend: `open()` makes a bus as another process would."""

    name: str
    make: Callable[[], StreamBus]
    opened: list[StreamBus] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def open(self) -> StreamBus:
        bus = self.make()
        self.opened.append(bus)
        return bus


def _memory() -> tuple[Callable[[], StreamBus], Callable[[], None], dict[str, Any]]:
    broker = MemoryBroker()
    return lambda: StreamBus(MemoryTransport(broker)), lambda: None, {}


def _redis() -> tuple[Callable[[], StreamBus], Callable[[], None], dict[str, Any]]:
    from tether.bus.redis import RedisTransport

    url, prefix = redis_url(), redis_prefix()
    return (lambda: StreamBus(RedisTransport(url, prefix=prefix)),
            lambda: drop_redis_keys(url, prefix), {"url": url, "prefix": prefix})


def _postgres() -> tuple[Callable[[], StreamBus], Callable[[], None], dict[str, Any]]:
    from tether.bus.postgres import PostgresTransport

    dsn, schema = postgres_dsn(), new_schema()
    name = f"tether-bus-test-{uuid.uuid4().hex[:8]}"
    return (lambda: StreamBus(PostgresTransport.open(dsn, schema=schema,
                                                     application_name=name)),
            lambda: drop_schema(dsn, schema), {"dsn": dsn, "schema": schema, "name": name})


SITES = {"memory": _memory, "redis": _redis, "postgres": _postgres}


@pytest.fixture(params=[pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
async def site(request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    """Each backend in turn; every bus opened is closed, and its data dropped, afterwards."""
    make, drop, details = SITES[request.param]()
    made = Site(request.param, make, details=details)
    try:
        yield made
    finally:
        for bus in made.opened:
            await bus.aclose()
        drop()


def _run() -> str:
    return f"run-{uuid.uuid4().hex[:10]}"


async def _collect(bus: StreamBus, run_id: str, after: int = 0,
                   stop_after: int | None = None) -> list[BusEvent]:
    got: list[BusEvent] = []
    async with asyncio.timeout(WAIT), bus.subscribe(run_id, after) as events:
        async for event in events:
            got.append(event)
            if stop_after is not None and len(got) == stop_after:
                break
    return got


def _payload(i: int) -> bytes:
    return f"chunk {i} ".encode() * (i % 7) + bytes([i % 256])


async def _publish(bus: StreamBus, run_id: str, count: int, *, end: bool = True,
                   event: str = "custom") -> None:
    publisher = await bus.publisher(run_id)
    for i in range(count):
        publisher.send(event, _payload(i))
    if end:
        await publisher.end(b"done")
    else:
        await publisher.flush()


def _numbers(events: list[BusEvent]) -> list[int]:
    return [e.seq for e in events]


# -- order and completeness ------------------------------------------------------------------


async def test_events_arrive_in_order_with_their_names_and_bytes(site: Site) -> None:
    writer, reader = site.open(), site.open()
    run_id = _run()
    names = ["values", "updates", "custom|inner:1", "messages", "lifecycle", "error"]
    reading = asyncio.ensure_future(_collect(reader, run_id))
    publisher = await writer.publisher(run_id)
    sent = [(names[i % len(names)], _payload(i)) for i in range(300)]
    sent.append(("values", b""))
    for name, data in sent:
        publisher.send(name, data)
    ended = await publisher.end(b'{"status": "success"}')
    got = await reading
    assert [(e.event, e.data) for e in got[:-1]] == sent
    assert _numbers(got) == list(range(1, len(sent) + 2))
    assert got[-1] == ended and got[-1].final and got[-1].data == b'{"status": "success"}'


async def test_a_burst_of_a_thousand_events_a_second_loses_nothing(site: Site) -> None:
    writer, reader = site.open(), site.open()
    run_id = _run()
    reading = asyncio.ensure_future(_collect(reader, run_id))
    await asyncio.sleep(0.05)  # the reader is live before the burst
    publisher = await writer.publisher(run_id)
    for tick in range(100):  # 1,000 events at about 1,000 a second, then 1,000 at once
        for i in range(10):
            publisher.send("custom", _payload(tick * 10 + i))
        await asyncio.sleep(0.01)
    for i in range(1000, 2000):
        publisher.send("custom", _payload(i))
    await publisher.end(b"done")
    got = await reading
    assert _numbers(got) == list(range(1, 2002))
    assert [e.data for e in got[:-1]] == [_payload(i) for i in range(2000)]


async def test_many_runs_at_once_each_get_their_own_events(site: Site) -> None:
    writer, reader = site.open(), site.open()
    runs = [_run() for _ in range(40)]
    readings = [asyncio.ensure_future(_collect(reader, run_id)) for run_id in runs]
    await asyncio.sleep(0.05)
    await asyncio.gather(*(_publish(writer, run_id, 60, event=run_id) for run_id in runs))
    for run_id, reading in zip(runs, readings, strict=True):
        got = await reading
        assert _numbers(got) == list(range(1, 62))
        assert {e.event for e in got[:-1]} == {run_id}
        assert [e.data for e in got[:-1]] == [_payload(i) for i in range(60)]


async def test_readers_at_different_offsets_in_one_process_each_get_theirs(site: Site) -> None:
    writer, reader = site.open(), site.open()
    run_id = _run()
    publisher = await writer.publisher(run_id)
    first = asyncio.ensure_future(_collect(reader, run_id))
    for i in range(50):
        publisher.send("custom", _payload(i))
    await publisher.flush()
    second = asyncio.ensure_future(_collect(reader, run_id, after=20))
    third = asyncio.ensure_future(_collect(reader, run_id, after=0))
    for i in range(50, 100):
        publisher.send("custom", _payload(i))
    await publisher.end(b"done")
    assert _numbers(await first) == list(range(1, 102))
    assert _numbers(await second) == list(range(21, 102))
    assert _numbers(await third) == list(range(1, 102))


async def test_a_slow_reader_gets_every_event_once_its_buffer_overflowed(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscriptions, "LIVE_LIMIT", 10)
    writer, reader = site.open(), site.open()
    run_id = _run()
    async with asyncio.timeout(WAIT), reader.subscribe(run_id) as events:
        publisher = await writer.publisher(run_id)
        publisher.send("custom", b"first")
        first = await anext(events)  # live now
        for i in range(300):
            publisher.send("custom", _payload(i))
        await publisher.end(b"done")
        await asyncio.sleep(0.2)  # the reader lags far behind
        rest = [event async for event in events]
    assert first.seq == 1 and _numbers(rest) == list(range(2, 303))
    assert [e.data for e in rest[:-1]] == [_payload(i) for i in range(300)]


# -- offsets: resuming, history, takeover --------------------------------------------------------


async def test_a_reader_resumes_after_the_offset_it_saw_last(site: Site) -> None:
    writer = site.open()
    run_id = _run()
    publisher = await writer.publisher(run_id)
    for i in range(100):
        publisher.send("custom", _payload(i))
    await publisher.flush()
    seen = await _collect(site.open(), run_id, stop_after=40)
    assert _numbers(seen) == list(range(1, 41))
    resumed = asyncio.ensure_future(_collect(site.open(), run_id, after=seen[-1].seq))
    for i in range(100, 120):
        publisher.send("custom", _payload(i))
    await publisher.end(b"done")
    got = await resumed
    assert _numbers(got) == list(range(41, 122))
    assert [e.data for e in got[:-1]] == [_payload(i) for i in range(40, 120)]


async def test_a_late_reader_gets_the_history_it_asks_for(site: Site) -> None:
    run_id = _run()
    await _publish(site.open(), run_id, 1200)
    reader = site.open()
    everything = await _collect(reader, run_id)
    assert _numbers(everything) == list(range(1, 1202)) and everything[-1].final
    assert [e.data for e in everything[:-1]] == [_payload(i) for i in range(1200)]
    assert _numbers(await _collect(reader, run_id, after=1057)) == list(range(1058, 1202))
    only_end = await _collect(reader, run_id, after=1200)
    assert [e.event for e in only_end] == [END_EVENT]


async def test_an_event_too_large_for_a_notification_arrives_whole_and_in_place(
        site: Site) -> None:
    writer, reader = site.open(), site.open()
    run_id = _run()
    big = os.urandom(100_000)
    long_name = "custom|" + "n" * 9_000
    reading = asyncio.ensure_future(_collect(reader, run_id))
    publisher = await writer.publisher(run_id)
    publisher.send("custom", b"before")
    publisher.send("custom", big)
    publisher.send(long_name, b"named at length")
    publisher.send("custom", b"after")
    await publisher.end(b"done")
    got = await reading
    assert [(e.event, e.data) for e in got[:-1]] == [
        ("custom", b"before"), ("custom", big), (long_name, b"named at length"),
        ("custom", b"after")]


async def test_a_publisher_taking_a_run_over_continues_its_offsets(site: Site) -> None:
    run_id = _run()
    await _publish(site.open(), run_id, 10, end=False)  # its worker then died
    reader = site.open()
    reading = asyncio.ensure_future(_collect(reader, run_id))
    successor = await site.open().publisher(run_id)
    assert successor.last_seq == 10
    for i in range(10, 20):
        successor.send("custom", _payload(i))
    await successor.end(b"done")
    got = await reading
    assert _numbers(got) == list(range(1, 22))
    assert [e.data for e in got[:-1]] == [_payload(i) for i in range(20)]


async def test_an_offset_is_never_used_twice(site: Site) -> None:
    run_id = _run()
    first = await site.open().publisher(run_id)
    stale = await site.open().publisher(run_id)  # both start after offset 0
    for i in range(3):
        first.send("custom", _payload(i))
    await first.flush()
    stale.send("custom", b"stale")
    stale.send("custom", b"stale too")
    await stale.flush()
    assert stale.refused == {1, 2}
    end = await stale.end(b"ended by the stale one")  # its offset 3 is taken: placed after
    assert end.seq == 4 and end.final
    again = await site.open().end(run_id, b"a second end")
    assert again == end  # a run keeps its first end
    got = await _collect(site.open(), run_id)
    assert [e.data for e in got] == [_payload(0), _payload(1), _payload(2),
                                     b"ended by the stale one"]


# -- the run-ended signal --------------------------------------------------------------------


async def test_the_run_ended_signal_wakes_every_waiter(site: Site) -> None:
    writer, waiters, other = site.open(), site.open(), site.open()
    run_id = _run()
    publisher = await writer.publisher(run_id)
    publisher.send("values", b"{}")
    await publisher.flush()
    waiting = [asyncio.ensure_future(waiters.wait_ended(run_id, WAIT)) for _ in range(20)]
    waiting.append(asyncio.ensure_future(other.wait_ended(run_id, WAIT)))
    await asyncio.sleep(0.1)
    assert not any(w.done() for w in waiting)
    assert await other.ended(run_id) is None
    ended = await publisher.end(b'{"status": "cancelled"}')
    assert await asyncio.gather(*waiting) == [ended] * 21
    assert await site.open().wait_ended(run_id, 0.5) == ended  # after the end: at once
    assert await other.ended(run_id) == ended


async def test_a_run_nobody_publishes_for_can_be_ended(site: Site) -> None:
    bus = site.open()
    run_id = _run()
    waiting = asyncio.ensure_future(site.open().wait_ended(run_id, WAIT))
    await asyncio.sleep(0.05)
    ended = await bus.end(run_id, b"swept")
    assert ended.seq == 1 and await waiting == ended


async def test_waiting_for_an_end_that_does_not_come_times_out(site: Site) -> None:
    with pytest.raises(TimeoutError):
        await site.open().wait_ended(_run(), 0.2)


# -- cancels ---------------------------------------------------------------------------------


async def test_a_cancel_reaches_every_listening_process(site: Site) -> None:
    sender, first, second = site.open(), site.open(), site.open()
    heard: dict[str, list[tuple[str, bytes | None]]] = {"first": [], "second": []}
    arrived = asyncio.Event()

    def hearing(name: str) -> Callable[[str, bytes | None], None]:
        def handler(run_id: str, data: bytes | None) -> None:
            heard[name].append((run_id, data))
            if all(len(v) == 3 for v in heard.values()):
                arrived.set()
        return handler

    await first.listen_cancels(hearing("first"))
    await second.listen_cancels(hearing("second"))
    long_reason = b"r" * 20_000
    await sender.cancel("run-a", b'{"kind": "user"}')
    await sender.cancel("run-b")
    await sender.cancel("run-c", long_reason)
    async with asyncio.timeout(WAIT):
        await arrived.wait()
    for got in heard.values():
        assert got[:2] == [("run-a", b'{"kind": "user"}'), ("run-b", None)]
        assert got[2][0] == "run-c" and got[2][1] in (long_reason, None)


async def test_closing_a_bus_ends_its_readers(site: Site) -> None:
    bus = site.open()
    run_id = _run()
    reading = asyncio.ensure_future(_collect(bus, run_id))
    await asyncio.sleep(0.05)
    await bus.aclose()
    assert await reading == []
    with pytest.raises(RuntimeError):
        bus.subscribe(run_id)
