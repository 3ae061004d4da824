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
    """A response produced over time by `produce`, while the client is watched.

    The client is watched by one task that reads the connection until it reports the
    disconnect; `produce` learns of it from `gone`, resolved then, and returns (it is not
    cancelled: a stream costs one task more than its own, not a task group and its scopes).
    """

    media: str = "application/octet-stream"

    def __init__(self, *, slot: tuple[StreamSlots, str] | None, headers: Mapping[str, str],
                 limits: ServerLimits, on_disconnect: Disconnect | None) -> None:
        self.slot = slot
        self.extra_headers = dict(headers)
        self.limits = limits
        self.on_disconnect = on_disconnect
        self.background = None
        self.status_code = 200
        self.gone: asyncio.Future[None] | None = None
        """Resolved once the client has gone away (set while the response is sent)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            headers = [(b"content-type", self.media.encode()), *_COMMON_HEADERS, *(
                (k.lower().encode(), v.encode()) for k, v in self.extra_headers.items())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if await self._watched(receive, send) and self.on_disconnect is not None:
                with anyio.CancelScope(shield=True):
                    await self.on_disconnect()
        finally:
            if self.slot is not None:
                self.slot[0].release(self.slot[1])

    async def _watched(self, receive: Receive, send: Send) -> bool:
        """Run `produce` until it ends or sees `gone`; True if the client went away first."""
        loop = asyncio.get_running_loop()
        gone = self.gone = loop.create_future()
        watcher = loop.create_task(_watch(receive, gone))
        try:
            await self.produce(send)
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            _leave(gone)  # the connection broke while sending
        finally:
            watcher.cancel()
            await asyncio.wait((watcher,))
        if not watcher.cancelled() and (failed := watcher.exception()) is not None:
            raise failed
        return gone.done()

    @abc.abstractmethod
    async def produce(self, send: Send) -> None:
        """Send the body (`more_body=True` chunks) until there is no more or `gone` is
        resolved; the end is sent for it.

        Cancellation:
            Cancelled with the request (a server shutting down); it must leave the run alone
            (a run is only cancelled by `on_disconnect`).
        """


_COMMON_HEADERS = ((b"cache-control", b"no-store"), (b"x-accel-buffering", b"no"))


async def _watch(receive: Receive, gone: asyncio.Future[None]) -> None:
    """Read the connection until the client goes away; then resolve `gone`."""
    while (await receive())["type"] != "http.disconnect":
        pass
    _leave(gone)


def _leave(gone: asyncio.Future[None]) -> None:
    if not gone.done():
        gone.set_result(None)


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
        """Send the subscription's events, heartbeats in the silences, until the run ends,
        the client leaves or the stream's lifetime is over.

        Cancellation:
            As `_Held.produce`; events not sent yet stay in the feed for a reconnect.
        """
        loop = asyncio.get_running_loop()
        limits = self.limits
        sub = self.subscription
        gone = self.gone
        alarm = _Alarm(loop)
        if gone is not None:
            gone.add_done_callback(alarm.ring)
        now = loop.time()
        end = now + limits.max_stream_seconds
        beat = now + limits.heartbeat_seconds  # when silence calls for a heartbeat
        try:
            while gone is None or not gone.done():
                events = sub.take()
                if events:
                    legacy = self.legacy
                    body = b"".join(event.wire() for event in events) if legacy is None else \
                        b"".join(legacy.wire(event, keep_tuple=self.keep_tuple)
                                 for event in events)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    beat = loop.time() + limits.heartbeat_seconds
                    continue
                if sub.done:
                    return
                now = loop.time()
                if now >= end:
                    return
                if now >= beat:
                    await send({"type": "http.response.body", "body": HEARTBEAT,
                                "more_body": True})
                    beat = now + limits.heartbeat_seconds
                    continue
                await alarm.wait(sub.signals(), min(beat, end))
        finally:
            alarm.close()
            if gone is not None:
                gone.remove_done_callback(alarm.ring)


class _Alarm:
    """What wakes one stream: the feed's shared futures, the client leaving, or a time.

    Its timer is kept across waits and moved only when a wait needs it earlier: the deadline
    of a stream (its next heartbeat) moves with every event sent, and re-arming a timer for
    every event of every stream is work the loop would do for nothing. A timer that rings
    early only makes the stream look at the clock and wait again.
    """

    __slots__ = ("_loop", "_timer", "_timer_at", "_wake", "ring")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.ring = self._ring  # one bound method, added to and removed from futures

    async def wait(self, signals: list[asyncio.Future[None]] | None, deadline: float) -> None:
        """Wait until one of `signals` is resolved, `ring` is called or `deadline` (loop
        time) passes, whichever is first; at once when `signals` is None.

        Cancellation:
            Safe: the shared futures are never awaited (nor cancelled) by this stream.
        """
        if signals is None:
            return
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_time)
            self._timer_at = deadline
        wake = self._wake = self._loop.create_future()
        ring = self.ring
        for signal in signals:
            signal.add_done_callback(ring)
        try:
            await wake
        finally:
            self._wake = None
            for signal in signals:
                if not signal.done():
                    signal.remove_done_callback(ring)

    def close(self) -> None:
        """Stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _ring(self, _done: object = None) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _on_time(self) -> None:
        self._timer = None
        self._ring()


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
        watched: set[asyncio.Future[Any]] = {task} if self.gone is None else {task, self.gone}
        try:
            while not task.done():
                done, _ = await asyncio.wait(watched, timeout=self.limits.heartbeat_seconds,
                                             return_when=asyncio.FIRST_COMPLETED)
                if self.gone is not None and self.gone.done():
                    return
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
