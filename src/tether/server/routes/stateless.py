"""Stateless runs: each on a new thread, deleted once the run ends unless `on_completion="keep"`
(`POST /runs`, `/runs/batch`, `/runs/stream`, `/runs/wait`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from tether.server.auth import Principal
from tether.server.context import ServerState, parts, stamped
from tether.server.launcher import RunOrder
from tether.server.models import RunCreate
from tether.server.orders import assistant_for, new_thread_id, order_for
from tether.server.routes.runs import (
    Record,
    canceller,
    final_output,
    run_out,
    start_streaming,
)
from tether.server.sse import STREAM_RESPONSE, DelayedJson, EventStream
from tether.server.wire import WireJSON

router = APIRouter()


def _order(server: ServerState, caller: Principal, body: RunCreate) -> RunOrder:
    """The order of a stateless run, checked (no thread made yet).

    Raises:
        HTTPException: 404 for an unknown assistant, 422 for a config or interrupt a run of
            it would refuse.
    """
    return order_for(assistant_for(server, body), new_thread_id(), body, caller,
                     temporary=body.on_completion != "keep")


async def _ordered(server: ServerState, caller: Principal, order: RunOrder) -> RunOrder:
    """`order` once its new thread is recorded, with the assistant's graph in its metadata.

    Cancellation:
        One store write (the thread); no run is started.
    """
    assistant = order.assistant
    metadata = stamped({"graph_id": assistant.graph_id, "assistant_id": assistant.assistant_id},
                       caller)
    await server.store.aput_thread(order.thread_id, metadata)
    return order


@router.post("/runs", response_model=Record)
async def create_stateless(body: RunCreate, request: Request) -> Response:
    """Start a background run on a new thread (deleted once it ends, with the run's record,
    unless `on_completion="keep"`); its record.

    Cancellation:
        As `create_run`: the run is recorded and started before the answer; not idempotent.
    """
    server, caller = parts(request)
    info = await server.launcher.start(await _ordered(server, caller,
                                                      _order(server, caller, body)))
    return WireJSON(await run_out(server, info),
                    headers={"Content-Location": f"/runs/{info.run_id}"})


@router.post("/runs/batch", response_model=list[Record])
async def create_stateless_batch(body: list[RunCreate], request: Request) -> Response:
    """Start background runs, each as `POST /runs` would; their records, in order. Every
    order is checked before any run starts: a bad one (an unknown assistant, a config a run
    refuses) answers its error and starts none.

    Cancellation:
        The runs are recorded and started one after the other before the answer; a client
        gone midway leaves the ones started running. Not idempotent.
    """
    server, caller = parts(request)
    orders = [_order(server, caller, one) for one in body]
    started: list[dict[str, Any]] = []
    for order in orders:
        info = await server.launcher.start(await _ordered(server, caller, order))
        started.append(await run_out(server, info))
    return WireJSON(started)


@router.post("/runs/stream", responses=STREAM_RESPONSE)
async def stream_stateless(body: RunCreate, request: Request) -> EventStream:
    """Run on a new thread (deleted afterwards unless `on_completion="keep"`) and stream it.

    Cancellation:
        As `stream_run`; the thread is deleted once the run ends (unless `on_completion="keep"`).
    """
    server, caller = parts(request)
    order = await _ordered(server, caller, _order(server, caller, body))
    return await start_streaming(server, caller, order, body, {
        "Location": f"/runs/{order.run_id}/stream", "Content-Location": f"/runs/{order.run_id}"})


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, request: Request) -> DelayedJson:
    """Run on a new thread (deleted afterwards unless `on_completion="keep"`); its output.

    Cancellation:
        As `wait_run`; the thread is deleted once the run ends (unless `on_completion="keep"`).
    """
    server, caller = parts(request)
    order = await _ordered(server, caller, _order(server, caller, body))
    info = await server.launcher.start(order)
    hook = canceller(server, info.run_id, "client disconnected while waiting for the run "
                                          "(on_disconnect=cancel)") \
        if body.on_disconnect == "cancel" else None
    return DelayedJson(lambda: final_output(server, info.run_id),
                       headers={"Content-Location": f"/runs/{info.run_id}"},
                       limits=server.limits, on_disconnect=hook)
