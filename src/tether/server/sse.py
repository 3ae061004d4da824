"""Long responses: a run's feed as Server-Sent Events, and a JSON answer that waits for a run.

Both hold the connection while the run goes on, send something now and then so proxies keep it
(an SSE comment, or whitespace before the JSON), notice a client that goes away (and then run
`on_disconnect`, shielded), and give back the stream slot they hold whatever happens.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import anyio
from starlette.responses import Response

from tether.server.feed import Subscription
from tether.server.guards import Receive, Scope, Send
from tether.server.limits import ServerLimits, StreamSlots
from tether.server.message_events import LegacyMessages, wants_legacy
from tether.server.wire import dumps

HEARTBEAT = b": heartbeat\r\n\r\n"
Disconnect = Callable[[], Awaitable[Any]]


class _Held(Response, abc.ABC):
    """A response produced over time by `produce`, while the client is watched."""

    media: str = "application/octet-stream"

    def __init__(self, *, slot: tuple[StreamSlots, str] | None, headers: Mapping[str, str],
                 limits: ServerLimits, on_disconnect: Disconnect | None) -> None:
        self.slot = slot
        self.extra_headers = dict(headers)
        self.limits = limits
        self.on_disconnect = on_disconnect
        self.background = None
        self.status_code = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            headers = {"content-type": self.media, "cache-control": "no-store",
                       "x-accel-buffering": "no", **self.extra_headers}
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})
            if await self._watched(receive, send) and self.on_disconnect is not None:
                with anyio.CancelScope(shield=True):
                    await self.on_disconnect()
        finally:
            if self.slot is not None:
                self.slot[0].release(self.slot[1])

    async def _watched(self, receive: Receive, send: Send) -> bool:
        """Run `produce` until it ends; True if the client went away first."""
        gone = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self.produce(send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                gone = True  # the connection broke while sending
            group.cancel_scope.cancel()
        return gone

    @abc.abstractmethod
    async def produce(self, send: Send) -> None:
        """Send the body (`more_body=True` chunks); the end is sent for it.

        Cancellation:
            Cancelled when the client goes away; it must leave the run alone (a run is only
            cancelled by `on_disconnect`).
        """


STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "Server-sent events, until the run ends.",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
}
"""What the OpenAPI document says a stream route answers (`responses=` of its decorator)."""


class EventStream(_Held):
    """A subscription to a run's feed, as SSE, until the run ends.

    The stream also closes after `limits.max_stream_seconds`; a client that follows the
    `Location` header (as `langgraph-sdk` does) reconnects with `Last-Event-ID` and goes on.

    Args:
        subscription: the events to send.
        slot: (slots, key) of the stream slot taken for this stream; released at the end.
        headers: extra response headers (`Location`, `Content-Location`).
        limits: heartbeat interval and lifetime.
        on_disconnect: awaited if the client leaves before the stream ends.
    """

    media = "text/event-stream; charset=utf-8"

    def __init__(self, subscription: Subscription, *, slot: tuple[StreamSlots, str],
                 headers: Mapping[str, str], limits: ServerLimits,
                 on_disconnect: Disconnect | None = None,
                 modes: Collection[str] | None = None) -> None:
        super().__init__(slot=slot, headers=headers, limits=limits, on_disconnect=on_disconnect)
        self.subscription = subscription
        # Chat-model tokens in the Agent Server's older form, when the client asked for it.
        self.legacy = LegacyMessages() if wants_legacy(modes) else None
        self.keep_tuple = modes is not None and "messages-tuple" in modes

    async def produce(self, send: Send) -> None:
        """Send the subscription's events, heartbeats in the silences, until the run ends.

        Cancellation:
            As `_Held.produce`; events not sent yet stay in the feed for a reconnect.
        """
        with anyio.move_on_after(self.limits.max_stream_seconds):
            await self._events(send)

    async def _events(self, send: Send) -> None:
        sub = self.subscription
        while True:
            events = sub.take()
            if events:
                legacy = self.legacy
                body = b"".join(event.wire() for event in events) if legacy is None else \
                    b"".join(legacy.wire(event, keep_tuple=self.keep_tuple) for event in events)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                continue
            if sub.done:
                return
            if not await sub.wait(self.limits.heartbeat_seconds):
                await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})


class DelayedJson(_Held):
    """JSON that is ready when `result` returns; whitespace is sent meanwhile, as the Agent
    Server does, so the connection stays open (JSON parsers skip leading whitespace).

    Args:
        result: produces the JSON value; an exception becomes `{"__error__": ...}` (the
            status line is already sent by then).
    """

    media = "application/json"

    def __init__(self, result: Callable[[], Awaitable[Any]], *, headers: Mapping[str, str],
                 limits: ServerLimits, on_disconnect: Disconnect | None = None) -> None:
        super().__init__(slot=None, headers=headers, limits=limits, on_disconnect=on_disconnect)
        self.result = result

    async def produce(self, send: Send) -> None:
        """Send whitespace while `result` runs, then its JSON.

        Cancellation:
            As `_Held.produce`; `result` is cancelled with it (it only waits).
        """
        task = asyncio.ensure_future(self.result())
        try:
            while not task.done():
                done, _ = await asyncio.wait({task}, timeout=self.limits.heartbeat_seconds)
                if not done:
                    await send({"type": "http.response.body", "body": b"\n", "more_body": True})
            try:
                value = task.result()
            except Exception as exc:  # noqa: BLE001 - reported in the body, the status is sent
                value = {"__error__": {"error": type(exc).__name__, "message": str(exc)}}
            await send({"type": "http.response.body", "body": dumps(value), "more_body": True})
        finally:
            task.cancel()


__all__ = ["HEARTBEAT", "STREAM_RESPONSE", "DelayedJson", "EventStream"]
