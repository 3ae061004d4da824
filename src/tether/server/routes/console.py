"""tether's own routes for the web page: runs across threads (filtered, paged, live), one run in
full (kept state, timeline, lineage), its stream, and acting on it (resume, edit and continue).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from tether.checkpoint.ids import uuid7
from tether.server.auth import Principal
from tether.server.context import Caller, Server, ServerState, run_visible, visible
from tether.server.errors import not_found
from tether.server.feed import Subscription
from tether.server.guards import Send
from tether.server.launcher import RunOrder
from tether.server.limits import StreamSlots
from tether.server.lineage import FORK_CHECKPOINT, FORKED_FROM, RESUMED_FROM, resume_refusal
from tether.server.models import ForkRequest, ResumeRequest, RunsQuery
from tether.server.orders import checked_config
from tether.server.routes.runs import query_modes, run_out, subscription, take_slot
from tether.server.runlist import KINDS, STATUSES, RunFilter, page
from tether.server.runview import detail, timeline
from tether.server.sse import STREAM_RESPONSE, EventStream
from tether.server.wire import RunFacts
from tether.types import RunInfo, RunStatus, utcnow

router = APIRouter()


async def owned_run(server: ServerState, caller: Principal, run_id: str) -> RunInfo:
    """The caller's run, by id alone.

    Raises:
        HTTPException: 404 for no such run, or another tenant's.

    Cancellation:
        Safe: it only reads.
    """
    store = server.store
    info = await store.aget_run(run_id)
    record = await store.aget_thread(info.thread_id) if info and info.thread_id else None
    if info is None or not run_visible(info, caller) or (
            caller.tenant is not None and (record is None or not visible(record, caller))):
        raise not_found("run", run_id)
    return info


@router.get("/tether/runs")
async def list_all_runs(query: Annotated[RunsQuery, Query()], server: Server,
                        caller: Caller) -> dict[str, Any]:
    """The caller's runs across threads, newest first: one page of those matching the filter,
    how many match, the server's clock, and where the live board stands (`board_seq`: connect
    `/tether/live` with it as `Last-Event-ID` to get every change after this answer).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    wanted = RunFilter.parse(status=query.status, graph=query.graph, thread=query.thread,
                             kind=query.kind, since=query.since, until=query.until, q=query.q)
    board = await server.board.feed(caller.tenant)
    runs, total = await page(server, caller, wanted, offset=query.offset, limit=query.limit)
    return {"now": utcnow().isoformat(), "runs": [await run_out(server, r) for r in runs],
            "total": total, "offset": query.offset, "limit": query.limit,
            "board_seq": board.next_seq - 1,
            "facets": {"graphs": [a.graph_id for a in server.assistants.all()],
                       "statuses": list(STATUSES), "kinds": list(KINDS)}}


class BoardStream(EventStream):
    """The board's feed as SSE; the board looks at the store while one is open."""

    def __init__(self, server: ServerState, subscription: Subscription,
                 slot: tuple[StreamSlots, str]) -> None:
        super().__init__(subscription, slot=slot, headers={}, limits=server.limits)
        self.board = server.board

    async def produce(self, send: Send) -> None:
        """See `EventStream.produce`.

        Cancellation:
            As `EventStream.produce`; the board stops looking when no stream is open.
        """
        with self.board.watching():
            await super().produce(send)


@router.get("/tether/live", responses=STREAM_RESPONSE)
async def live(request: Request, server: Server, caller: Caller) -> EventStream:
    """Changes to the caller's runs as they happen (SSE `run` events, each the run's record),
    after `Last-Event-ID` (a `board_seq` from `/tether/runs`), else from now.

    Cancellation:
        Only this stream stops when the client leaves.
    """
    feed = await server.board.feed(caller.tenant)
    last = request.headers.get("last-event-id", "").strip()
    after = int(last) if last.isdigit() else feed.next_seq - 1
    if after >= feed.next_seq:
        after = feed.next_seq - 1  # an id from before a restart: from now
    slot = take_slot(server, caller)
    return BoardStream(server, feed.subscribe(None, after), slot)


