"""A run's stream as the server shares it: one producer (the run), any number of subscribers
(the request that started it, join streams, the web page), each with its own cursor.

Events are numbered; a subscriber that reconnects with `Last-Event-ID` continues after it. A feed
keeps its last `limit` events, so a slow or late subscriber misses the oldest ones rather than
holding memory without bound. Not thread-safe: only the server's event loop touches a feed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Collection
from typing import Any

from tether.server.wire import dumps

ALWAYS = frozenset({"metadata", "error"})
"""Events every subscriber gets, whatever modes it asked for."""


class FeedEvent:
    """One event of a run's stream; its SSE bytes are made once, on first use.

    Attributes:
        at: when it was published (epoch seconds): the web page's timeline times tasks by it.
    """

    __slots__ = ("_wire", "at", "event", "mode", "payload", "seq")

    def __init__(self, seq: int, event: str, payload: Any) -> None:
        self.at = time.time()
        self.seq = seq
        self.event = event
        self.mode = event.split("|", 1)[0]
        self.payload = payload
        self._wire: bytes | None = None

    def wire(self) -> bytes:
        """The event in SSE framing: `event`, `data` (JSON), `id`."""
        if self._wire is None:
            self._wire = b"event: %s\r\ndata: %s\r\nid: %d\r\n\r\n" % (
                self.event.encode(), dumps(self.payload), self.seq)
        return self._wire


class RunFeed:
    """The events of one run, for every subscriber.

    Args:
        run_id: the run.
        limit: how many events are kept.
    """

    def __init__(self, run_id: str, *, limit: int) -> None:
        self.run_id = run_id
        self._events: deque[FeedEvent] = deque(maxlen=max(1, limit))
        # Invariant: kept events are numbered in increasing order, below `_next`; numbers
        # are consecutive unless the producer gave its own (a bus offset that skipped).
        self._next = 0
        self._closed = False
        # Waiters by the mode they wait for (None: any event). A publish wakes only the
        # waiters of its mode (and the any-waiters); `ALWAYS` events and the close wake all.
        self._waiters: dict[str | None, asyncio.Future[None]] = {}
        self.final: Any = None
        """The run's record at its end, set by the producer before `close`."""
        self.whole = True
        """False when the feed was closed without its run's last events (the run ended, and
        they never came): its last state is then not the run's."""

    @property
    def closed(self) -> bool:
        """True once the run has ended and no more events will come (its last one is in,
        unless `whole` says otherwise)."""
        return self._closed

    @property
    def next_seq(self) -> int:
        """The number the next event will get."""
        return self._next

    def publish(self, event: str, payload: Any, seq: int | None = None) -> None:
        """Append an event (ignored once closed) and wake the subscribers.

        Args:
            seq: the event's number (a run's bus offset, the same on every server), else the
                next one; a number already passed is a repeat and is ignored.
        """
        if self._closed or (seq is not None and seq < self._next):
            return
        number = self._next if seq is None else seq
        self._next = number + 1
        added = FeedEvent(number, event, payload)
        self._events.append(added)
        self._wake(None if added.mode in ALWAYS else added.mode)

    def close(self, final: Any = None, *, whole: bool = True) -> None:
        """No more events will come; `final` is the run's record at its end; `whole`: False
        when the run's last events are known to be missing."""
        self.final = final
        self.whole = whole
        self._closed = True
        self._wake(None)

    def subscribe(self, modes: Collection[str] | None = None,
                  after: int | None = None) -> Subscription:
        """A cursor over the events of `modes` (all when None), after event number `after`
        (from the first kept event when None)."""
        start = 0 if after is None else after + 1
        return Subscription(self, None if modes is None else frozenset(modes), start)

    def since(self, cursor: int) -> tuple[list[FeedEvent], int]:
        """The kept events numbered `cursor` or later, and the cursor after them."""
        events = self._events
        if not events or cursor >= self._next:
            return [], max(cursor, self._next)
        if events[0].seq >= cursor:
            return list(events), self._next
        # From the right: a subscriber that keeps up costs what is new, not the whole deque.
        fresh = list(itertools.takewhile(lambda e: e.seq >= cursor, reversed(events)))
        return fresh[::-1], self._next

    def latest(self, events: Collection[str]) -> FeedEvent | None:
        """The last kept event named one of `events`, or None."""
        for event in reversed(self._events):
            if event.event in events:
                return event
        return None

    async def changed(self, timeout: float,  # noqa: ASYNC109
                      modes: frozenset[str] | None = None) -> bool:
        """Wait up to `timeout` seconds for a new event (of `modes`, or any) or the close;
        False on timeout.

        Cancellation:
            Safe: nothing is consumed by waiting.
        """
        done, _ = await asyncio.wait(self.signals(modes), timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        return bool(done)

    def signals(self, modes: frozenset[str] | None = None) -> list[asyncio.Future[None]]:
        """The futures that the next event of `modes` (of any mode when None), or the close,
        resolves: one per mode, shared by every subscriber that waits for it, so a publish
        resolves one future however many streams follow the run.

        A waiter must not await them directly (a cancelled waiter would cancel the future
        under everyone else): it adds a done callback, or waits with `asyncio.wait`.
        """
        loop = asyncio.get_running_loop()
        futures = []
        for key in (None,) if modes is None else modes:
            future = self._waiters.get(key)
            if future is None or future.done():
                future = self._waiters[key] = loop.create_future()
            futures.append(future)
        return futures

    def _wake(self, mode: str | None) -> None:
        """Wake the waiters of `mode` and of any event; every waiter when `mode` is None."""
        waiters = self._waiters
        if not waiters:  # nobody follows the run (most runs, most of the time)
            return
        keys = list(waiters) if mode is None else (mode, None)
        for key in keys:
            waiter = waiters.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


class Subscription:
    """One subscriber's cursor over a feed."""

    __slots__ = ("_cursor", "_feed", "_modes", "last_seq")

    def __init__(self, feed: RunFeed, modes: frozenset[str] | None, cursor: int) -> None:
        self._feed = feed
        self._modes = modes
        self._cursor = cursor
        self.last_seq: int | None = None

    def take(self) -> list[FeedEvent]:
        """The events this subscriber has not seen yet (of its modes)."""
        events, self._cursor = self._feed.since(self._cursor)
        if events:
            self.last_seq = events[-1].seq
        modes = self._modes
        if modes is None:
            return events
        return [e for e in events if e.mode in modes or e.mode in ALWAYS]

    @property
    def done(self) -> bool:
        """True once the feed is closed and every event was taken."""
        return self._feed.closed and self._cursor >= self._feed.next_seq

    def signals(self) -> list[asyncio.Future[None]] | None:
        """The feed's shared futures that the next event of this subscriber's modes (or the
        close) resolves (see `RunFeed.signals`); None when there is something to take now."""
        if self._feed.closed or self._cursor < self._feed.next_seq:
            return None
        return self._feed.signals(self._modes)

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for new events (or the end) up to `timeout` seconds; False on timeout.

        Cancellation:
            Safe: nothing is consumed by waiting.
        """
        if self._feed.closed or self._cursor < self._feed.next_seq:
            return True
        return await self._feed.changed(timeout, self._modes)


__all__ = ["ALWAYS", "FeedEvent", "RunFeed", "Subscription"]
