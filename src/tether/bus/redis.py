"""The Redis transport: one Redis Stream per run, one reader per process, pub/sub for cancels.

- **A run's stream** is the key `<prefix>:run:<run_id>`; event `seq` is stored under the entry
  id `<seq>-0`, so Redis itself refuses an offset that is already taken (a retried or stale
  publish) and a range read by offset is an `XRANGE`.
- **Live delivery**: a batch is stored and published in one script: its `XADD`s, then one
  `PUBLISH` on the deployment's live channel `<prefix>:live` carrying the
  events it stored (an offset that was taken already is not published). Each process hears
  that channel, and the cancel channel, on one pub/sub connection, and hands the events of the
  runs it watches to the bus (the live channel only once it watches a run: a worker hears
  cancels alone); a new watch reads the run's stream from its offset once the channel is
  heard. A message costs a process the same whatever number of runs it watches (a
  blocking `XREAD` names every watched stream in each read, so it cost a read per new event
  times the watched runs). Every process hears every run's events: a message for a run it
  does not watch is dropped after a dictionary look-up. The scripts of every run queued
  together go in one pipeline (`tether.bus.batching`).
- **Retention**: each write trims the stream to about `maxlen` entries (`MAXLEN ~`) and sets
  its time to live: `idle_ttl` while the run goes on, `retain` once the run-ended signal is in.
  A reader that comes back after the trim gets what is left; the durable records answer the
  rest.
- **Cancels**: `PUBLISH <prefix>:cancel`, heard on the same pub/sub connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tether.bus.batching import Batch, WriteQueue
from tether.bus.event import BusEvent
from tether.bus.transport import Sink

logger = logging.getLogger("tether.bus")

IDLE_CHECK = 2.0
"""Seconds of silence on the pub/sub connection after which it is pinged, and how long the
ping may go unanswered before the connection counts as dead (and the runs are read again)."""

SUBSCRIBE_TIMEOUT = 10.0
"""Seconds a watch or `listen_cancels` waits for Redis to confirm the subscription."""

POOL_SIZE, POOL_WAIT = 32, 20.0
"""Connections of a transport's own client at most, and seconds a call waits for one."""

WRITE_EVENTS = 2_000
"""Events one pipelined write takes at most (the batches beyond go in the next)."""

RETRY_FIRST, RETRY_MAX = 0.05, 5.0
"""Seconds before reading again after a lost connection, doubling up to the maximum."""

APPEND_SCRIPT = """
local refused, live = {}, {ARGV[4], '\\n'}
for i = 5, #ARGV, 3 do
  local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0',
                            'e', ARGV[i + 1], 'd', ARGV[i + 2])
  if type(added) == 'table' and added.err then
    if not string.find(added.err, 'equal or smaller', 1, true) then
      return redis.error_reply(added.err)
    end
    refused[#refused + 1] = ARGV[i]
  else
    live[#live + 1] = ARGV[i] .. ' ' .. #ARGV[i + 1] .. ' ' .. #ARGV[i + 2] .. '\\n'
    live[#live + 1] = ARGV[i + 1]
    live[#live + 1] = ARGV[i + 2]
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
if #live > 2 then redis.call('PUBLISH', ARGV[3], table.concat(live)) end
return refused
"""
"""`append` in one round trip. KEYS: the run's stream. ARGV: maxlen, time to live, the live
channel, the run id, then (offset, name, data) per event. Stores each event under its offset (an
offset taken already is refused, Redis saying `equal or smaller`, and its event is left out of
the message), sets the time to live, and publishes the stored events as one message (see
`_unframe`); the refused offsets."""

