"""The Postgres transport: a table for the events, `NOTIFY` for live delivery and cancels.

- **Storage**: every event is a row of `bus_events` (UNLOGGED; see `_sql`), so a reconnecting
  reader resumes from its offset and a late one reads the history it asks for.
- **Live delivery**: batches are stored and notified in one statement, the batches of every
  run queued together in one (`tether.bus.batching`: one commit for them all); the
  notification on the run's channel carries the events themselves,
  packed into as few payloads as fit (see `payloads`), or only a reference for an event too
  large for one. A process listens on one connection (`Listener`) for the channels of every
  run it watches.
- **Channels** are named from a hash of the schema and the run id (Postgres channel names
  are database-wide and at most 63 bytes), so deployments in two schemas of one database do
  not hear each other.
- **Retention**: the events of a run are deleted `retain` seconds after its run-ended signal
  (`trim`, also run by the transport itself at most once a minute after an end).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from tether.bus.batching import Batch, WriteQueue
from tether.bus.event import BusEvent, cancel_message, parse_cancel
from tether.bus.postgres import _sql
from tether.bus.postgres.listener import Listener
from tether.bus.postgres.payloads import PAYLOAD_LIMIT, pack, unpack
from tether.bus.transport import Sink
from tether.checkpoint.postgres.connection import Database, connection_kwargs
from tether.checkpoint.postgres.ops import Op, Query

logger = logging.getLogger("tether.bus")

TRIM_EVERY = 60.0
"""Seconds between the trims an end sets off."""

STATEMENT_EVENTS = 2_000
"""Events one append statement takes at most (the batches beyond go in the next)."""


class PostgresTransport:
    """Runs' events in Postgres (see the module docstring).

    Args:
        db: the connections to use (a store's: `PostgresSaver(...).db`, or `open()`'s own).
        schema: the schema of the table (None: the connection's `search_path`).
        retain: seconds a run's events are kept after its run-ended signal.
        application_name: the name of the `LISTEN` connection in `pg_stat_activity`.
        owned: close `db` with the transport.
    """

    def __init__(self, db: Database, *, schema: str | None = None, retain: float = 300.0,
                 application_name: str = "tether-bus", owned: bool = False) -> None:
        self._db = db
        self.schema = schema
        self.retain = retain
        self._owned = owned
        self._sink: Sink | None = None
        self._scope: str | None = None
        self._setup: asyncio.Task[str] | None = None
        # Invariant: _channels maps the channel of every watched run to the run.
        self._channels: dict[str, str] = {}
        self._listener = Listener(lambda: db.aconnect(application_name),
                                  on_notify=self._notified, on_resync=self._resync)
        self._trimmed_at = time.monotonic()
        self._trimming: asyncio.Task[Any] | None = None
        self.writes = WriteQueue(self._write, limit=STATEMENT_EVENTS)
        """The process's appends, written together (see `tether.bus.batching`)."""

    @classmethod
    def open(cls, conninfo: str, *, schema: str | None = None, retain: float = 300.0,
             async_size: int = 4, connect_timeout: float = 10.0,
             application_name: str = "tether-bus") -> PostgresTransport:
        """A transport with connections of its own.

        Raises:
            StoreError: the server cannot be reached.
        """
        kwargs = connection_kwargs(conninfo, schema=schema, application_name=application_name,
                                   prepare_threshold=5)
        db = Database(conninfo, kwargs, min_size=1, max_size=2, async_size=async_size,
                      connect_timeout=connect_timeout)
        return cls(db, schema=schema, retain=retain, application_name=application_name,
                   owned=True)

    def attach(self, sink: Sink) -> None:
        """See `Transport.attach`."""
        self._sink = sink

    def channel(self, run_id: str) -> str:
        """The `NOTIFY` channel of a run (after the first call that reached the database)."""
        return "tether_bus_" + _digest(f"{self._scope}\x00{run_id}", 12)

    @property
    def cancel_channel(self) -> str:
        """The `NOTIFY` channel of cancel messages."""
        return "tether_bus_cancel_" + _digest(str(self._scope), 8)

    # -- writing and reading -------------------------------------------------------------------

    async def append(self, run_id: str, events: Sequence[BusEvent]) -> set[int]:
        """See `Transport.append`: in one statement with the batches of other runs that are
        waiting for the same write (see the module docstring).

        Raises:
            psycopg.Error: the database cannot be reached or refused the write.

        Cancellation:
            As `Transport.append` (one statement: committed whole or not at all); the batch
            may still be written after the caller has gone.
        """
        await self._ready()
        return await self.writes.append(run_id, events)

    async def _write(self, batches: Sequence[Batch]) -> list[set[int] | Exception]:
        runs, seqs, names, datas = [], [], [], []
        senders, channels, payloads = [], [], []
        for batch in batches:
            for event in batch.events:
                runs.append(batch.run_id)
                seqs.append(event.seq)
                names.append(event.event)
                datas.append(event.data or b"")
            channel = self.channel(batch.run_id)
            for payload in pack(batch.events):
                senders.append(batch.run_id)
                channels.append(channel)
                payloads.append(payload)
        rows = await self._db.arun(_fetch(Query(_sql.APPEND, {
            "runs": runs, "seqs": seqs, "events": names, "datas": datas, "senders": senders,
            "channels": channels, "payloads": payloads}, "all")))
        stored: dict[str, set[int]] = {}
        for run_id, seq in rows:
            stored.setdefault(run_id, set()).add(seq)
        if any(event.final for batch in batches for event in batch.events):
            self._trim_soon()
        return [{e.seq for e in batch.events} - stored.get(batch.run_id, set())
                for batch in batches]

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        """See `Transport.read`.

        Cancellation:
            Safe: it only reads.
        """
        await self._ready()
        rows = await self._db.arun(_fetch(Query(_sql.READ, {
            "run_id": run_id, "after": after, "upto": upto, "limit": limit}, "all")))
        return [BusEvent(seq, event, bytes(data)) for seq, event, data in rows]

    async def last(self, run_id: str) -> BusEvent | None:
        """See `Transport.last`.

        Cancellation:
            Safe: it only reads.
        """
        await self._ready()
        row = await self._db.arun(_fetch(Query(_sql.LAST, {"run_id": run_id})))
        return None if row is None else BusEvent(row[0], row[1], bytes(row[2]))

    # -- live delivery -------------------------------------------------------------------------

    async def watch(self, run_id: str, after: int) -> int | None:
        """See `Transport.watch`: listens on the run's channel, then the reader reads the
        table (None: everything after `after`).

        Cancellation:
            Safe: the channel stays asked for until `unwatch`.
        """
        await self._ready()
        channel = self.channel(run_id)
        self._channels[channel] = run_id
        await self._listener.listen(channel)
        return None

    def unwatch(self, run_id: str) -> None:
        """See `Transport.unwatch`."""
        channel = self.channel(run_id)
        if self._channels.pop(channel, None) is not None:
            self._listener.unlisten(channel)

    def _notified(self, channel: str, payload: str) -> None:
        if self._sink is None:
            return
        if channel == self.cancel_channel:
            self._sink.cancelled(payload)
            return
        run_id = self._channels.get(channel)
        if run_id is not None:
            events = unpack(payload)
            if events:
                self._sink.deliver(run_id, events)

    def _resync(self) -> None:
        if self._sink is not None:
            self._sink.resync()

    # -- cancels -----------------------------------------------------------------------------

    async def send_cancel(self, message: str) -> None:
        """See `Transport.send_cancel` (`NOTIFY`; a message too large for a payload goes
        without its data: the receiver reads the durable request).

        Cancellation:
            Safe to retry.
        """
        await self._ready()
        if len(message.encode()) > PAYLOAD_LIMIT:
            parsed = parse_cancel(message)
            if parsed is None:
                raise ValueError("not a cancel message")
            message = cancel_message(parsed[0], None)
        await self._db.arun(_fetch(Query(_sql.NOTIFY, {"channel": self.cancel_channel,
                                                      "payload": message})))

    async def listen_cancels(self) -> None:
        """See `Transport.listen_cancels` (on the process's one `LISTEN` connection).

        Cancellation:
            Safe: call it again.
        """
        await self._ready()
        await self._listener.listen(self.cancel_channel)

    # -- upkeep --------------------------------------------------------------------------------

    async def trim(self) -> int:
        """Delete the events of runs whose end is older than `retain` seconds; how many.

        Cancellation:
            One statement: what was not deleted is deleted next time.
        """
        await self._ready()
        self._trimmed_at = time.monotonic()
        (count,) = await self._db.arun(_fetch(Query(_sql.TRIM, {"retain": self.retain})))
        return int(count)

    def _trim_soon(self) -> None:
        if time.monotonic() - self._trimmed_at < TRIM_EVERY:
            return
        if self._trimming is None or self._trimming.done():
            self._trimmed_at = time.monotonic()
            self._trimming = asyncio.get_running_loop().create_task(self._trim_logged())

    async def _trim_logged(self) -> None:
        try:
            await self.trim()
        except Exception:  # retention is upkeep: the next end tries again
            logger.exception("bus: trimming ended runs' events failed")

    async def _ready(self) -> str:
        """Make the table (once per process) and learn the schema the channels are named by.

        Cancellation:
            Shielded: the setup finishes for the next caller.
        """
        if self._scope is not None:
            return self._scope
        failed = self._setup is not None and self._setup.done() and (
            self._setup.cancelled() or self._setup.exception() is not None)
        if self._setup is None or failed:
            self._setup = asyncio.get_running_loop().create_task(self._make())
        self._scope = await asyncio.shield(self._setup)
        return self._scope

    async def _make(self) -> str:
        schema = () if self.schema is None else (_sql.create_schema(self.schema),)
        setup = (_sql.SETUP_LOCK, *schema, *_sql.SETUP)
        await self._db.arun(_statements(setup), transaction=True)
        (scope,) = await self._db.arun(_fetch(Query(_sql.CURRENT_SCHEMA)))
        return str(scope)

    async def aclose(self) -> None:
        """Stop listening; close the connections when they are the transport's own.

        Cancellation:
            Safe to retry.
        """
        await self._listener.aclose()
        await self.writes.aclose()  # what is queued is written first
        if self._trimming is not None:
            self._trimming.cancel()
            await asyncio.wait({self._trimming})
        self._channels.clear()
        if self._owned:
            await self._db.aclose()


def _fetch(query: Query) -> Op[Any]:
    rows = yield query
    return rows


def _statements(statements: Sequence[str]) -> Op[None]:
    for statement in statements:
        yield Query(statement, None, "none")


def _digest(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


__all__ = ["TRIM_EVERY", "PostgresTransport"]
