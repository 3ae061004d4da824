"""What each bus backend does beyond the shared suite: Redis retention (time to live after the
end, trimming to about `maxlen`) and its pub/sub connection surviving a kill; Postgres
trimming ended runs, keeping schemas apart, and a lost LISTEN connection losing nothing; on
both, the events many runs publish in one turn going out in one round trip (and, on Redis,
reaching a reader that watches many runs without a command of its own)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from conformance.conftest import drop_redis_keys, fresh_schema, redis_prefix, redis_url
from tether.bus import BusEvent, StreamBus

pytestmark = pytest.mark.anyio
WAIT = 20.0


async def _collect(bus: StreamBus, run_id: str) -> list[BusEvent]:
    async with asyncio.timeout(WAIT), bus.subscribe(run_id) as events:
        return [event async for event in events]


async def _publish(bus: StreamBus, run_id: str, start: int, stop: int) -> None:
    publisher = await bus.publisher(run_id)
    for i in range(start, stop):
        publisher.send("custom", str(i).encode())
    await publisher.flush()


RUNS = 50


async def _burst(writer: StreamBus, reader: StreamBus, round_trips: list[int]) -> None:
    """Every one of `RUNS` runs publishes three events in the same turn, then its end; each
    reader gets its run's events, in order, none lost. `round_trips` counts the writer's
    writes (the caller hooks it): one for the whole turn, one for the ends."""
    runs = [f"burst-{i}" for i in range(RUNS)]
    readers = [asyncio.ensure_future(_collect(reader, run)) for run in runs]
    publishers = [await writer.publisher(run) for run in runs]
    await _publish(writer, "warm-up", 0, 1)  # the first write may load what the backend needs
    await asyncio.sleep(0.2)  # the readers are listening
    round_trips.clear()
    for publisher in publishers:
        for i in range(3):
            publisher.send("custom", f"{publisher.run_id}:{i}".encode())
    await asyncio.gather(*(publisher.flush() for publisher in publishers))
    assert len(round_trips) == 1
    await asyncio.gather(*(publisher.end(b"done") for publisher in publishers))
    assert len(round_trips) == 2
    for run, reading in zip(runs, readers, strict=True):
        got = await reading
        assert [e.seq for e in got] == [1, 2, 3, 4] and got[-1].final
        assert [e.data for e in got[:3]] == [f"{run}:{i}".encode() for i in range(3)]


# -- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
async def redis_site() -> AsyncIterator[tuple[str, str]]:
    url, prefix = redis_url(), redis_prefix()
    try:
        yield url, prefix
    finally:
        drop_redis_keys(url, prefix)


@pytest.mark.redis
async def test_a_redis_stream_lives_for_idle_ttl_and_then_retain_after_the_end(
        redis_site: tuple[str, str]) -> None:
    import redis.asyncio as aioredis

    from tether.bus.redis import RedisTransport

    url, prefix = redis_site
    transport = RedisTransport(url, prefix=prefix, retain=7, idle_ttl=3600)
    async with StreamBus(transport) as bus:
        publisher = await bus.publisher("r1")
        publisher.send("custom", b"a")
        await publisher.flush()
        client = aioredis.Redis.from_url(url)
        try:
            assert 3590 <= await client.ttl(transport.key("r1")) <= 3600
            await publisher.end(b"done")
            assert 0 < await client.ttl(transport.key("r1")) <= 7
        finally:
            await client.aclose()


@pytest.mark.redis
async def test_a_redis_stream_is_trimmed_to_about_maxlen_and_readers_pass_the_hole(
        redis_site: tuple[str, str]) -> None:
    import redis.asyncio as aioredis

    from tether.bus.redis import RedisTransport

    url, prefix = redis_site
    transport = RedisTransport(url, prefix=prefix, maxlen=100)
    async with StreamBus(transport) as bus:
        await _publish(bus, "r1", 0, 2000)
        await (await bus.publisher("r1")).end(b"done")
        client = aioredis.Redis.from_url(url)
        try:
            kept = await client.xlen(transport.key("r1"))
        finally:
            await client.aclose()
        assert 100 <= kept < 400
        got = await _collect(bus, "r1")
    seqs = [e.seq for e in got]
    assert seqs == sorted(seqs) and seqs[-1] == 2001 and got[-1].final
    assert seqs[-101:] == list(range(1901, 2002))


@pytest.mark.redis
async def test_the_redis_live_channel_survives_a_killed_connection(
        redis_site: tuple[str, str]) -> None:
    import redis.asyncio as aioredis

    from tether.bus.redis import RedisTransport

    url, prefix = redis_site
    name = f"tether-test-{uuid.uuid4().hex[:8]}"
    reader_client = aioredis.Redis.from_url(url, client_name=name)
    admin = aioredis.Redis.from_url(url)
    try:
        async with StreamBus(RedisTransport(url, prefix=prefix)) as writer, \
                StreamBus(RedisTransport(client=reader_client, prefix=prefix)) as reader:
            reading = asyncio.ensure_future(_collect(reader, "r1"))
            await _publish(writer, "r1", 0, 10)
            killed = 0
            async with asyncio.timeout(WAIT):
                while not killed:
                    for client in await admin.client_list():
                        if client.get("name") == name and client.get("cmd") == "subscribe":
                            await admin.client_kill_filter(_id=client["id"])
                            killed += 1
                    await asyncio.sleep(0.01)
            await _publish(writer, "r1", 10, 20)
            await (await writer.publisher("r1")).end(b"done")
            got = await reading
    finally:
        await reader_client.aclose()
        await admin.aclose()
    assert [e.seq for e in got] == list(range(1, 22))
    assert [e.data for e in got[:-1]] == [str(i).encode() for i in range(20)]


@pytest.mark.redis
async def test_redis_events_of_many_runs_in_one_turn_go_in_one_round_trip(
        redis_site: tuple[str, str]) -> None:
    from tether.bus.redis import RedisTransport

    url, prefix = redis_site
    writer_transport = RedisTransport(url, prefix=prefix)
    pipelines: list[int] = []
    make_pipeline = writer_transport._client.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        pipelines.append(1)
        return make_pipeline(*args, **kwargs)

    writer_transport._client.pipeline = counted  # type: ignore[method-assign]
    async with StreamBus(writer_transport) as writer, \
            StreamBus(RedisTransport(url, prefix=prefix)) as reader:
        await _burst(writer, reader, pipelines)


@pytest.mark.redis
async def test_a_silent_redis_pub_sub_connection_is_found_out_and_the_runs_read_again(
        redis_site: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import tether.bus.redis as redis_bus

    url, prefix = redis_site
    monkeypatch.setattr(redis_bus, "IDLE_CHECK", 0.05)
    async with StreamBus(redis_bus.RedisTransport(url, prefix=prefix)) as writer, \
            StreamBus(redis_bus.RedisTransport(url, prefix=prefix)) as reader:
        reading = asyncio.ensure_future(_collect(reader, "r1"))
        await _publish(writer, "r1", 0, 3)
        transport: Any = reader.transport
        while transport._pubsub is None or transport._listener is None:
            await asyncio.sleep(0.01)
        resyncs: list[int] = []
        resync = transport._sink.resync
        transport._sink.resync = lambda: (resyncs.append(1), resync())

        async def unanswered() -> None:  # a connection that died without a word
            return None

        transport._pubsub.ping = unanswered
        async with asyncio.timeout(WAIT):
            while not resyncs:
                await asyncio.sleep(0.01)
        await _publish(writer, "r1", 3, 6)
        await (await writer.publisher("r1")).end(b"done")
        got = await reading
    assert [e.seq for e in got] == list(range(1, 8))


@pytest.mark.redis
async def test_a_redis_offset_refused_is_not_sent_live(redis_site: tuple[str, str]) -> None:
    import redis.asyncio as aioredis

    from tether.bus.redis import RedisTransport

    url, prefix = redis_site
    transport = RedisTransport(url, prefix=prefix)
    listener = aioredis.Redis.from_url(url)
    pubsub = listener.pubsub()
    try:
        await pubsub.subscribe(transport.live_channel)
        assert await transport.append("r1", [BusEvent(1, "custom", b"first")]) == set()
        refused = await transport.append("r1", [BusEvent(1, "custom", b"stale"),
                                                BusEvent(2, "custom", b"second")])
        assert refused == {1}
        heard = []
        async with asyncio.timeout(WAIT):
            while len(heard) < 2:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    heard.append(message["data"])
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await transport.aclose()
    assert heard == [b"r1\n1 6 5\ncustomfirst", b"r1\n2 6 6\ncustomsecond"]


@pytest.mark.redis
async def test_a_redis_process_that_only_listens_for_cancels_does_not_hear_events(
        redis_site: tuple[str, str]) -> None:
    import redis.asyncio as aioredis

    from tether.bus.redis import RedisTransport

    url, prefix = redis_site
    admin = aioredis.Redis.from_url(url)
    try:
        async with StreamBus(RedisTransport(url, prefix=prefix)) as worker:
            transport = worker.transport
            await worker.listen_cancels(lambda run_id, data: None)
            live, cancels = transport.live_channel, transport.cancel_channel  # type: ignore[attr-defined]
            assert dict(await admin.pubsub_numsub(live, cancels)) == {
                live.encode(): 0, cancels.encode(): 1}
            reading = asyncio.ensure_future(_collect(worker, "r1"))  # a reader: it hears them
            async with asyncio.timeout(WAIT):
                while dict(await admin.pubsub_numsub(live))[live.encode()] != 1:
                    await asyncio.sleep(0.01)
            await _publish(worker, "r1", 0, 1)
            await (await worker.publisher("r1")).end(b"done")
            assert [e.seq for e in await reading] == [1, 2]
    finally:
        await admin.aclose()


@pytest.mark.redis
async def test_more_redis_readers_starting_at_once_than_the_pool_has_connections_wait_for_one(
        redis_site: tuple[str, str]) -> None:
    from tether.bus.redis import POOL_SIZE, RedisTransport

    url, prefix = redis_site
    runs = [f"many-{i}" for i in range(POOL_SIZE * 5)]
    async with StreamBus(RedisTransport(url, prefix=prefix)) as writer, \
            StreamBus(RedisTransport(url, prefix=prefix)) as reader:
        for run in runs:
            await _publish(writer, run, 0, 1)
            await (await writer.publisher(run)).end(b"done")
        found = await asyncio.gather(*(_collect(reader, run) for run in runs))
    assert all([e.seq for e in got] == [1, 2] for got in found)


@pytest.mark.redis
async def test_a_redis_reader_of_many_runs_sends_no_command_for_live_events(
        redis_site: tuple[str, str]) -> None:
    import redis.asyncio as aioredis

    from tether.bus.redis import RedisTransport

    url, prefix = redis_site
    reader_client = aioredis.Redis.from_url(url)
    commands: list[object] = []
    execute = reader_client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        commands.append(args[0])
        return await execute(*args, **options)

    reader_client.execute_command = counted  # type: ignore[method-assign]
    try:
        async with StreamBus(RedisTransport(url, prefix=prefix)) as writer, \
                StreamBus(RedisTransport(client=reader_client, prefix=prefix)) as reader:
            readers = [asyncio.ensure_future(_collect(reader, f"w{i}")) for i in range(RUNS)]
            live = asyncio.ensure_future(_collect(reader, "live"))
            await asyncio.sleep(0.2)  # every reader has read the (empty) history
            before = len(commands)
            await _publish(writer, "live", 0, 20)
            await (await writer.publisher("live")).end(b"done")
            got = await live
            assert len(commands) == before  # the 21 events came on the pub/sub connection
            for i in range(RUNS):
                await (await writer.publisher(f"w{i}")).end(b"done")
            await asyncio.gather(*readers)
    finally:
        await reader_client.aclose()
    assert [e.data for e in got[:-1]] == [str(i).encode() for i in range(20)]


# -- Postgres ------------------------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    with fresh_schema() as found:
        yield found


def _pg_bus(dsn: str, schema: str, name: str = "tether-bus", **options: Any) -> StreamBus:
    from tether.bus.postgres import PostgresTransport

    return StreamBus(PostgresTransport.open(dsn, schema=schema, application_name=name,
                                            **options))


@pytest.mark.postgres
async def test_postgres_trim_forgets_ended_runs_only(pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    async with _pg_bus(dsn, schema, retain=0) as bus:
        await _publish(bus, "ended", 0, 5)
        await (await bus.publisher("ended")).end(b"done")
        await _publish(bus, "going", 0, 3)
        assert await bus.trim() == 6
        assert [e.seq for e in await bus.transport.read("going", 0, None, 10)] == [1, 2, 3]
        assert await bus.transport.read("ended", 0, None, 10) == []


@pytest.mark.postgres
async def test_postgres_buses_of_two_schemas_do_not_hear_each_other(
        pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    with fresh_schema() as (_dsn, other):
        async with _pg_bus(dsn, schema) as ours, _pg_bus(dsn, other) as theirs:
            reading = asyncio.ensure_future(_collect(ours, "same-id"))
            await asyncio.sleep(0.1)
            await _publish(theirs, "same-id", 0, 5)
            await (await theirs.publisher("same-id")).end(b"theirs")
            await _publish(ours, "same-id", 100, 102)
            await (await ours.publisher("same-id")).end(b"ours")
            got = await reading
    assert [e.data for e in got] == [b"100", b"101", b"ours"]


@pytest.mark.postgres
async def test_a_lost_postgres_listen_connection_loses_nothing(
        pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    name = f"tether-test-{uuid.uuid4().hex[:8]}"
    async with _pg_bus(dsn, schema) as writer, _pg_bus(dsn, schema, name) as reader:
        reading = asyncio.ensure_future(_collect(reader, "r1"))
        await _publish(writer, "r1", 0, 10)
        async with asyncio.timeout(WAIT):
            while not _terminate_listener(dsn, name):
                await asyncio.sleep(0.01)
        await _publish(writer, "r1", 10, 20)  # sent while the reader is reconnecting
        await (await writer.publisher("r1")).end(b"done")
        got = await reading
    assert [e.seq for e in got] == list(range(1, 22))
    assert [e.data for e in got[:-1]] == [str(i).encode() for i in range(20)]


@pytest.mark.postgres
async def test_postgres_events_of_many_runs_in_one_turn_go_in_one_statement(
        pg_schema: tuple[str, str]) -> None:
    dsn, schema = pg_schema
    async with _pg_bus(dsn, schema) as writer, _pg_bus(dsn, schema) as reader:
        statements: list[int] = []
        db = writer.transport._db  # type: ignore[attr-defined]
        run = db.arun

        async def counted(*args: Any, **kwargs: Any) -> Any:
            statements.append(1)
            return await run(*args, **kwargs)

        db.arun = counted
        await _burst(writer, reader, statements)


def _terminate_listener(dsn: str, name: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND query LIKE 'LISTEN%%'", (name,)).fetchall()
    return len(rows)
