"""`sse_streams`: the client holds each stream unread after its first event, so that its work
does not grow with the events a server manages to send (the row would then time the client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from bench.server import hold_streams

EVENT = b'event: values\r\ndata: {"count": 1}\r\n\r\n'


class _Server:
    """What `hold_streams` asks of a server process, for a server behind a mock transport."""

    url = "http://server.test"

    def rss_kib(self) -> None:
        return None


class _Events(httpx.AsyncByteStream):
    """A stream that sends an event whenever the client reads, counting what was read."""

    def __init__(self, pulled: list[int]) -> None:
        self.pulled = pulled

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.pulled.append(1)
            yield EVENT
            await asyncio.sleep(0)  # the other streams' turn, as a network would give it


def _transport(pulled: list[int], cancels: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/threads":
            return httpx.Response(200, json={"thread_id": "t"})
        if request.method == "POST" and path == "/threads/t/runs":
            return httpx.Response(200, json={"run_id": "r"})
        if request.method == "GET" and path == "/threads/t/runs/r":
            return httpx.Response(200, json={"status": "running"})
        if request.method == "GET" and path == "/threads/t/runs/r/stream":
            return httpx.Response(200, stream=_Events(pulled),
                                  headers={"content-type": "text/event-stream"})
        if request.method == "POST" and path == "/threads/t/runs/r/cancel":
            cancels.append(path)
            return httpx.Response(200, json={})
        return httpx.Response(404)

    return httpx.MockTransport(answer)


def test_each_stream_is_read_up_to_its_first_event_only() -> None:
    pulled: list[int] = []
    cancels: list[str] = []
    count = 20
    held = asyncio.run(hold_streams(_Server(), count,  # type: ignore[arg-type]
                                     transport=_transport(pulled, cancels)))
    assert held.received == count
    # One event read a stream, whichever server sends more: the client's work is the same.
    assert len(pulled) == count
    assert cancels == ["/threads/t/runs/r/cancel"]
