"""tether's own routes: the web page, the server's description, and what the page calls (runs
across threads, a run's audit log and full stream, resume)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

import tether
from tether.checkpoint.ids import uuid7
from tether.server.auth import Principal
from tether.server.context import Caller, Server, ServerState, run_visible, visible
from tether.server.errors import not_found
from tether.server.launcher import RunOrder
from tether.server.models import ResumeRequest
from tether.server.orders import checked_config
from tether.server.routes.runs import QueryLimit, query_modes, run_out, subscription, take_slot
from tether.server.sse import EventStream
from tether.server.wire import RunFacts, jsonable
from tether.types import RunInfo, utcnow

STATIC = Path(__file__).resolve().parent.parent / "static"
TetherStatus = Literal["pending", "running", "cancelling", "interrupted", "success", "error",
                       "cancelled", "timeout"]
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


def owned_run(server: ServerState, caller: Principal, run_id: str) -> RunInfo:
    """The caller's run, by id alone.

    Raises:
        HTTPException: 404 for no such run, or another tenant's.
    """
    info = server.store.get_run(run_id)
    record = server.store.get_thread(info.thread_id) if info and info.thread_id else None
    if info is None or not run_visible(info, caller) or (
            caller.tenant is not None and (record is None or not visible(record, caller))):
        raise not_found("run", run_id)
    return info


@router.get("/tether/runs")
async def list_all_runs(server: Server, caller: Caller, limit: QueryLimit = 50,
                        status: TetherStatus | None = None) -> dict[str, Any]:
    """The caller's runs across threads, newest first, with the server's clock.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    found: list[dict[str, Any]] = []
    tenants: dict[str, bool] = {}
    for info in server.store.list_runs(status=status, limit=limit * 4):
        thread_id = info.thread_id or ""
        if thread_id not in tenants:
            record = server.store.get_thread(thread_id) if thread_id else None
            tenants[thread_id] = caller.tenant is None or (
                record is not None and visible(record, caller))
        if tenants[thread_id]:
            found.append(run_out(server, info))
        if len(found) >= limit:
            break
    return {"now": utcnow().isoformat(), "runs": found}


@router.get("/tether/runs/{run_id}")
async def run_detail(run_id: str, server: Server, caller: Caller) -> dict[str, Any]:
    """A run with its audit log (`store.events`) and where it stands (`store.load`).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    info = owned_run(server, caller, run_id)
    events = [{"phase": e.phase, "at": e.at.isoformat(), "node": e.node,
               "detail": jsonable(e.detail)} for e in server.store.events(run_id)]
    snap = server.store.load(run_id)
    snapshot = {"step": snap.step, "next": list(snap.next), "values": jsonable(snap.values),
                "cancelled_tasks": list(snap.cancelled_tasks),
                "pending_writes": jsonable([list(w) for w in snap.pending_writes]),
                "checkpoint_id": snap.checkpoint_id}
    return {"now": utcnow().isoformat(), "run": run_out(server, info), "events": events,
            "snapshot": snapshot}


@router.get("/tether/runs/{run_id}/stream")
async def run_stream(run_id: str, request: Request, server: Server,
                     caller: Caller) -> EventStream:
    """Every event of the run's stream kept so far, then the rest live (SSE).

    Cancellation:
        Only this stream stops when the client leaves; the run goes on.
    """
    info = owned_run(server, caller, run_id)
    modes = query_modes(request)
    last = request.headers.get("last-event-id", "")
    after = int(last) if last.strip().isdigit() else None
    slot = take_slot(server, caller)
    return EventStream(subscription(server, info, modes, after), slot=slot, headers={},
                       limits=server.limits)


@router.post("/tether/runs/{run_id}/resume")
async def resume_run(run_id: str, body: ResumeRequest, server: Server,
                     caller: Caller) -> dict[str, Any]:
    """Continue a cancelled, timed-out or failed run from its final checkpoint: a new run.

    Cancellation:
        The new run is recorded and started before the answer; a retry starts another.
    """
    info = owned_run(server, caller, run_id)
    graph_id = str(info.metadata.get("graph", ""))
    assistant = server.assistants.get(graph_id)
    if assistant is None or info.thread_id is None:
        raise HTTPException(409, f"run {run_id!r} is not of a graph this server serves")
    modes = tuple(body.stream_mode) if isinstance(body.stream_mode, list) else (body.stream_mode,)
    facts = RunFacts(assistant.assistant_id, {"resumed_from": run_id}, "enqueue",
                     {"resume_of": run_id, "stream_mode": list(modes)})
    order = RunOrder(assistant=assistant, thread_id=info.thread_id, run_id=uuid7(),
                     config=checked_config(assistant, body.config), stream_modes=modes,
                     multitask_strategy="enqueue", facts=facts, resume_of=run_id,
                     tenant=caller.tenant)
    return run_out(server, await server.launcher.start(order))
