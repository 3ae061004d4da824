"""`Router`: the receiving side of a bus in one process. It hands live events to the
subscriptions of their run, starts and stops the transport's watch of each run as its first
subscriber comes and its last one goes, and passes cancel messages to the handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from tether.bus.event import BusEvent, parse_cancel
from tether.bus.subscription import Subscription
from tether.bus.transport import Transport

logger = logging.getLogger("tether.bus")

CancelHandler = Callable[[str, bytes | None], None]
"""Called with (run id, data) for each cancel message."""


class Router:
    """Routes what a transport receives (it is the transport's `Sink`).

    Args:
        transport: the backend; the router attaches itself to it.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        # Invariant: a run is in _runs (with at least one subscription) exactly while the
        # transport watches it for this router.
        self._runs: dict[str, set[Subscription]] = {}
        self._cancel_handlers: list[CancelHandler] = []
        self._resync_handlers: list[Callable[[], None]] = []
        transport.attach(self)

    # -- Membership (for subscriptions) ------------------------------------------------------

    async def join(self, subscription: Subscription) -> int | None:
        """Deliver the run's live events to `subscription` from now on; see
        `Transport.watch` for the answer.

        Cancellation:
            The subscription is left again: nothing stays watched for it.
        """
        run_id = subscription.run_id
        self._runs.setdefault(run_id, set()).add(subscription)
        try:
            return await self._transport.watch(run_id, subscription.position)
        except BaseException:
            self.leave(subscription)
            raise

    def leave(self, subscription: Subscription) -> None:
        """Stop delivering to `subscription`; the run's watch ends with its last one."""
        members = self._runs.get(subscription.run_id)
        if members is None:
            return
        members.discard(subscription)
        if not members:
            del self._runs[subscription.run_id]
            self._transport.unwatch(subscription.run_id)

    async def read(self, run_id: str, after: int, upto: int | None,
                   limit: int) -> list[BusEvent]:
        """The transport's range read.

        Cancellation:
            Safe: it only reads.
        """
        return await self._transport.read(run_id, after, upto, limit)

    # -- Sink (for the transport) ------------------------------------------------------------

    def deliver(self, run_id: str, events: Sequence[BusEvent]) -> None:
        """Hand live events to the run's subscriptions."""
        for subscription in list(self._runs.get(run_id, ())):
            subscription.offer(events)

    def resync(self) -> None:
        """Every subscription reads the store again; resync handlers run (cancels sent while
        the connection was down are lost: the handlers look at the durable state)."""
        for members in list(self._runs.values()):
            for subscription in list(members):
                subscription.resync()
        for handler in list(self._resync_handlers):
            _call(handler)

    def cancelled(self, message: str) -> None:
        """Pass a cancel message to the handlers (a malformed one is logged and dropped)."""
        parsed = parse_cancel(message)
        if parsed is None:
            logger.warning("dropped a malformed cancel message: %.100r", message)
            return
        for handler in list(self._cancel_handlers):
            _call(handler, *parsed)

    # -- cancels ---------------------------------------------------------------------------

    def add_cancel_handler(self, handler: CancelHandler,
                           on_resync: Callable[[], None] | None = None) -> None:
        """Call `handler` for every cancel message (and `on_resync` after a reconnection)."""
        self._cancel_handlers.append(handler)
        if on_resync is not None:
            self._resync_handlers.append(on_resync)

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """End every subscription (their iterators stop)."""
        for members in list(self._runs.values()):
            for subscription in list(members):
                subscription.close()
        self._runs.clear()


def _call(handler: Callable[..., None], *args: object) -> None:
    try:
        handler(*args)
    except Exception:  # a handler's failure must not stop the delivery to the others
        logger.exception("bus handler %r failed", handler)


__all__ = ["CancelHandler", "Router"]