@router.get("/tether/runs/{run_id}")
async def run_detail(run_id: str, server: Server, caller: Caller) -> dict[str, Any]:
    """A run with its audit log (`store.events`), what it kept (`store.load`), its error, the
    question it waits on, its usage and budget, its lineage, and whether it may be resumed.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return await detail(server, await owned_run(server, caller, run_id))


@router.get("/tether/runs/{run_id}/timeline")
async def run_timeline(run_id: str, server: Server, caller: Caller) -> dict[str, Any]:
    """The run's supersteps and tasks in time, and what each step changed.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    return await timeline(server, await owned_run(server, caller, run_id))


@router.get("/tether/runs/{run_id}/stream", responses=STREAM_RESPONSE)
async def run_stream(run_id: str, request: Request, server: Server,
                     caller: Caller) -> EventStream:
    """Every event of the run's stream kept so far (or after `Last-Event-ID`), then the rest
    live (SSE).

    Cancellation:
        Only this stream stops when the client leaves; the run goes on.
    """
    info = await owned_run(server, caller, run_id)
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
    409, saying why, where that would rewind a thread that has moved on (a superseded run, a
    thread with newer checkpoints or a run in flight).

    Cancellation:
        The new run is recorded and started before the answer; a retry starts another.
    """
    info = await owned_run(server, caller, run_id)
    refusal = await resume_refusal(server.store, info)
    if refusal is not None:
        raise HTTPException(409, refusal)
    return await _continue(server, caller, info, stream_mode=body.stream_mode,
                           config=body.config, metadata={RESUMED_FROM: run_id}, resume=True)


@router.post("/tether/runs/{run_id}/fork")
async def fork_run(run_id: str, body: ForkRequest, server: Server,
                   caller: Caller) -> dict[str, Any]:
    """Edit and continue: write `values` onto the run's final checkpoint (as `as_node` would
    have, a new branch of its thread) and start a new run from there. The new run records
    where it came from (`forked_from`, `fork_checkpoint`).

    Cancellation:
        The edit is one checkpoint; the new run is recorded and started before the answer. A
        retry writes another branch and starts another run.
    """
    info = await owned_run(server, caller, run_id)
    if info.status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLING):
        raise HTTPException(409, f"run {run_id} is {info.status.value}: stop it before "
                                 "editing its state")
    if info.checkpoint_id is None or info.thread_id is None:
        raise HTTPException(409, f"run {run_id} left no checkpoint to continue from")
    graph = _served(server, info).graph
    ns = str(info.metadata.get("checkpoint_ns", ""))
    edited = await graph.aupdate_state(
        {"configurable": {"thread_id": info.thread_id, "checkpoint_ns": ns,
                          "checkpoint_id": info.checkpoint_id}},
        body.values, as_node=body.as_node)
    config = dict(body.config or {})
    config["configurable"] = {**(config.get("configurable") or {}),
                              "checkpoint_id": edited["configurable"]["checkpoint_id"]}
    return await _continue(server, caller, info, stream_mode=body.stream_mode, config=config,
                           metadata={FORKED_FROM: run_id, FORK_CHECKPOINT: info.checkpoint_id},
                           resume=False)


def _served(server: ServerState, info: RunInfo) -> Any:
    assistant = server.assistants.get(str(info.metadata.get("graph", "")))
    if assistant is None or info.thread_id is None:
        raise HTTPException(409, f"run {info.run_id!r} is not of a graph this server serves")
    return assistant


async def _continue(server: ServerState, caller: Principal, info: RunInfo, *,
                    stream_mode: Any, config: dict[str, Any] | None,
                    metadata: dict[str, str], resume: bool) -> dict[str, Any]:
    """Start a run on the run's thread that continues it (a resume, or from a fork)."""
    assistant = _served(server, info)
    assert info.thread_id is not None
    modes = tuple(stream_mode) if isinstance(stream_mode, list) else (stream_mode,)
    facts = RunFacts(assistant.assistant_id, metadata, "enqueue",
                     {"stream_mode": list(modes), **({"resume_of": info.run_id} if resume
                                                     else {"fork_of": info.run_id})})
    order = RunOrder(assistant=assistant, thread_id=info.thread_id, run_id=uuid7(),
                     config=checked_config(assistant, config), stream_modes=modes,
                     multitask_strategy="enqueue", facts=facts,
                     resume_of=info.run_id if resume else None, tenant=caller.tenant)
    return await run_out(server, await server.launcher.start(order))


__all__ = ["BoardStream", "owned_run", "router"]
