"""Runs on threads: start, stream, wait, join, read, list, delete (stateless runs:
`tether.server.routes.stateless`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from tether.server import errors
from tether.server.auth import Principal
from tether.server.context import Caller, Server, ServerState, parts
from tether.server.errors import invalid
from tether.server.express import segments
from tether.server.feed import RunFeed, Subscription
from tether.server.guards import PRINCIPAL
from tether.server.launcher import RunOrder
from tether.server.limits import StreamSlots
from tether.server.message_events import run_modes
from tether.server.models import MAX_OFFSET, STREAM_MODES, RunCreate
from tether.server.orders import assistant_for, order_for, prepare_thread
from tether.server.runview import run_record
from tether.server.sse import STREAM_RESPONSE, DelayedJson, EventStream
from tether.server.wire import WireJSON, client_id, error_json, jsonable
from tether.types import CancelReason, RunInfo, RunStatus

router = APIRouter()
Record = dict[str, Any]
"""The declared shape of a run record in the OpenAPI document. The hot routes answer a
`WireJSON` they render themselves (what `run_json` makes is JSON-ready already), so FastAPI
neither validates nor re-encodes it; `response_model=Record` keeps the document as it was."""

_AGENT_TO_TETHER: dict[str, frozenset[RunStatus]] = {
    "pending": frozenset({RunStatus.PENDING}),
    "running": frozenset({RunStatus.RUNNING, RunStatus.CANCELLING}),
    "success": frozenset({RunStatus.SUCCESS}),
    "error": frozenset({RunStatus.ERROR}),
    "timeout": frozenset({RunStatus.TIMEOUT}),
    "interrupted": frozenset({RunStatus.INTERRUPTED, RunStatus.CANCELLED}),
}
_watchers: set[asyncio.Task[None]] = set()


async def run_out(server: ServerState, info: RunInfo) -> dict[str, Any]:
    """A run record as the API returns it (with its `partial_answers`).

    Cancellation:
        Safe: it only reads.
    """
    return await run_record(server, info)


def links(thread_id: str, run_id: str, tail: str) -> dict[str, str]:
    """`Location` (where to reconnect) and `Content-Location` (the run) headers."""
    run = f"/threads/{thread_id}/runs/{run_id}"
    return {"Location": f"{run}/{tail}", "Content-Location": run}


def take_slot(server: ServerState, caller: Principal) -> tuple[StreamSlots, str]:
    """A stream slot for the caller's key.

    Raises:
        HTTPException: 429 when the key holds its limit of open streams.
    """
    if not server.slots.acquire(caller.slot_key):
        raise HTTPException(429, f"too many open event streams for this key "
                                 f"(limit {server.limits.max_streams_per_key})")
    return server.slots, caller.slot_key


def canceller(server: ServerState, run_id: str, message: str) -> Any:
    """An `on_disconnect` hook that cancels the run."""
    async def cancel() -> None:
        reason = CancelReason("user", message, "server")
        await server.launcher.cancel(run_id, reason, wait=False)

    return cancel


async def output_of(server: ServerState, info: RunInfo) -> Any:
    """What a join returns: the last state the run streamed (with `__interrupt__` when it
    paused), `{"__error__": ...}` when it failed, else the thread's state.

    The stream answers only once its end is in it: a run's end can be heard before its last
    chunks (the database polled while the bus still carries them), and an open feed's last
    state may then be older than the end, as is that of a feed closed without them (they
    never came); the thread's durable state answers instead.

    Cancellation:
        Safe: it only reads.
    """
    feed = server.launcher.feed(info.run_id)
    last = (feed.latest(("values", "error"))
            if feed is not None and feed.closed and feed.whole else None)
    if last is not None:
        return {"__error__": last.payload} if last.event == "error" else jsonable(last.payload)
    if info.status is RunStatus.ERROR:
        return {"__error__": error_json(info.error)}
    record = await server.store.aget_thread(info.thread_id) if info.thread_id else None
    snapshot = await server.snapshot(record) if record is not None else None
    if snapshot is None:
        return {}
    values = jsonable(snapshot.values)
    if snapshot.interrupts and isinstance(values, dict):
        values["__interrupt__"] = jsonable(list(snapshot.interrupts))
    return values


async def final_output(server: ServerState, run_id: str) -> Any:
    """Wait for the run to end (or pause); its output (see `output_of`).

    Cancellation:
        Safe: only the waiting stops.
    """
    return await output_of(server, await server.launcher.wait(run_id, None))


async def start_streaming(server: ServerState, caller: Principal, order: RunOrder,
                          body: RunCreate, headers: dict[str, str]) -> EventStream:
    """Start a run and stream it from its first event.

    Cancellation:
        The run is recorded and started before the stream is answered; leaving the stream cancels
        the run only with `on_disconnect="cancel"`.
    """
    slot = take_slot(server, caller)
    try:
        info = await server.launcher.start(order)
    except BaseException:
        slot[0].release(slot[1])
        raise
    hook = None
    if body.on_disconnect == "cancel":
        hook = canceller(server, info.run_id,
                         "client disconnected from the run stream (on_disconnect=cancel)")
    sub = subscription(server, info, body.modes, after=None)
    headers = headers or links(client_id(order.thread_id), info.run_id, "stream")
    return EventStream(sub, slot=slot, headers=headers, limits=server.limits,
                       on_disconnect=hook, modes=body.modes)


def subscription(server: ServerState, info: RunInfo, modes: tuple[str, ...] | None,
                 after: int | None) -> Subscription:
    """A cursor over the run's feed; for a run with no feed here, one that ends with it."""
    feed = server.launcher.feed(info.run_id)
    if feed is None:
        feed = RunFeed(info.run_id, limit=1)
        if info.terminal:
            feed.close()
        else:
            watcher = asyncio.get_running_loop().create_task(_close_at_end(server, feed))
            _watchers.add(watcher)
            watcher.add_done_callback(_watchers.discard)
    return feed.subscribe(run_modes(modes) if modes is not None else None, after)


