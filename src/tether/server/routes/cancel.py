"""Cancelling runs: one (`POST /threads/{id}/runs/{run_id}/cancel`) or many (`POST /runs/cancel`).

A cancel is answered once it is durable: 202 with the run while it is stopping, 200 with its
terminal record once it has ended (`wait=1`, or a run that had already ended: cancelling a
finished run is not an error). `action=rollback` also removes the checkpoints the cancelled run
wrote, once it has ended; its record stays, with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import ValidationError

from tether.server import errors
from tether.server.auth import Principal
from tether.server.context import Caller, Server, ServerState, parts, visible
from tether.server.errors import issue
from tether.server.express import segments
from tether.server.guards import PRINCIPAL
from tether.server.models import CancelRequest, RunsCancel
from tether.server.payload import Text
from tether.server.routes.runs import run_out
from tether.server.wire import WireJSON
from tether.types import CancelReason, RunInfo, RunStatus

router = APIRouter()
Action = Literal["interrupt", "rollback"]
_rollbacks: set[asyncio.Task[None]] = set()
_STOPPED = frozenset({RunStatus.CANCELLED, RunStatus.TIMEOUT})


def reason_for(caller: Principal, action: str, message: str | None, where: str) -> CancelReason:
    """The reason a cancel through the API records."""
    by = f"api:{caller.tenant}" if caller.tenant is not None else "api"
    text = message or f"{action} requested via {where}"
    return CancelReason("user", text, by, evidence={"action": action})


async def cancel_one(server: ServerState, before: RunInfo, reason: CancelReason, *,
                     wait: bool, action: str) -> RunInfo:
    """Cancel a run (durable before this returns); with `wait`, wait for its end, up to the
    server's `cancel_wait_seconds` (then answer the run as it stands: still `cancelling`); with
    `rollback`, drop its checkpoints once it has ended.

    Cancellation:
        The request is durable before this returns or is interrupted; the rollback, if any,
        completes in the background.
    """
    run_id = before.run_id
    try:
        info = await server.launcher.cancel(run_id, reason, wait=wait)
    except TimeoutError:
        # The request is durable (the launcher's promise); the run is still stopping.
        info = await server.store.aget_run(run_id) or before
    if action == "rollback" and not before.terminal:
        if info.terminal:
            await _rollback(server, info)
        else:
            task = asyncio.get_running_loop().create_task(_rollback_later(server, run_id))
            _rollbacks.add(task)
            task.add_done_callback(_rollbacks.discard)
    return info


async def _rollback(server: ServerState, info: RunInfo) -> None:
    if info.status in _STOPPED:
        await server.store.adelete_run_checkpoints(info.run_id)


async def _rollback_later(server: ServerState, run_id: str) -> None:
    await _rollback(server, await server.launcher.wait(run_id, None))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(thread_id: str, run_id: str, *, request: Request, wait: bool = False,
                     action: Action = "interrupt",
                     reason: Annotated[Text | None, Query(max_length=2000)] = None
                     ) -> WireJSON:
    """Cancel a run; 202 while it stops, 200 once it has ended. Body (optional):
    `{"reason": "..."}` (or the `reason` query parameter).

    Cancellation:
        The cancel is durable before the answer is sent; a client that leaves after sending the
        request does not stop it. Safe to retry: a repeat answers with the first request's reason.
    """
    server, caller = parts(request)
    before = await server.run_to_cancel(caller, thread_id, run_id)
    message = reason or await _body_reason(request)
    return await _answer(server, caller, before, message, wait=wait, action=action)


async def _answer(server: ServerState, caller: Principal, before: RunInfo, message: str | None,
                  *, wait: bool, action: str) -> WireJSON:
    """`cancel_run`'s answer, for the route and for its express lane."""
    why = reason_for(caller, action, message, "POST /threads/{thread_id}/runs/{run_id}/cancel")
    info = await cancel_one(server, before, why, wait=wait, action=action)
    return WireJSON(await run_out(server, info), status_code=200 if info.terminal else 202)


