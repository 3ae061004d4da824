"""A run's feed as SSE (`tether.server.sse.EventStream`), driven without a server: what wakes
a stream (the feed's shared futures, the client leaving, its heartbeat and lifetime times) and
what a stream that stops leaves to the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tether.server.feed import RunFeed
from tether.server.limits import ServerLimits, StreamSlots
from tether.server.sse import HEARTBEAT, EventStream

pytestmark = pytest.mark.anyio


class Client:
    """The ASGI side of one stream: what was sent (with the loop time), and a disconnect to
    report when `leave` is called."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.got_body = asyncio.Event()
        self._left = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self._left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append((asyncio.get_running_loop().time(), message))
        if message["type"] == "http.response.body" and message.get("body"):
            self.got_body.set()

    def leave(self) -> None:
        self._left.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for _, m in self.sent if m["type"] == "http.response.body"]

    def ended(self) -> bool:
        return any(m["type"] == "http.response.body" and not m.get("more_body", False)
                   for _, m in self.sent)


def stream(feed: RunFeed, limits: ServerLimits, slots: StreamSlots | None = None,
           **kwargs: Any) -> EventStream:
    slots = slots or StreamSlots(10)
    assert slots.acquire("k")
    return EventStream(feed.subscribe({"values"}, after=feed.next_seq - 1), slot=(slots, "k"),
                       headers={}, limits=limits, **kwargs)


async def test_subscribers_of_one_mode_share_the_feeds_wake_up_future() -> None:
    feed = RunFeed("r", limit=10)
    first, second = feed.subscribe({"values"}), feed.subscribe({"values"})
    shared = first.signals()
    assert shared is not None and shared == second.signals()
    feed.publish("values", {"n": 1})
    assert all(f.done() for f in shared)
    assert first.signals() is None  # something to take now
    first.take()
    assert first.signals() is not None
    feed.close()
    assert first.signals() is None


async def test_a_stream_cancelled_while_waiting_leaves_the_others_their_wake_up() -> None:
    feed = RunFeed("r", limit=10)
    limits = ServerLimits()
    gone, staying = Client(), Client()
    cancelled = asyncio.create_task(stream(feed, limits)({}, gone.receive, gone.send))
    kept = asyncio.create_task(stream(feed, limits)({}, staying.receive, staying.send))
    await asyncio.sleep(0.01)  # both wait on the feed
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    feed.publish("values", {"n": 1})
    await asyncio.wait_for(staying.got_body.wait(), 5)
    assert b'data: {"n":1}' in b"".join(staying.bodies())
    feed.close()
    await asyncio.wait_for(kept, 5)
    assert staying.ended()


async def test_a_heartbeat_comes_only_after_a_whole_silence_even_when_the_timer_was_set_before_an_event() -> None:  # noqa: E501
    # The stream's timer is set for the heartbeat due before the event; it rings early then
    # (the event moved the silence's start) and must not send one before the silence is over.
    feed = RunFeed("r", limit=10)
    client = Client()
    beat = 0.5
    task = asyncio.create_task(stream(feed, ServerLimits(heartbeat_seconds=beat))(
        {}, client.receive, client.send))
    while not client.sent:  # the head: the stream waits from now
        await asyncio.sleep(0)
    await asyncio.sleep(beat * 0.6)
    feed.publish("values", {"n": 1})
    await asyncio.wait_for(client.got_body.wait(), 5)
    while not any(m.get("body") == HEARTBEAT for _, m in client.sent):
        await asyncio.sleep(0.01)
    event_at = next(t for t, m in client.sent if b"data:" in m.get("body", b""))
    heartbeat_at = next(t for t, m in client.sent if m.get("body") == HEARTBEAT)
    assert heartbeat_at - event_at >= beat
    feed.close()
    await asyncio.wait_for(task, 5)


def _disconnect_hook() -> tuple[asyncio.Event, Callable[[], Awaitable[None]]]:
    """A disconnect hook, and the event it sets when called."""
    hooked = asyncio.Event()

    async def on_disconnect() -> None:
        hooked.set()

    return hooked, on_disconnect


async def test_a_client_that_leaves_ends_the_stream_runs_the_hook_and_frees_the_slot() -> None:
    feed, slots, client = RunFeed("r", limit=10), StreamSlots(10), Client()
    hooked, on_disconnect = _disconnect_hook()
    task = asyncio.create_task(stream(feed, ServerLimits(), slots, on_disconnect=on_disconnect)(
        {}, client.receive, client.send))
    await asyncio.sleep(0.01)
    client.leave()
    await asyncio.wait_for(task, 5)
    assert hooked.is_set() and slots.held("k") == 0 and not client.ended()


async def test_a_quiet_stream_past_its_lifetime_ends_without_the_disconnect_hook() -> None:
    feed, slots, client = RunFeed("r", limit=10), StreamSlots(10), Client()
    hooked, on_disconnect = _disconnect_hook()
    limits = ServerLimits(max_stream_seconds=0.05, heartbeat_seconds=10)
    await asyncio.wait_for(stream(feed, limits, slots, on_disconnect=on_disconnect)(
        {}, client.receive, client.send), 5)
    assert client.ended() and not hooked.is_set() and slots.held("k") == 0
    assert client.bodies() == [b""]
