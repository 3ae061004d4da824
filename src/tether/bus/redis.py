"""The Redis transport: one Redis Stream per run, one reader per process, pub/sub for cancels.

- **A run's stream** is the key `<prefix>:run:<run_id>`; event `seq` is stored under the entry
  id `<seq>-0`, so Redis itself refuses an offset that is already taken (a retried or stale
  publish) and a range read by offset is an `XRANGE`.
- **Live delivery**: one task per process runs a blocking `XREAD` over every watched run's
  stream at once (from the last offset it delivered for each), plus a private wake stream that
  a new watch writes to, so the read restarts with the new run at once.
- **Retention**: each write trims the stream to about `maxlen` entries (`MAXLEN ~`) and sets
  its time to live: `idle_ttl` while the run goes on, `retain` once the run-ended signal is in.
  A reader that comes back after the trim gets what is left; the durable records answer the
  rest.
- **Cancels**: `PUBLISH <prefix>:cancel`; one pub/sub connection per process listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tether.bus.event import BusEvent
from tether.bus.transport import Sink

logger = logging.getLogger("tether.bus")

READ_COUNT = 1000
"""Entries per stream per `XREAD`."""

BLOCK_MS = 2_000
"""How long one `XREAD` waits for news, in milliseconds (then it is sent again: a connection
that died without a word is found out). Below redis-py's default socket timeout (5 s), which
would otherwise cut an idle read just as Redis answers it."""

SUBSCRIBE_TIMEOUT = 10.0
"""Seconds `listen_cancels` waits for Redis to confirm the subscription."""

RETRY_FIRST, RETRY_MAX = 0.05, 5.0
"""Seconds before reading again after a lost connection, doubling up to the maximum."""

_TAKEN = "equal or smaller"
"""What Redis says when an `XADD` id is not above the stream's last one."""