_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisTransport:
    """Runs' events in Redis Streams (see the module docstring).

    Args:
        url: the Redis URL (`redis://host:6379/0`).
        prefix: the start of every key and channel (several deployments can share a Redis).
        maxlen: entries kept per run, about (`MAXLEN ~`).
        retain: seconds a run's stream is kept after its run-ended signal.
        idle_ttl: seconds a run's stream is kept after its last event when no end comes.
        client: an existing `redis.asyncio.Redis` (then not closed by `aclose`); without it,
            the transport's own has at most `POOL_SIZE` connections.
    """

    def __init__(self, url: str | None = None, *, prefix: str = "tether", maxlen: int = 10_000,
                 retain: float = 300.0, idle_ttl: float = 86_400.0,
                 client: aioredis.Redis | None = None) -> None:
        if client is None and url is None:
            raise ValueError("give a Redis URL or a client")
        # A pool that makes a caller wait for a connection rather than fail: a hundred streams
        # starting at once each read their run's history, past redis-py's default limit.
        self._client: aioredis.Redis = client or aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(str(url), max_connections=POOL_SIZE,
                                                     timeout=POOL_WAIT))
        self._owned = client is None
        self.prefix = prefix
        self.maxlen = maxlen
        self.retain = max(1, round(retain))
        self.idle_ttl = max(1, round(idle_ttl))
        self._sink: Sink | None = None
        self._script = hashlib.sha1(APPEND_SCRIPT.encode()).hexdigest()
        self.writes = WriteQueue(self._write, limit=WRITE_EVENTS)
        """The process's appends, written together (see `tether.bus.batching`)."""
        # Invariants: _watched holds the runs whose live events go to the sink; _pubsub is
        # subscribed to a channel once its task in _subscribing is done (the live channel
        # only once a run is watched: a worker hears only cancels), and _listener reads it
        # from the first subscription on, resolving the futures of _confirming as Redis
        # confirms their channels.
        self._watched: set[str] = set()
        self._pubsub: Any = None
        self._subscribing: dict[str, asyncio.Task[None]] = {}
        self._confirming: dict[bytes, asyncio.Future[None]] = {}
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

    @property
    def live_channel(self) -> str:
        """The pub/sub channel of the runs' events as they are stored."""
        return f"{self.prefix}:live"

    def attach(self, sink: Sink) -> None:
        """See `Transport.attach`."""
        self._sink = sink

    # -- writing and reading -----------------------------------------------------------------

    async def append(self, run_id: str, events: Sequence[BusEvent]) -> set[int]:
        """See `Transport.append`: one script (`APPEND_SCRIPT`), pipelined with the scripts of
        other runs that are waiting for the same write.

        Raises:
            redis.exceptions.RedisError: Redis cannot be reached or refused the write.

        Cancellation:
            As `Transport.append`: a retry's events come back refused; the batch may still be
            written after the caller has gone.
        """
        return await self.writes.append(run_id, events)

    async def _write(self, batches: Sequence[Batch]) -> list[set[int] | Exception]:
        for _attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for batch in batches:
                ended = any(event.final for event in batch.events)
                args: list[Any] = [self.maxlen, self.retain if ended else self.idle_ttl,
                                   self.live_channel, batch.run_id]
                for event in batch.events:
                    args += (event.seq, event.event, event.data or b"")
                pipe.evalsha(self._script, 1, self.key(batch.run_id), *args)
            answers = await pipe.execute(raise_on_error=False)
            if not any(isinstance(answer, NoScriptError) for answer in answers):
                break
            # Redis does not know the script (first use, a restart, SCRIPT FLUSH): load it and
            # send again (what was stored comes back refused).
            await self._client.script_load(APPEND_SCRIPT)
        return [answer if isinstance(answer, Exception) else {int(seq) for seq in answer}
                for answer in answers]

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
        """See `Transport.watch`: the run's events heard on the live channel go to the sink
        from now on; None (the subscriber reads the stream after `after` first), once the
        channel is heard.

        Raises:
            redis.exceptions.RedisError, TimeoutError: the subscription was not confirmed.

        Cancellation:
            Safe: the run stays watched until `unwatch`.
        """
        del after
        self._watched.add(run_id)
        await self._subscribed(self.live_channel)
        return None

    def unwatch(self, run_id: str) -> None:
        """See `Transport.unwatch`."""
        self._watched.discard(run_id)

    def _heard(self, data: bytes) -> None:
        run_id, _, frames = data.partition(b"\n")
        run = run_id.decode(errors="replace")
        if run in self._watched and self._sink is not None:
            events = _unframe(frames)
            if events:
                self._sink.deliver(run, events)

    # -- cancels -----------------------------------------------------------------------------

    async def send_cancel(self, message: str) -> None:
        """See `Transport.send_cancel` (`PUBLISH`).

        Cancellation:
            Safe to retry.
        """
        await self._client.publish(self.cancel_channel, message)

    async def listen_cancels(self) -> None:
        """See `Transport.listen_cancels` (on the process's one pub/sub connection).

        Cancellation:
            Safe: call it again.
        """
        await self._subscribed(self.cancel_channel)

    async def _subscribed(self, channel: str) -> None:
        """Subscribe `channel` on the process's pub/sub connection (once, whoever asks first);
        return once Redis has confirmed it.

        Raises:
            redis.exceptions.RedisError, TimeoutError: not confirmed (the next call tries again).

        Cancellation:
            Shielded: the subscription goes on for the next caller.
        """
        task = self._subscribing.get(channel)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._subscribing[channel] = asyncio.get_running_loop().create_task(
                self._subscribe(channel))
        await asyncio.shield(task)

    async def _subscribe(self, channel: str) -> None:
        loop = asyncio.get_running_loop()
        confirmed = self._confirming[channel.encode()] = loop.create_future()
        if self._pubsub is None:
            self._pubsub = self._client.pubsub()
        try:
            await self._pubsub.subscribe(channel)
            if self._listener is None or self._listener.done():
                self._listener = loop.create_task(self._listen_loop(),
                                                  name="tether-bus-redis-listener")
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                await confirmed
        finally:
            self._confirming.pop(channel.encode(), None)

    async def _listen_loop(self) -> None:
        delay, lost, pinged = RETRY_FIRST, False, None
        live, cancels = self.live_channel.encode(), self.cancel_channel.encode()
        while not self._closing:
            try:
                message = await self._pubsub.get_message(timeout=IDLE_CHECK)
                pinged = await self._silence(pinged) if message is None else None
            except _DOWN as exc:
                if not lost:
                    logger.warning("bus: Redis pub/sub connection lost (%s); reconnecting", exc)
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if lost and self._sink is not None:
                # Reconnected (redis-py subscribes again): what was sent meanwhile was not
                # heard, so every subscriber reads the streams again.
                self._sink.resync()
            lost, delay = False, RETRY_FIRST
            if message is None:
                continue
            if message.get("type") == "subscribe":
                confirmed = self._confirming.get(message["channel"])
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)
                continue
            if message.get("type") != "message" or self._sink is None:
                continue
            channel, data = message["channel"], message["data"]
            if channel == live:
                self._heard(data)
            elif channel == cancels:
                self._sink.cancelled(data.decode() if isinstance(data, bytes) else str(data))

    async def _silence(self, pinged: float | None) -> float | None:
        """After `IDLE_CHECK` seconds without a message: ping (its answer is a message); when
        a ping has had no answer for as long, the connection is dead without having said so:
        drop it (redis-py connects and subscribes again at the next read). When the ping went.

        Raises:
            redis.exceptions.TimeoutError: the connection was dropped.
        """
        now = asyncio.get_running_loop().time()
        if pinged is None:
            await self._pubsub.ping()
            return now
        if now - pinged < IDLE_CHECK:
            return pinged
        await self._pubsub.connection.disconnect()
        raise RedisTimeoutError("the Redis pub/sub connection did not answer a ping")

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
        await self.writes.aclose()  # what is queued is written first
        tasks = {task for task in (*self._subscribing.values(), self._listener)
                 if task is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._subscribing.clear()
        self._listener = None
        self._watched.clear()
        if self._pubsub is not None:
            with contextlib.suppress(*_DOWN):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._owned:
            await self._client.aclose()


def _unframe(frames: bytes) -> list[BusEvent]:
    """The events of a live message after its run id: each `<seq> <name length> <data
    length>\\n<name><data>` (`APPEND_SCRIPT`); [] for a malformed one (never raises: the
    channel is shared, so a message is not trusted to be ours)."""
    events: list[BusEvent] = []
    at, size = 0, len(frames)
    try:
        while at < size:
            head = frames.index(b"\n", at)
            seq, name_size, data_size = map(int, frames[at:head].split())
            name_end = head + 1 + name_size
            at = name_end + data_size
            if at > size:
                return []
            events.append(BusEvent(seq, frames[head + 1:name_end].decode(),
                                   frames[name_end:at]))
    except ValueError:  # no header end, a bad number, a name that is not UTF-8
        return []
    return events


def _event(entry_id: bytes, fields: dict[bytes, bytes]) -> BusEvent:
    # Entries are read with bytes responses (the client does not decode).
    return BusEvent(int(entry_id.partition(b"-")[0]), fields[b"e"].decode(), fields[b"d"])


__all__ = ["RedisTransport"]
