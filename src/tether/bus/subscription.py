"""`Subscription`: one reader of one run's events, from an offset, in order, each exactly once.

Two sources feed it: live delivery (what the transport pushes as events are published) and the
store (range reads). Live delivery is only a fast path: it may start late, skip, repeat or
reorder. The subscription keeps one number, `position` (the last offset it handed out), and
fills every hole below a live event from the store before it goes on; a hole the store does
not fill either (trimmed by retention, or lost with a publisher) is passed over, so a reader
never waits for what cannot come. The event right after `position` is handed out as soon as it
comes live, even while a read of the store is in flight (a new reader's read of what came
before may wait for a busy store's connection).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from tether.bus.event import BusEvent

READ_PAGE = 500
"""Events per range read."""

LIVE_LIMIT = 10_000
"""Live events a subscription holds for a slow reader; past it they are dropped and read back
from the store when the reader gets there (memory stays bounded, nothing is lost)."""

_ALL = sys.maxsize
"""`read_upto` meaning: everything the store has."""


class Membership(Protocol):
    """What a subscription needs from its bus."""

    async def join(self, subscription: Subscription) -> int | None:
        """Start live delivery to `subscription`; see `Transport.watch` for the answer.

        Cancellation:
            Nothing stays joined: the subscription is left again.
        """
        ...

    def leave(self, subscription: Subscription) -> None:
        """Stop live delivery to `subscription`."""

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        """Stored events of the run in `(after, upto]`, ascending.

        Cancellation:
            Safe: it only reads.
        """
        ...


class Subscription:
    """The events of `run_id` after offset `after`; it ends after the run-ended signal
    (`BusEvent.final`), which it yields last.

    Use it as an async iterator, inside `async with` (or call `aclose()`) so that live delivery
    stops when the reader leaves early.

    Args:
        membership: the bus it reads from.
        run_id: the run.
        after: the offset already seen (0: from the run's first event).
    """

    def __init__(self, membership: Membership, run_id: str, after: int = 0) -> None:
        if after < 0:
            raise ValueError(f"an offset is never negative (got {after})")
        self.run_id = run_id
        self.position = after
        """The offset of the last event handed out (or `after`)."""
        self.ended = False
        """True once the run-ended signal was handed out."""
        self._membership = membership
        self._live: deque[BusEvent] = deque()
        self._stored: deque[BusEvent] = deque()
        # Invariants: `_read_upto > position` means the store must be read up to it before
        # any live event is taken; the store held nothing more in (position, _filled_to] when
        # it was last read there, so a hole at or below `_filled_to` is final.
        self._read_upto = 0
        self._filled_to = after
        # Bumped whenever the store must be read again from where the reader is, whatever
        # read is in flight (a resync, live events dropped past the limit): that read does
        # not answer for it.
        self._asked = 0
        self._wake = asyncio.Event()
        # The store read in flight (a task kept across `__anext__` calls: a reader that stops
        # waiting does not throw it away), while the next event may still come live.
        self._reading: asyncio.Task[None] | None = None
        self._joined = False
        self._closed = False

    # -- reading ----------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BusEvent:
        """The next event in offset order.

        Raises:
            StopAsyncIteration: after the run-ended signal, or once closed.

        Cancellation:
            Safe: nothing is consumed until it is returned; call again to go on.
        """
        try:
            if not self._joined and not self._closed:
                await self._join()
            return await self._next()
        except Exception:
            if self._closed:  # closed meanwhile (its bus shut down): the reading just ends
                raise StopAsyncIteration from None
            raise

    async def _next(self) -> BusEvent:
        while not self._closed:
            event = self._next_candidate()
            if event is None:
                if self._read_upto > self.position:
                    await self._read_or_live()
                else:
                    self._wake.clear()
                    await self._wake.wait()
                continue
            if event.seq <= self.position:
                continue  # seen already (a repeat, or read from both sources)
            if (event.data is None or event.seq > self.position + 1) and \
                    self._filled_to < event.seq - (event.data is not None):
                self._live.appendleft(event)
                self._read_upto = event.seq if event.data is None else event.seq - 1
                continue
            self.position = event.seq
            if event.data is None:
                continue  # its data is gone from the store: passed over
            if event.final:
                self.ended = True
                self._finish()
            return event
        raise StopAsyncIteration

    def _next_candidate(self) -> BusEvent | None:
        if self._stored:
            return self._stored.popleft()
        if self._read_upto > self.position:
            # The store is to be read first, unless the very next event came live: nothing
            # is missing below it, whatever the read brings (its copy is then a repeat). So a
            # new reader's first live events need not wait for the read of what came before.
            live = self._live
            if live and live[0].seq == self.position + 1 and live[0].data is not None:
                return live.popleft()
            return None
        return self._live.popleft() if self._live else None

    async def _read_or_live(self) -> None:
        """Wait until the store read in flight (started here if none is) has answered, or an
        event came live; raise what the read raised."""
        reading = self._reading
        if reading is None:
            reading = self._reading = asyncio.get_running_loop().create_task(self._read())
        if not reading.done():
            self._wake.clear()
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((reading, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
            if not reading.done() or self._closed:  # (closing gives the read up)
                return
        self._reading = None
        reading.result()

    async def _join(self) -> None:
        known = await self._membership.join(self)  # a failed or cancelled join leaves again
        self._joined = True
        if self._closed:  # closed while joining
            self._membership.leave(self)
            return
        if known is None:
            self._read_upto = _ALL
        elif known > self.position:
            self._read_upto = max(self._read_upto, known)

    async def _read(self) -> None:
        upto, asked = self._read_upto, self._asked
        events = await self._membership.read(self.run_id, self.position,
                                             None if upto == _ALL else upto, READ_PAGE)
        # Store events are authoritative for the range read: a hole among them is final.
        # (Events handed out live meanwhile come back as repeats, and are passed over.)
        self._stored.extend(events)
        if events:
            self._filled_to = max(self._filled_to, events[-1].seq)
        done = len(events) < READ_PAGE or events[-1].seq >= upto
        if len(events) < READ_PAGE and upto != _ALL:
            self._filled_to = max(self._filled_to, upto)
        # Asked for more meanwhile (a resync, live events dropped past the limit): read again.
        if done and self._read_upto == upto and self._asked == asked:
            self._read_upto = 0

    # -- fed by the bus ---------------------------------------------------------------------

    def offer(self, events: Sequence[BusEvent]) -> None:
        """Live events of the run (called by the bus on its loop)."""
        if self._closed:
            return
        self._live.extend(events)
        if len(self._live) > LIVE_LIMIT:
            self._live.clear()
            self._read_again()
        self._wake.set()

    def resync(self) -> None:
        """Live delivery may have missed events: read the store again before going on."""
        if not self._closed:
            self._read_again()
            self._wake.set()

    def _read_again(self) -> None:
        self._read_upto = _ALL
        self._asked += 1

    # -- closing ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop reading (idempotent); the iterator then ends.

        Cancellation:
            Safe: it does not wait.
        """
        self._finish()

    def close(self) -> None:
        """`aclose` for sync code (the bus's shutdown)."""
        self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._live.clear()
        self._wake.set()
        reading, self._reading = self._reading, None
        if reading is not None:
            # Given up: its outcome is dropped whenever it comes, even a failure after the
            # cancel (a client library may lose a cancel that lands while it connects, and
            # then fail on the connection the bus's close shuts).
            reading.cancel()
            reading.add_done_callback(_drop_outcome)
        if self._joined:
            self._membership.leave(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._finish()


def _drop_outcome(task: asyncio.Task[None]) -> None:
    """Take a given-up read's outcome, so that a failure is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


__all__ = ["LIVE_LIMIT", "READ_PAGE", "Membership", "Subscription"]
