"""The express lane: the hottest request answered before FastAPI's routing (a run's cancel,
`POST /threads/{thread_id}/runs/{run_id}/cancel` without a body).

FastAPI sends every request through its exception and exit-stack middlewares, matches it against
the routes, builds a `Request` and solves the route's parameters: measured, 150-300 µs of the
server's CPU per request on the bench's machine, before a cancel even reaches the store. A
*lane* answers a request it fully understands (its method, the shape of its path, the query
parameters it knows, each once, with values it reads as FastAPI would, no body) by calling the
same code as its route; anything else — another route, an unknown or repeated parameter, a
value it does not take, a body, a refusal such as a 404 — it declines, and FastAPI answers as
always. So a lane changes no answer, only who computes it; the OpenAPI document still comes from
the routes.

Inside the `Guard`: a lane sees only requests that passed the gate (the caller is in the scope).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.responses import Response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Lane = Callable[[Scope], Awaitable[Response | None]]
"""Answers a request (its scope) or declines it (None) before doing anything that changes
state, so that the app can answer it instead."""


class Express:
    """ASGI middleware: a request without a body goes to each lane of its method in turn; the
    first answer is sent, and a request every lane declines goes on to the app.

    Args:
        app: the application behind.
        lanes: method → the lanes that may answer a request of that method.
    """

    def __init__(self, app: ASGIApp, *, lanes: dict[str, Sequence[Lane]]) -> None:
        self.app = app
        self.lanes = lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path") and _no_body(scope):
            for lane in self.lanes.get(scope["method"], ()):
                response = await lane(scope)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _no_body(scope: Scope) -> bool:
    """True when the headers announce no body (a lane reads none)."""
    for key, value in scope.get("headers") or ():
        name = key.lower()
        if name == b"content-length" and value.strip() not in (b"", b"0"):
            return False
        if name == b"transfer-encoding":
            return False
    return True


def segments(scope: Scope, count: int) -> list[str] | None:
    """The path's `count` segments, as FastAPI's `{name}` parameters read them (the decoded
    path split on `/`, none empty), or None for a path of another shape."""
    path: str = scope.get("path", "")
    parts = path.split("/")
    if len(parts) != count + 1 or parts[0] or not all(parts[1:]):
        return None
    return parts[1:]


__all__ = ["Express", "Lane", "segments"]
