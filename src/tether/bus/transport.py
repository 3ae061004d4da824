"""What a bus backend provides (`Transport`) and what it reports back to the bus (`Sink`).

A backend stores each run's events in order, under the offsets their publisher gave them, reads
them back by range, and carries them live to the process that watches the run. Everything a
subscriber is owed — order, no loss, resuming from an offset — is built once, in
`tether.bus.subscription`, on these few calls: live delivery may skip, repeat or reorder an
event, because the subscriber fills every hole from `read`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tether.bus.event import BusEvent


class Sink(Protocol):
    """The bus, as its transport reports to it (all calls on the bus's event loop)."""

    def deliver(self, run_id: str, events: Sequence[BusEvent]) -> None:
        """Live events of a watched run, in the order they were published."""

    def resync(self) -> None:
        """Live delivery may have missed events (a lost connection): every subscriber reads
        from the store again."""

    def cancelled(self, message: str) -> None:
        """A cancel message arrived (see `tether.bus.event.cancel_message`)."""


class Transport(Protocol):
    """A bus backend: storage, range reads, live delivery and a cancel channel."""

    def attach(self, sink: Sink) -> None:
        """Report live events, resyncs and cancels to `sink` (called once, by the bus)."""

    async def append(self, run_id: str, events: Sequence[BusEvent]) -> set[int]:
        """Store `events` (consecutive offsets, ascending) and send them to the watchers; the
        offsets refused because the run already has an event there.

        Cancellation:
            The events are stored whole or not at all; safe to retry (a retry's events come
            back refused).
        """
        ...

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        """Up to `limit` stored events with `after < seq <= upto` (no upper bound when None),
        ascending.

        Cancellation:
            Safe: it only reads.
        """
        ...

    async def last(self, run_id: str) -> BusEvent | None:
        """The run's last stored event, or None when it has none (or they were trimmed).

        Cancellation:
            Safe: it only reads.
        """
        ...

    async def watch(self, run_id: str, after: int) -> int | None:
        """Deliver the run's events live from now on. Returns how far live delivery has
        already gone for this run: a new subscriber reads `(after, returned]` from the store
        first; None means live delivery starts only now and everything stored after `after`
        is to be read.

        Cancellation:
            Safe: a watch that did not start is started again by the next subscriber.
        """
        ...

    def unwatch(self, run_id: str) -> None:
        """Stop delivering the run's events live (its last subscriber left)."""

    async def send_cancel(self, message: str) -> None:
        """Send a cancel message to every process listening for cancels.

        Cancellation:
            Safe to retry: receivers treat a cancel as idempotent.
        """
        ...

    async def listen_cancels(self) -> None:
        """Start receiving cancel messages; return once they are being received.

        Cancellation:
            Safe: call it again.
        """
        ...

    async def trim(self) -> int:
        """Apply the retention policy now; how many events were removed (0 when the backend
        expires them by itself).

        Cancellation:
            Safe: what was not removed is removed next time.
        """
        ...

    async def aclose(self) -> None:
        """Stop live delivery and close connections.

        Cancellation:
            Safe to retry.
        """
        ...


__all__ = ["Sink", "Transport"]
