"""An in-process transport: the reference the conformance suite holds the real backends to, and
a bus for tests. `MemoryBroker` plays the server; each `MemoryTransport` on it plays one
process. Everything happens on one event loop."""

from __future__ import annotations

from collections.abc import Sequence

from tether.bus.event import BusEvent
from tether.bus.transport import Sink


class MemoryBroker:
    """The shared side: every run's events, and the transports connected to it."""

    def __init__(self) -> None:
        self.runs: dict[str, list[BusEvent]] = {}
        self.transports: list[MemoryTransport] = []


class MemoryTransport:
    """One process's connection to a `MemoryBroker` (a new broker when none is given)."""

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()
        self.broker.transports.append(self)
        self._sink: Sink | None = None
        self._watched: set[str] = set()
        self._cancels = False

    def attach(self, sink: Sink) -> None:
        """See `Transport.attach`."""
        self._sink = sink

    async def append(self, run_id: str, events: Sequence[BusEvent]) -> set[int]:
        """See `Transport.append`.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        stored = self.broker.runs.setdefault(run_id, [])
        top = stored[-1].seq if stored else 0
        added = [event for event in events if event.seq > top]
        stored.extend(added)
        if added:
            for transport in self.broker.transports:
                if run_id in transport._watched and transport._sink is not None:
                    transport._sink.deliver(run_id, added)
        return {event.seq for event in events if event.seq <= top}

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        """See `Transport.read`.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        top = upto if upto is not None else float("inf")
        found = [e for e in self.broker.runs.get(run_id, ()) if after < e.seq <= top]
        return found[:limit]

    async def last(self, run_id: str) -> BusEvent | None:
        """See `Transport.last`.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        stored = self.broker.runs.get(run_id)
        return stored[-1] if stored else None

    async def watch(self, run_id: str, after: int) -> int | None:
        """See `Transport.watch`: everything stored is read, then live.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        self._watched.add(run_id)
        return None

    def unwatch(self, run_id: str) -> None:
        """See `Transport.unwatch`."""
        self._watched.discard(run_id)

    async def send_cancel(self, message: str) -> None:
        """See `Transport.send_cancel`.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        for transport in self.broker.transports:
            if transport._cancels and transport._sink is not None:
                transport._sink.cancelled(message)

    async def listen_cancels(self) -> None:
        """See `Transport.listen_cancels`.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        self._cancels = True

    async def trim(self) -> int:
        """Forget ended runs' events (memory has no clock-based retention).

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        ended = [run_id for run_id, events in self.broker.runs.items()
                 if events and events[-1].final and run_id not in self._watched]
        return sum(len(self.broker.runs.pop(run_id)) for run_id in ended)

    async def aclose(self) -> None:
        """Disconnect from the broker.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        if self in self.broker.transports:
            self.broker.transports.remove(self)
        self._watched.clear()


__all__ = ["MemoryBroker", "MemoryTransport"]
