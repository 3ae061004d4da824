"""`StreamBus`: how a run's events, its end and cancel requests cross processes.

Publishers (the worker driving a run) number each event of a run; subscribers (the API servers
streaming it) read them from any offset, live, in order, each once, and end with the run-ended
signal. Cancel messages go to every process that listens. The backend is a `Transport`:
Redis Streams (`open_bus("redis://...")`) or Postgres `LISTEN/NOTIFY` with a table
(`open_bus("postgresql://...")`). The bus is a fast path: the durable run row stays the truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tether.bus.event import BusEvent, cancel_message
from tether.bus.publisher import Publisher, end_run
from tether.bus.router import CancelHandler, Router
from tether.bus.subscription import Subscription
from tether.bus.transport import Transport


class StreamBus:
    """A bus over one transport, for one process and one event loop.

    Args:
        transport: the backend (`RedisTransport`, `PostgresTransport`, `MemoryTransport`).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._router = Router(transport)
        self._closed = False

    # -- run streams ------------------------------------------------------------------------

    async def publisher(self, run_id: str, *, fresh: bool = False) -> Publisher:
        """A publisher for the run's events, numbered after the last one on the bus (a
        worker taking a run over continues where the previous one stopped). With `fresh`
        the caller knows that nothing was ever published for the run (a worker's first
        claim of it): numbering starts at the first offset without reading the bus, which
        saves a round trip per run at every run's start.

        Cancellation:
            Safe: it only reads.
        """
        if fresh:
            return Publisher(self.transport, run_id, 0)
        last = await self.transport.last(run_id)
        return Publisher(self.transport, run_id, last.seq if last is not None else 0)

    def subscribe(self, run_id: str, after: int = 0) -> Subscription:
        """The run's events after offset `after` (0: all that are kept), live; iterate it
        (inside `async with`). It ends after the run-ended signal, which it yields last.

        Raises:
            ValueError: a negative offset.
        """
        if self._closed:
            raise RuntimeError("the bus is closed")
        return Subscription(self._router, run_id, after)

    async def last(self, run_id: str) -> BusEvent | None:
        """The run's last event on the bus (None: none, or removed by retention).

        Cancellation:
            Safe: it only reads.
        """
        return await self.transport.last(run_id)

    async def ended(self, run_id: str) -> BusEvent | None:
        """The run's run-ended signal if it has one on the bus (None also once retention has
        removed it: the durable record answers then).

        Cancellation:
            Safe: it only reads.
        """
        last = await self.transport.last(run_id)
        return last if last is not None and last.final else None

    async def wait_ended(self, run_id: str, timeout: float | None = None) -> BusEvent:  # noqa: ASYNC109
        """Wait for the run-ended signal; it at once if the run has it already.

        Raises:
            TimeoutError: `timeout` seconds passed first.

        Cancellation:
            Safe: only the waiting stops.
        """
        async with asyncio.timeout(timeout):
            last = await self.transport.last(run_id)
            if last is not None and last.final:
                return last
            async with self.subscribe(run_id, last.seq if last is not None else 0) as events:
                async for event in events:
                    if event.final:
                        return event
        raise RuntimeError("the bus was closed while waiting")

    async def end(self, run_id: str, data: bytes) -> BusEvent:
        """Put the run-ended signal after the run's last event, for a run no publisher of this
        process holds (a sweep, a cancel of a run nobody claimed). A run that has it already
        keeps its first.

        Cancellation:
            Safe to retry.
        """
        return await end_run(self.transport, run_id, data)

    # -- cancels ----------------------------------------------------------------------------

    async def cancel(self, run_id: str, data: bytes | None = None) -> None:
        """Tell every listening process that the run's cancel request is durable (`data`: the
        reason, encoded by the caller). Fire and forget: a process not listening right now
        finds the request in the durable record.

        Cancellation:
            Safe to retry.
        """
        await self.transport.send_cancel(cancel_message(run_id, data))

    async def listen_cancels(self, handler: CancelHandler,
                             on_resync: Callable[[], None] | None = None) -> None:
        """Call `handler(run_id, data)` for every cancel message from now on, on this loop;
        `on_resync()` after the listening connection was lost and is back (look at the
        durable state then). Returns once messages are being received.

        Cancellation:
            Safe: call it again (the handler is kept).
        """
        self._router.add_cancel_handler(handler, on_resync)
        await self.transport.listen_cancels()

    # -- upkeep ------------------------------------------------------------------------------

    async def trim(self) -> int:
        """Apply the retention policy now (see the transport); how many events went.

        Cancellation:
            Safe.
        """
        return await self.transport.trim()

    async def aclose(self) -> None:
        """End every subscription and close the transport.

        Cancellation:
            Safe to retry.
        """
        self._closed = True
        self._router.close()
        await self.transport.aclose()

    async def __aenter__(self) -> StreamBus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def bus_for(store: Any, redis: str | None = None, **options: Any) -> StreamBus:
    """The bus of a deployment whose system of record is `store` (a `PostgresSaver`): Redis
    Streams at `redis` when given (keys under `tether:<database>.<schema>`, so deployments on
    other schemas do not mix), else `LISTEN/NOTIFY` and a table in the store's own database and
    schema, on the store's connections.

    Raises:
        ValueError: `redis` is not a Redis URL.
    """
    schema = getattr(store, "schema", None)
    if redis is not None:
        if not redis.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{redis!r} is not a Redis URL (redis://host:6379/0)")
        return open_bus(redis, **{"prefix": f"tether:{_scope(store)}", **options})
    from tether.bus.postgres import PostgresTransport

    return StreamBus(PostgresTransport(store.db, schema=schema, **options))


def _scope(store: Any) -> str:
    """`database.schema` of the store's tables, as the database resolves them (the same for a
    server given a `search_path` in its URL and a worker given `--schema`)."""
    with store.db.connect() as conn:
        row = conn.execute("SELECT current_database(), current_schema()").fetchone()
    return f"{row[0]}.{row[1]}"


def open_bus(url: str, **options: Any) -> StreamBus:
    """A bus on the transport `url` names: `redis://` / `rediss://` / `unix://` (Redis Streams;
    needs the `redis` extra) or `postgresql://` / `postgres://` (LISTEN/NOTIFY; needs the
    `postgres` extra). `options` go to the transport (`prefix`, `schema`, `retain`...).

    Raises:
        ValueError: an unknown scheme.
    """
    if url.startswith(("redis://", "rediss://", "unix://")):
        from tether.bus.redis import RedisTransport

        return StreamBus(RedisTransport(url, **options))
    if url.startswith(("postgresql://", "postgres://")):
        from tether.bus.postgres import PostgresTransport

        return StreamBus(PostgresTransport.open(url, **options))
    raise ValueError(f"no bus for {url.split('://', 1)[0]!r} URLs: give redis://... or "
                     "postgresql://...")


__all__ = ["StreamBus", "bus_for", "open_bus"]
