"""A response's head and body leave in one write (`tether.server.onewrite`): the head is held
until the response's next write, or the end of the loop's turn; bytes and order unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from tether.server.onewrite import HeadHolding, protocol

pytestmark = pytest.mark.anyio

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Wire:
    """A transport that records each write (an empty one sends nothing, as asyncio's and
    uvloop's)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        if data:
            self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def test_a_head_goes_out_with_the_body_written_after_it() -> None:
    wire = Wire()
    held = HeadHolding(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(HEAD)
    assert wire.writes == [] and held.get_write_buffer_size() == len(HEAD)
    held.write(b"{}")
    held.write(b"more")  # not a head: straight through
    await asyncio.sleep(0)
    assert wire.writes == [HEAD + b"{}", b"more"]


async def test_a_head_alone_goes_out_at_the_end_of_the_loops_turn() -> None:
    wire = Wire()
    held = HeadHolding(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(HEAD)
    await asyncio.sleep(0)
    assert wire.writes == [HEAD]
    held.write(b"data: 1\n\n")
    assert wire.writes == [HEAD, b"data: 1\n\n"]


async def test_close_sends_the_head_first_and_abort_drops_it() -> None:
    wire = Wire()
    held = HeadHolding(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(HEAD)
    held.close()
    assert wire.writes == [HEAD] and wire.closed
    other = Wire()
    dropped = HeadHolding(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    dropped.write(HEAD)
    dropped.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted


@pytest.mark.parametrize("http", ["auto", "h11"])
async def test_uvicorns_protocol_sends_a_whole_response_in_one_write(http: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"11")]})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    config = Config(app, http=protocol(http), lifespan="off", log_level="warning")
    config.load()
    connection = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={})
    wire = Wire()
    connection.connection_made(wire)  # type: ignore[arg-type]
    connection.data_received(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")  # type: ignore[attr-defined]
    for _ in range(20):
        await asyncio.sleep(0)
    (sent,) = wire.writes
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and sent.endswith(b'\r\n\r\n{"ok":true}')
    connection.connection_lost(None)