_WAIT = {"0": False, "1": True, "false": False, "true": True}
"""The values of `wait` the express lane reads (as FastAPI reads them); any other is left to
the route, which takes or refuses it."""
_ACTIONS = frozenset({"interrupt", "rollback"})


async def express(scope: MutableMapping[str, Any]) -> Response | None:
    """`cancel_run` as an express lane (`tether.server.express`): a request without a body and
    with no query parameters but `wait` and `action` (each at most once, with a value the lane
    reads), of a run the caller may see; None, having changed nothing, for any other.

    Cancellation:
        As `cancel_run`.
    """
    found = segments(scope, 5)
    if found is None or found[0] != "threads" or found[2] != "runs" or found[4] != "cancel":
        return None
    query = _query(scope.get("query_string", b""))
    principal = scope.get(PRINCIPAL)
    if query is None or not isinstance(principal, Principal):
        return None
    server: ServerState = scope["app"].state.tether
    try:
        before = await server.run_to_cancel(principal, found[1], found[3])
    except HTTPException:
        return None  # the route answers the refusal (it reads the run again: a rare path)
    try:
        return await _answer(server, principal, before, None, **query)
    except Exception as exc:
        answer = errors.answer_for(exc)
        if answer is None:
            raise
        return answer


def _query(raw: bytes) -> dict[str, Any] | None:
    """`wait` and `action` from a query string as the lane takes it (see `express`)."""
    found: dict[str, Any] = {"wait": False, "action": "interrupt"}
    seen: set[str] = set()
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return None
        seen.add(name)
        if name == "wait" and value in _WAIT:
            found["wait"] = _WAIT[value]
        elif name == "action" and value in _ACTIONS:
            found["action"] = value
        else:
            return None
    return found


async def _body_reason(request: Request) -> str | None:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return CancelRequest.model_validate_json(raw).reason
    except ValidationError as exc:
        raise HTTPException(422, [issue(e["msg"], ("body", *e["loc"]), e["type"])
                                  for e in exc.errors()]) from None


@router.post("/runs/cancel", status_code=204)
async def cancel_runs(body: RunsCancel, server: Server, caller: Caller,
                      action: Action = "interrupt") -> Response:
    """Cancel the given runs of a thread, or every pending and/or running run of the caller.

    The cancels are requested together, so that the runs of this process join one batch (one
    store transaction, `tether.runs.batch`) instead of one transaction after the other; each is
    still answered (and fails) alone, and the first failure, if any, is the answer.

    Cancellation:
        Every cancel is requested before this waits; each is durable before this returns or
        is interrupted; a repeat re-answers the runs already stopped. Safe to retry.
    """
    why = reason_for(caller, action, None, "POST /runs/cancel")
    selected = await _selected(server, caller, body)
    outcomes = await asyncio.gather(
        *(cancel_one(server, before, why, wait=False, action=action) for before in selected),
        return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return Response(status_code=204)


async def _selected(server: ServerState, caller: Principal, body: RunsCancel) -> list[RunInfo]:
    store = server.store
    if body.status is None:
        assert body.thread_id is not None and body.run_ids is not None
        record = await server.thread(caller, body.thread_id)
        found = [r for r in [await store.aget_run(i) for i in body.run_ids]
                 if r is not None and r.thread_id == record.thread_id]
    else:
        wanted: list[Any] = (["pending", "running"] if body.status == "all" else [body.status])
        found = [r for status in wanted for r in await store.alist_runs(status=status)]
        found = [r for r in found if await _mine(server, caller, r)]
    if not found:
        raise HTTPException(404, "No runs found to cancel.")
    return found


async def _mine(server: ServerState, caller: Principal, info: RunInfo) -> bool:
    if caller.tenant is None:
        return True
    record = await server.store.aget_thread(info.thread_id) if info.thread_id else None
    return record is not None and visible(record, caller)
