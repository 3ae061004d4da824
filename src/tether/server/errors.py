"""Refusals as HTTP answers, in one place: tether's exceptions each become a status and a
`detail`; every 422 has the shape the OpenAPI document declares (a list of `{loc, msg, type}`),
whoever raised it; and the other refusals are documented on every route."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tether.errors import (
    CheckpointNotFound,
    ConfigError,
    EmptyInputError,
    GraphCompileError,
    InvalidResumeError,
    InvalidUpdateError,
    RunError,
    RunNotFound,
    SerializationError,
    ThreadBusyError,
)
from tether.server.wire import WireJSON

STATUS: tuple[tuple[type[Exception], int], ...] = (
    (RunNotFound, 404),
    (CheckpointNotFound, 404),
    (ThreadBusyError, 409),
    (InvalidResumeError, 409),
    (ConfigError, 422),
    (InvalidUpdateError, 422),
    (EmptyInputError, 422),
    (GraphCompileError, 422),
    (SerializationError, 422),
    (RunError, 409),
)


class Refusal(BaseModel):
    """The body of every refusal but a 422: what is wrong, and tether's exception type."""

    detail: str
    error: str | None = None


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Refusal, "description": "The body is not readable as JSON."},
    401: {"model": Refusal, "description": "No API key, or an unknown one."},
    403: {"model": Refusal, "description": "A server without keys answers only on loopback."},
    404: {"model": Refusal, "description": "No such thread, run, assistant or checkpoint."},
    409: {"model": Refusal, "description": "The thread or run is not in a state to do this."},
    413: {"model": Refusal, "description": "The body is larger than the server takes."},
    429: {"model": Refusal, "description": "Too many open event streams for this key."},
}
"""The refusals any route may answer, for the OpenAPI document."""


def not_found(what: str, key: str) -> HTTPException:
    """404 for a thread, run or assistant that does not exist or belongs to another tenant."""
    return HTTPException(404, f"{what} {key!r} not found")


def invalid(message: str, *where: str | int) -> HTTPException:
    """422 for a request the server refuses, shaped as a validation error; `where` is the
    place of the offending value (`"query", "limit"`...)."""
    return HTTPException(422, [issue(message, where or ("body",), "value_error")])


def issue(message: str, where: Sequence[Any], kind: str) -> dict[str, Any]:
    """One item of a 422's `detail`."""
    loc = [part if isinstance(part, (str, int)) else str(part) for part in where]
    return {"loc": loc, "msg": message, "type": kind}


def install(app: FastAPI) -> None:
    """Answer tether's exceptions with their statuses instead of 500, and give every 422 the
    declared shape."""
    for exc_type, make in _ANSWERS.items():
        app.add_exception_handler(exc_type, _handler(make))


def answer_for(exc: Exception) -> Response | None:
    """The answer `install`'s handlers give `exc`, for code that runs outside FastAPI's routing
    (`tether.server.express`): the handler of the first class of its MRO that has one, as
    Starlette picks it; None for an exception they leave to the server's 500."""
    for cls in type(exc).__mro__:
        make = _ANSWERS.get(cls)
        if make is not None:
            return make(exc)
    return None


def _handler(make: Callable[[Exception], Response],
             ) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(_request: Request, exc: Exception) -> Response:
        return make(exc)

    return handle


def _status(status: int) -> Callable[[Exception], Response]:
    def make(exc: Exception) -> Response:
        name = type(exc).__name__
        if status == 422:
            return WireJSON({"detail": [issue(str(exc), ("body",), _snake(name))],
                             "error": name}, 422)
        return WireJSON({"detail": str(exc), "error": name}, status)

    return make


def _validation(exc: Exception) -> Response:
    # The offending input is not echoed: it may be what cannot be written as JSON.
    assert isinstance(exc, RequestValidationError)
    detail = [issue(str(e.get("msg", "")), e.get("loc", ()), str(e.get("type", "value_error")))
              for e in exc.errors()]
    return WireJSON({"detail": detail}, 422)


def _http(exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail: Any = exc.detail
    if exc.status_code == 422 and not isinstance(detail, list):
        detail = [issue(str(detail), ("body",), "value_error")]
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return WireJSON({"detail": detail}, exc.status_code, headers=exc.headers)


_ANSWERS: dict[type[Exception], Callable[[Exception], Response]] = {
    **{exc_type: _status(status) for exc_type, status in STATUS},
    RequestValidationError: _validation,
    StarletteHTTPException: _http,
}
"""Each exception class with an answer of its own, and how it is answered."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


__all__ = ["RESPONSES", "STATUS", "Refusal", "answer_for", "install", "invalid", "issue",
           "not_found"]
