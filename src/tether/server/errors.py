"""tether's exceptions as HTTP answers, in one place: each becomes a status and a `detail`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from tether.errors import (
    CheckpointNotFound,
    ConfigError,
    EmptyInputError,
    GraphCompileError,
    InvalidResumeError,
    InvalidUpdateError,
    RunError,
    RunNotFound,
    ThreadBusyError,
)

STATUS: tuple[tuple[type[Exception], int], ...] = (
    (RunNotFound, 404),
    (CheckpointNotFound, 404),
    (ThreadBusyError, 409),
    (InvalidResumeError, 409),
    (ConfigError, 422),
    (InvalidUpdateError, 422),
    (EmptyInputError, 422),
    (GraphCompileError, 422),
    (RunError, 409),
)


def not_found(what: str, key: str) -> HTTPException:
    """404 for a thread, run or assistant that does not exist or belongs to another tenant."""
    return HTTPException(404, f"{what} {key!r} not found")


def install(app: FastAPI) -> None:
    """Answer tether's exceptions with their statuses instead of 500."""
    for exc_type, status in STATUS:
        app.add_exception_handler(exc_type, _handler(status))


def _handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status)

    return handle


__all__ = ["STATUS", "install", "not_found"]