async def _close_at_end(server: ServerState, feed: RunFeed) -> None:
    try:
        await server.launcher.wait(feed.run_id, None)
    finally:
        feed.close()


# -- runs on a thread ------------------------------------------------------------------------


async def _order(server: ServerState, caller: Principal, thread_id: str,
                 body: RunCreate) -> RunOrder:
    assistant = assistant_for(server, body)
    stored = await prepare_thread(server, caller, thread_id, assistant, body.if_not_exists)
    return order_for(assistant, stored, body, caller)


@router.post("/threads/{thread_id}/runs", response_model=Record)
async def create_run(thread_id: str, body: RunCreate, request: Request) -> Response:
    """Start a background run.

    Cancellation:
        The run is recorded and started before the answer; it runs on whatever the client does next.
        Not idempotent: a retry starts another run.
    """
    server, caller = parts(request)
    info = await server.launcher.start(await _order(server, caller, thread_id, body))
    return WireJSON(await run_out(server, info), headers={
        "Content-Location": f"/threads/{thread_id}/runs/{info.run_id}"})


@router.post("/threads/{thread_id}/runs/stream", responses=STREAM_RESPONSE)
async def stream_run(thread_id: str, body: RunCreate, request: Request) -> EventStream:
    """Start a run and stream it (SSE).

    Cancellation:
        As `create_run`; leaving the stream cancels the run only with `on_disconnect="cancel"`.
    """
    server, caller = parts(request)
    order = await _order(server, caller, thread_id, body)
    return await start_streaming(server, caller, order, body, {})


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, request: Request) -> DelayedJson:
    """Start a run and answer with its output once it has ended.

    Cancellation:
        As `create_run`; leaving before the answer cancels the run only with
        `on_disconnect="cancel"`.
    """
    server, caller = parts(request)
    info = await server.launcher.start(await _order(server, caller, thread_id, body))
    hook = None
    if body.on_disconnect == "cancel":
        hook = canceller(server, info.run_id, "client disconnected while waiting for the run "
                                              "(on_disconnect=cancel)")
    return DelayedJson(lambda: final_output(server, info.run_id),
                       headers=links(thread_id, info.run_id, "join"), limits=server.limits,
                       on_disconnect=hook)


AgentStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
QueryLimit = Annotated[int, Query(ge=1, le=1000)]
QueryOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


@router.get("/threads/{thread_id}/runs", response_model=list[Record])
async def list_runs(thread_id: str, *, request: Request, limit: QueryLimit = 10,
                    offset: QueryOffset = 0, status: AgentStatus | None = None) -> Response:
    """The thread's runs, newest first.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    server, caller = parts(request)
    record = await server.thread(caller, thread_id)
    runs = await server.store.alist_runs(thread_id=record.thread_id)
    if status is not None:
        runs = [r for r in runs if r.status in _AGENT_TO_TETHER[status]]
    return WireJSON([await run_out(server, r) for r in runs[offset:offset + limit]])


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=Record)
async def get_run(thread_id: str, run_id: str, request: Request) -> Response:
    """A run.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    server, caller = parts(request)
    return WireJSON(await run_out(server, await server.run(caller, thread_id, run_id)))


