"""`Subscription`: one reader of one run's events, from an offset, in order, each exactly once.

Two sources feed it: live delivery (what the transport pushes as events are published) and the
store (range reads). Live delivery is only a fast path: it may start late, skip, repeat or
reorder. The subscription keeps one number, `position` (the last offset it handed out), and
fills every hole below a live event from the store before it goes on; a hole the store does
not fill either (trimmed by retention, or lost with a publisher) is passed over, so a reader
never waits for what cannot come.
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
        self._wake = asyncio.Event()
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
                    await self._read()
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
            return None
        return self._live.popleft() if self._live else None

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
        upto = self._read_upto
        events = await self._membership.read(self.run_id, self.position,
                                             None if upto == _ALL else upto, READ_PAGE)
        # Store events are authoritative for the range read: a hole among them is final.
        self._stored.extend(events)
        if events:
            self._filled_to = max(self._filled_to, events[-1].seq)
        if len(events) < READ_PAGE:
            if upto != _ALL:
                self._filled_to = max(self._filled_to, upto)
            self._read_upto = 0
        elif events[-1].seq >= upto:
            self._read_upto = 0

    # -- fed by the bus ---------------------------------------------------------------------

    def offer(self, events: Sequence[BusEvent]) -> None:
        """Live events of the run (called by the bus on its loop)."""
        if self._closed:
            return
        self._live.extend(events)
        if len(self._live) > LIVE_LIMIT:
            self._live.clear()
            self._read_upto = _ALL
        self._wake.set()

    def resync(self) -> None:
        """Live delivery may have missed events: read the store again before going on."""
        if not self._closed:
            self._read_upto = _ALL
            self._wake.set()

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
        if self._joined:
            self._membership.leave(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._finish()


__all__ = ["LIVE_LIMIT", "READ_PAGE", "Membership", "Subscription"]
