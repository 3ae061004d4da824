"""The web page and the server's description (`/`, `/ok`, `/info`, `/tether/config`); what the
page calls is in `tether.server.routes.console`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

import tether
from tether.server.context import Server

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter()
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'")


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The web page.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store",
                                                        "content-security-policy": CSP})


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """No icon.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return Response(status_code=204)


@router.get("/ok")
async def ok() -> dict[str, bool]:
    """Liveness.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return {"ok": True}


@router.get("/info")
async def info() -> dict[str, Any]:
    """What this server is (the Agent Server's `/info`).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return {"version": tether.__version__, "server": "tether",
            "flags": {"assistants": True, "crons": False, "langsmith": False,
                      "strict_resume": True}}


@router.get("/tether/config")
async def config(server: Server) -> dict[str, Any]:
    """What the page needs before it has a key: whether it needs one.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return {"auth": server.auth, "version": tether.__version__}
