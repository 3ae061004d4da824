"""The gate every request passes before a route sees it: the API key, the address of the
client of a server without keys, the size of the body, and no NUL in the path or the query
(no stored name holds one, and PostgreSQL's text cannot).

A refused request is answered here (401, 403, 404, 413, 422) and never reaches a route, so nothing
changes. The body is read here, up to the limit, and replayed to the route. A websocket
connection passes the same gate (the server serves none today: the gate must not depend on
that), and is closed before it is accepted when refused.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from tether.server.auth import HEADER, LOCAL, ApiKeys, is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PRINCIPAL = "tether.principal"
"""The scope key where the caller's `Principal` is left for the routes."""

PUBLIC_PATHS = frozenset({"/", "/ok", "/info", "/favicon.ico", "/tether/config"})
PUBLIC_PREFIXES = ("/static/",)


class Guard:
    """ASGI middleware: authenticate, check the bind address without auth, bound the body.

    Args:
        app: the application behind the gate.
        keys: the accepted keys; None runs without auth (only on a loopback address).
        max_body_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, *, keys: ApiKeys | None, max_body_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        refusal = self._authenticate(scope)
        if refusal is None and "\x00" in scope.get("path", ""):
            # No thread, run or checkpoint has a NUL in its name (and a store cannot look one
            # up: PostgreSQL's text holds none).
            refusal = 404, "not found: a path cannot hold a NUL character"
        if refusal is not None:
            await _answer(send, *refusal)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query:
            # Ids, names and filters given in the query are looked up as text, which holds none
            # (PostgreSQL's cannot): the same 422 as a validation error, naming the parameter.
            await _answer(send, 422, _nul_in_query(query.decode("latin-1")))
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, self._too_large())
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await _answer(send, 413, self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._authenticate(scope) is None:
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})  # policy violation

    def _authenticate(self, scope: Scope) -> tuple[int, str] | None:
        if self.keys is None:
            # The client's address: the server's is loopback whenever it listens there, even
            # for a connection that a proxy on this host forwards from anywhere.
            client = scope.get("client")
            if client is not None and not is_loopback(str(client[0])):
                return 403, ("this server runs without API keys and answers only clients on "
                             "a loopback address")
            scope[PRINCIPAL] = LOCAL
            return None
        path = scope.get("path", "")
        principal = self.keys.principal(_header(scope, HEADER.encode()))
        if principal is not None:
            scope[PRINCIPAL] = principal
            return None
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        return 401, f"missing or invalid API key (send it in the {HEADER!r} header)"

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it grows past `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left; the route will see the disconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _nul_in_query(query: str) -> list[dict[str, Any]]:
    names = [name for name, value in parse_qsl(query, keep_blank_values=True)
             if "\x00" in name or "\x00" in value]
    return [{"loc": ["query", name.replace("\x00", "\\x00")],
             "msg": "a query parameter cannot hold a NUL character (%00)",
             "type": "value_error"} for name in names or ["?"]]


async def _answer(send: Send, status: int, detail: str | list[dict[str, Any]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", HEADER.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["PRINCIPAL", "Guard"]