_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisTransport:
    """Runs' events in Redis Streams (see the module docstring).

    Args:
        url: the Redis URL (`redis://host:6379/0`).
        prefix: the start of every key and channel (several deployments can share a Redis).
        maxlen: entries kept per run, about (`MAXLEN ~`).
        retain: seconds a run's stream is kept after its run-ended signal.
        idle_ttl: seconds a run's stream is kept after its last event when no end comes.
        client: an existing `redis.asyncio.Redis` (then not closed by `aclose`).
    """

    def __init__(self, url: str | None = None, *, prefix: str = "tether", maxlen: int = 10_000,
                 retain: float = 300.0, idle_ttl: float = 86_400.0,
                 client: aioredis.Redis | None = None) -> None:
        if client is None and url is None:
            raise ValueError("give a Redis URL or a client")
        self._client: aioredis.Redis = client or aioredis.Redis.from_url(str(url))
        self._owned = client is None
        self.prefix = prefix
        self.maxlen = maxlen
        self.retain = max(1, round(retain))
        self.idle_ttl = max(1, round(idle_ttl))
        self._sink: Sink | None = None
        # Invariant: _cursors has the offset up to which each watched run was delivered live;
        # the reader reads each watched stream after it.
        self._cursors: dict[str, int] = {}
        self._keys: dict[bytes, str] = {}
        self._wake_key = f"{prefix}:wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._reader: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        # Checked by the loops: redis-py can turn the cancel of a read into a ConnectionError,
        # which they would otherwise retry.
        self._closing = False

    def key(self, run_id: str) -> str:
        """The stream key of a run."""
        return f"{self.prefix}:run:{run_id}"

    @property
    def cancel_channel(self) -> str:
        """The pub/sub channel of cancel messages."""
        return f"{self.prefix}:cancel"

    def attach(self, sink: Sink) -> None:
        """See `Transport.attach`."""
        self._sink = sink

    # -- writing and reading -----------------------------------------------------------------

    async def append(self, run_id: str, events: Sequence[BusEvent]) -> set[int]:
        """See `Transport.append`: one pipelined round trip.

        Raises:
            redis.exceptions.RedisError: Redis cannot be reached or refused the write.

        Cancellation:
            As `Transport.append`: a retry's events come back refused.
        """
        key = self.key(run_id)
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(key, {"e": event.event, "d": event.data or b""}, id=f"{event.seq}-0",
                      maxlen=self.maxlen, approximate=True)
        ended = any(event.final for event in events)
        pipe.expire(key, self.retain if ended else self.idle_ttl)
        answers = await pipe.execute(raise_on_error=False)
        refused = set()
        for event, answer in zip(events, answers, strict=False):
            if isinstance(answer, ResponseError):
                if _TAKEN not in str(answer):
                    raise answer
                refused.add(event.seq)
        return refused

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        """See `Transport.read` (`XRANGE`).

        Cancellation:
            Safe: it only reads.
        """
        top = "+" if upto is None else f"{upto}-0"
        if upto is not None and upto <= after:
            return []
        entries: Any = await self._client.xrange(self.key(run_id), min=f"{after + 1}-0",
                                                 max=top, count=limit)
        return [_event(entry_id, fields) for entry_id, fields in entries or ()]

    async def last(self, run_id: str) -> BusEvent | None:
        """See `Transport.last` (`XREVRANGE ... COUNT 1`).

        Cancellation:
            Safe: it only reads.
        """
        entries: Any = await self._client.xrevrange(self.key(run_id), count=1)
        return _event(*entries[0]) if entries else None

    # -- live delivery -------------------------------------------------------------------------

    async def watch(self, run_id: str, after: int) -> int | None:
        """See `Transport.watch`: a new run is read from `after` by this process's reader.

        Cancellation:
            Safe: the run is watched already; the reader picks it up at its next read.
        """
        known = self._cursors.get(run_id)
        if known is not None:
            return known
        self._cursors[run_id] = after
        self._keys[self.key(run_id).encode()] = run_id
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(
                self._read_loop(), name="tether-bus-redis-reader")
        else:
            with contextlib.suppress(*_DOWN):  # the reader takes the run in at its next read
                await self._wake()
        return after

    def unwatch(self, run_id: str) -> None:
        """See `Transport.unwatch` (the reader drops it at its next read)."""
        self._cursors.pop(run_id, None)
        self._keys.pop(self.key(run_id).encode(), None)

    async def _wake(self) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1, approximate=False)
        pipe.expire(self._wake_key, self.idle_ttl)
        await pipe.execute()

    async def _read_loop(self) -> None:
        delay = RETRY_FIRST
        while not self._closing:
            streams: dict[Any, Any] = {self.key(r): f"{c}-0" for r, c in self._cursors.items()}
            streams[self._wake_key] = self._wake_cursor
            try:
                answer: Any = await self._client.xread(streams, count=READ_COUNT,
                                                       block=BLOCK_MS)
            except _DOWN as exc:
                logger.warning("bus: Redis read failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            for key, entries in answer or ():
                self._take(key, entries)

    def _take(self, key: bytes, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        if key == self._wake_key.encode():
            self._wake_cursor = entries[-1][0].decode()
            return
        run_id = self._keys.get(key)
        cursor = self._cursors.get(run_id) if run_id is not None else None
        if run_id is None or cursor is None:
            return  # unwatched while the read was in flight
        events = [event for event in (_event(i, f) for i, f in entries) if event.seq > cursor]
        if events:
            self._cursors[run_id] = events[-1].seq
            if self._sink is not None:
                self._sink.deliver(run_id, events)

    # -- cancels -----------------------------------------------------------------------------

    async def send_cancel(self, message: str) -> None:
        """See `Transport.send_cancel` (`PUBLISH`).

        Cancellation:
            Safe to retry.
        """
        await self._client.publish(self.cancel_channel, message)

    async def listen_cancels(self) -> None:
        """See `Transport.listen_cancels` (`SUBSCRIBE` on a connection of its own).

        Cancellation:
            Safe: call it again.
        """
        if self._pubsub is None:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.cancel_channel)
                await _confirmed(pubsub)
            except BaseException:
                with contextlib.suppress(*_DOWN):
                    await pubsub.aclose()
                raise
            self._pubsub = pubsub
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(
                self._listen_loop(), name="tether-bus-redis-cancels")

    async def _listen_loop(self) -> None:
        delay, lost = RETRY_FIRST, False
        while not self._closing:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except _DOWN as exc:
                if not lost:
                    logger.warning("bus: Redis cancel channel lost (%s); reconnecting", exc)
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if lost and self._sink is not None:
                # Reconnected (redis-py subscribes again): cancels sent meanwhile are lost.
                self._sink.resync()
            lost, delay = False, RETRY_FIRST
            if message is not None and message.get("type") == "message" and self._sink:
                data = message["data"]
                self._sink.cancelled(data.decode() if isinstance(data, bytes) else str(data))

    # -- upkeep --------------------------------------------------------------------------------

    async def trim(self) -> int:
        """Nothing to do: streams are trimmed as they are written and expire by themselves.

        Cancellation:
            Nothing to cancel.
        """
        return 0

    async def aclose(self) -> None:
        """Stop the reader and the cancel listener; close the connections this made.

        Cancellation:
            Safe to retry.
        """
        self._closing = True
        tasks = {task for task in (self._reader, self._listener) if task is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._reader = self._listener = None
        self._cursors.clear()
        self._keys.clear()
        if self._pubsub is not None:
            with contextlib.suppress(*_DOWN):
                await self._pubsub.aclose()
            self._pubsub = None
        with contextlib.suppress(*_DOWN):
            await self._client.delete(self._wake_key)
        if self._owned:
            await self._client.aclose()


async def _confirmed(pubsub: Any) -> None:
    """Wait for Redis to confirm a subscription: a message published after it arrives."""
    async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
        while True:
            message = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)
            if message is not None and message.get("type") == "subscribe":
                return


def _event(entry_id: bytes, fields: dict[bytes, bytes]) -> BusEvent:
    # Entries are read with bytes responses (the client does not decode).
    return BusEvent(int(entry_id.partition(b"-")[0]), fields[b"e"].decode(), fields[b"d"])


__all__ = ["RedisTransport"]