async def express_get(scope: MutableMapping[str, Any]) -> Response | None:
    """`get_run` as an express lane (`tether.server.express`): a request with no query string,
    of a run the caller may see; None, having changed nothing, for any other (the route then
    answers it, a refusal included). The read every client polls while it waits for a run.

    Cancellation:
        As `get_run`.
    """
    found = segments(scope, 4)
    if found is None or found[0] != "threads" or found[2] != "runs" \
            or scope.get("query_string"):
        return None
    principal = scope.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        return None
    server: ServerState = scope["app"].state.tether
    try:
        return WireJSON(await run_out(server, await server.run(principal, found[1], found[3])))
    except HTTPException:
        return None  # a refusal: the route answers it (it reads the run again: a rare path)
    except Exception as exc:
        answer = errors.answer_for(exc)
        if answer is None:
            raise
        return answer


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(thread_id: str, run_id: str, server: Server, caller: Caller) -> Response:
    """Delete a run that has ended or paused: its record and audit log (the thread's
    checkpoints stay). 409 for a run in flight: cancel it first.

    Cancellation:
        One store transaction: done or not done; safe to retry (a repeat is 404).
    """
    info = await server.run(caller, thread_id, run_id)
    if not info.status.at_rest:
        raise HTTPException(409, f"run {run_id!r} is {info.status.value}: cancel it first")
    await server.store.adelete_run(run_id)
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, request: Request,
                   cancel_on_disconnect: bool = False) -> DelayedJson:
    """Wait for the run to end; its output.

    Cancellation:
        Only the waiting stops when the client leaves (the run goes on) unless
        `cancel_on_disconnect`. Safe to retry.
    """
    server, caller = parts(request)
    await server.run(caller, thread_id, run_id)
    hook = canceller(server, run_id, "client disconnected from join (cancel_on_disconnect)") \
        if cancel_on_disconnect else None
    return DelayedJson(lambda: final_output(server, run_id),
                       headers=links(thread_id, run_id, "join"), limits=server.limits,
                       on_disconnect=hook)


@router.get("/threads/{thread_id}/runs/{run_id}/stream", responses=STREAM_RESPONSE)
async def join_stream(thread_id: str, run_id: str, *, request: Request,
                      cancel_on_disconnect: bool = False) -> EventStream:
    """Follow a run's stream from now (or after `Last-Event-ID`) to its end (SSE).

    Cancellation:
        As `join_run`.
    """
    server, caller = parts(request)
    info = await server.run(caller, thread_id, run_id)
    modes = query_modes(request) or _requested_modes(server, run_id)
    after = _last_event_id(request)
    facts = server.launcher.facts(run_id)
    if after is None and facts is not None and facts.kwargs.get("resumable"):
        after = -1
    slot = take_slot(server, caller)
    hook = canceller(server, run_id, "client disconnected from the run stream "
                                     "(cancel_on_disconnect)") if cancel_on_disconnect else None
    feed = await server.launcher.follow(run_id)
    if after is None and feed is not None:
        after = feed.next_seq - 1
    sub = subscription(server, info, modes, after)
    return EventStream(sub, slot=slot, headers=links(thread_id, run_id, "stream"),
                       limits=server.limits, on_disconnect=hook, modes=modes)


def query_modes(request: Request) -> tuple[str, ...] | None:
    """`stream_mode` from the query: repeated, or a JSON array (as the Agent Server takes it).

    Raises:
        HTTPException: 422 for an unknown mode.
    """
    found: list[str] = []
    for value in request.query_params.getlist("stream_mode"):
        if value.startswith("["):
            try:
                found.extend(str(v) for v in json.loads(value))
            except ValueError:
                raise invalid(f"stream_mode {value!r} is not a JSON array",
                              "query", "stream_mode") from None
        elif value:
            found.append(value)
    unknown = [m for m in found if m not in STREAM_MODES]
    if unknown:
        raise invalid(f"unknown stream_mode {unknown[0]!r}; use one of "
                      f"{', '.join(STREAM_MODES)}", "query", "stream_mode")
    return tuple(found) or None


def _requested_modes(server: ServerState, run_id: str) -> tuple[str, ...]:
    facts = server.launcher.facts(run_id)
    modes = facts.kwargs.get("stream_mode") if facts is not None else None
    return tuple(modes) if modes else ("values",)


def _last_event_id(request: Request) -> int | None:
    value = request.headers.get("last-event-id")
    if value is None or not value.strip():
        return None
    if not value.strip().lstrip("-").isdigit():
        raise invalid(f"Last-Event-ID {value!r} is not an event id of this server",
                      "header", "last-event-id")
    return int(value)
