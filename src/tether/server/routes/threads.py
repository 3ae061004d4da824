"""Threads: create, read, search, patch and delete them; read and write their state and history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request, Response

from tether.checkpoint.base import ThreadRecord
from tether.errors import TetherError
from tether.server.auth import Principal
from tether.server.context import (
    BUSY,
    TENANT_KEY,
    Caller,
    Server,
    ServerState,
    parts,
    stamped,
    store_ids,
)
from tether.server.errors import invalid
from tether.server.models import (
    CheckpointIn,
    HistoryRequest,
    StateAt,
    StateUpdate,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
)
from tether.server.routes.cancel import cancel_one
from tether.server.wire import (
    WireJSON,
    client_id,
    error_json,
    interrupts_by_task,
    jsonable,
    state_json,
)
from tether.types import CancelReason

router = APIRouter()
_SCAN_PAGE = 100  # threads read from the store at a time by a search that filters on state
_SCAN_AT_ONCE = 10  # of those, threads whose runs and state are read at once
_STATE_ORDERS = frozenset({"status", "state_updated_at"})  # orders no record field gives


async def thread_json(server: ServerState, record: ThreadRecord, *,
                      new: bool = False) -> dict[str, Any]:
    """A thread in the Agent Server's shape: status, current values, waiting interrupts, and
    the latest run's error when that run failed (`{"error", "message"}`).

    Args:
        new: the thread was created just now, so it has no runs and no checkpoint: it is
            `idle` with no values, and neither is read from the store. Otherwise both are
            read at once (two reads in flight: one wait, not two in a row).

    Cancellation:
        Safe: it only reads.
    """
    snapshot, (status, error) = (None, ("idle", None)) if new else await asyncio.gather(
        server.snapshot(record), server.thread_status(record.thread_id))
    return {
        "thread_id": client_id(record.thread_id),
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "state_updated_at": (snapshot.created_at if snapshot is not None
                             and snapshot.created_at is not None
                             else record.created_at.isoformat()),
        "metadata": jsonable(record.metadata),
        "status": status,
        "values": jsonable(snapshot.values) if snapshot is not None else None,
        "interrupts": interrupts_by_task(snapshot),
        "error": error_json(error) if status == "error" else None,
        "config": {},
    }


Thread = dict[str, Any]
"""The declared shape of a thread in the OpenAPI document (the routes that answer a `WireJSON`
of their own declare it with `response_model`)."""


@router.post("/threads", response_model=Thread)
async def post_thread(body: ThreadCreate, request: Request) -> Response:
    """Create a thread.

    Cancellation:
        One store write; a retry with the same `thread_id` answers 409 (or the thread, with
        `if_exists="do_nothing"`).
    """
    server, caller = parts(request)
    metadata = dict(body.metadata or {})
    if body.graph_id:
        metadata["graph_id"] = body.graph_id
    record, new = await server.create_thread(caller, body.thread_id, metadata,
                                             if_exists=body.if_exists or "raise")
    return WireJSON(await thread_json(server, record, new=new))


def _store_filter(caller: Principal, metadata: dict[str, Any] | None,
                  ids: list[str] | None = None) -> dict[str, Any]:
    """What the store matches of a search or count: the metadata (within the caller's
    tenant) and the ids (each where the caller's thread may be stored)."""
    wanted = dict(metadata or {})
    if caller.tenant is not None:
        wanted[TENANT_KEY] = caller.tenant
    return {"metadata": wanted, "ids": None if ids is None else [
        stored for given in ids for stored in store_ids(caller, given)]}


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, server: Server,
                         caller: Caller) -> list[dict[str, Any]]:
    """The caller's threads whose metadata (and ids, status, values) match, in the order asked.

    The store matches metadata and ids, orders by the fields of a thread's record and pages.
    A thread's status and values are not in its record: with a `status` or `values` filter,
    the threads are read from the store in order a page at a time and each is asked, until
    `offset + limit` have matched or none is left (every thread is seen; none is left out).
    An order by status or by the state's last update reads every thread that matches.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    query = _store_filter(caller, body.metadata, body.ids)
    by, ascending = body.sort_by or "updated_at", body.sort_order == "asc"
    end = body.offset + body.limit
    found: list[dict[str, Any]] = []
    if by in _STATE_ORDERS:
        async with aclosing(_matching(server, query, body)) as matching:
            found = [thread async for thread in matching]
        found.sort(key=lambda thread: thread[by], reverse=not ascending)  # ties: latest first
        found = found[body.offset:end]
    elif body.status is None and not body.values:
        records = await server.store.asearch_threads(
            **query, sort_by=by, ascending=ascending, limit=body.limit, offset=body.offset)
        found = [await thread_json(server, r) for r in records]
    else:
        async with aclosing(_matching(server, {**query, "sort_by": by, "ascending": ascending},
                                      body)) as matching:
            async for thread in matching:
                found.append(thread)
                if len(found) == end:
                    break
        found = found[body.offset:]
    return _selected(found, body.select)


@router.post("/threads/count")
async def count_threads(body: ThreadCount, server: Server, caller: Caller) -> int:
    """How many of the caller's threads match (as `POST /threads/search` would find them).

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    query = _store_filter(caller, body.metadata)
    if body.status is None and not body.values:
        return await server.store.acount_threads(**query)
    counted = 0
    async with aclosing(_matching(server, query, body)) as matching:
        async for _thread in matching:
            counted += 1
    return counted


async def _matching(server: ServerState, query: dict[str, Any],
                    body: ThreadCount) -> AsyncGenerator[dict[str, Any], None]:
    """The threads the store finds for `query`, in its order, that have the status and values
    of `body`, as `thread_json` shows them: read a page at a time, each page's threads a few
    at once, each thread once (a thread updated during the search may move to a later page).
    """
    seen: set[str] = set()
    read = 0
    while True:
        page = await server.store.asearch_threads(**query, limit=_SCAN_PAGE, offset=read)
        read += len(page)
        for start in range(0, len(page), _SCAN_AT_ONCE):
            shown = await asyncio.gather(*(thread_json(server, record) for record
                                           in page[start:start + _SCAN_AT_ONCE]
                                           if record.thread_id not in seen))
            for thread in shown:
                if _matches(thread, body):
                    yield thread
        seen.update(record.thread_id for record in page)
        if len(page) < _SCAN_PAGE:
            return


def _matches(thread: dict[str, Any], body: ThreadCount) -> bool:
    """Whether a thread (as `thread_json` shows it) has the status and values searched for."""
    if body.status is not None and thread["status"] != body.status:
        return False
    values = thread["values"] or {}
    return all(values.get(key) == value for key, value in (body.values or {}).items())


def _selected(threads: list[dict[str, Any]],
              fields: Sequence[str] | None) -> list[dict[str, Any]]:
    """The threads with only the fields asked for (`select`), or whole."""
    if fields is None:
        return threads
    return [{field: thread[field] for field in fields} for thread in threads]


@router.post("/threads/{thread_id}/copy", response_model=Thread)
async def copy_thread(thread_id: str, request: Request) -> Response:
    """A new thread with the caller's thread's metadata and history: every checkpoint (the
    same ids, values and pending writes), not its runs. The copy's record is made first, then
    its checkpoints in one store transaction; if that fails, the record goes too.

    Cancellation:
        Two store writes: a cancel between them (or a failed copy) deletes the new record, so
        the copy is whole or not made; not idempotent (a retry makes another copy).
    """
    server, caller = parts(request)
    source = await server.thread(caller, thread_id)
    record, _new = await server.create_thread(caller, None, dict(source.metadata),
                                              if_exists="raise")
    try:
        await server.store.acopy_thread(source.thread_id, record.thread_id)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await server.store.adelete_thread(record.thread_id)
        raise
    return WireJSON(await thread_json(server, record))


@router.get("/threads/{thread_id}", response_model=Thread)
async def get_thread(thread_id: str, request: Request) -> Response:
    """A thread.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    server, caller = parts(request)
    return WireJSON(await thread_json(server, await server.thread(caller, thread_id)))


@router.patch("/threads/{thread_id}")
async def patch_thread(thread_id: str, body: ThreadPatch, server: Server,
                       caller: Caller) -> dict[str, Any]:
    """Merge metadata into a thread's.

    Cancellation:
        One store write; safe to retry.
    """
    stored = (await server.thread(caller, thread_id)).thread_id
    metadata = stamped(body.metadata, caller)
    record = await server.store.aput_thread(stored, metadata)
    return await thread_json(server, record)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(thread_id: str, server: Server, caller: Caller) -> Response:
    """Delete a thread: its runs still going are cancelled first, then everything goes.

    Cancellation:
        Runs in flight are cancelled (each durable) before the thread is deleted in one transaction;
        safe to retry (a repeat is 404).
    """
    await _delete(server, await server.thread(caller, thread_id))
    return Response(status_code=204)


@router.post("/threads/prune")
async def prune_threads(body: ThreadPrune, server: Server, caller: Caller) -> dict[str, int]:
    """Delete the caller's threads of `thread_ids` as `DELETE /threads/{id}` does, one after
    the other; ids of no thread of the caller's are passed over. `strategy="keep_latest"`
    (keep each thread with its latest checkpoint only) is refused: tether keeps a thread's
    values as changes along its history, so dropping the history is not a deletion.

    Cancellation:
        Each thread is deleted whole; a cancel between two leaves the rest. Safe to retry.
    """
    if body.strategy != "delete":
        raise invalid(f"strategy {body.strategy!r} is not supported by tether: only "
                      "'delete' (a thread's values are stored as changes along its "
                      "history, which keep_latest would drop)", "body", "strategy")
    pruned = 0
    for thread_id in dict.fromkeys(body.thread_ids):
        try:
            record = await server.thread(caller, thread_id)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            continue
        await _delete(server, record)
        pruned += 1
    return {"pruned_count": pruned}


async def _delete(server: ServerState, record: ThreadRecord) -> None:
    """Cancel a thread's runs in flight or paused (each durably), then delete all of it.

    Cancellation:
        Each cancel is durable before the next; the deletion is one transaction.
    """
    reason = CancelReason("user", "its thread was deleted", "server")
    for info in await server.store.alist_runs(thread_id=record.thread_id):
        if info.status in BUSY or info.status.value == "interrupted":
            await cancel_one(server, info, reason, wait=True, action="interrupt")
    await server.store.adelete_thread(record.thread_id)


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, server: Server, caller: Caller,
                    subgraphs: bool = False) -> dict[str, Any]:
    """The thread's current state.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    del subgraphs
    return await _state(server, await server.thread(caller, thread_id), None)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(thread_id: str, checkpoint_id: str, server: Server, caller: Caller,
                       subgraphs: bool = False) -> dict[str, Any]:
    """The thread's state at a checkpoint.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    del subgraphs
    return await _state(server, await server.thread(caller, thread_id), checkpoint_id)


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: str, body: StateAt, server: Server,
                        caller: Caller) -> dict[str, Any]:
    """The thread's state at the checkpoint in the body.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    record = await server.thread(caller, thread_id)
    return await _state(server, record, body.checkpoint.checkpoint_id,
                        body.checkpoint.checkpoint_ns)


async def _state(server: ServerState, record: ThreadRecord, checkpoint_id: str | None,
                 ns: str = "") -> dict[str, Any]:
    snapshot = await server.snapshot(record, checkpoint_id, ns)
    if snapshot is None:
        return {"values": {}, "next": [], "tasks": [], "metadata": {}, "created_at": None,
                "checkpoint": None, "parent_checkpoint": None, "interrupts": [],
                "checkpoint_id": None, "parent_checkpoint_id": None}
    return state_json(snapshot)


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, server: Server,
                       caller: Caller) -> dict[str, Any]:
    """Write values to the thread as `as_node` would have; the new checkpoint.

    Cancellation:
        Writes one checkpoint atomically; not idempotent (a retry writes another).
    """
    record = await server.thread(caller, thread_id)
    assistant = server.graph_of(record)
    if assistant is None:
        raise HTTPException(409, f"thread {thread_id!r} has no graph yet: run one on it first")
    configurable: dict[str, Any] = {"thread_id": record.thread_id}
    checkpoint = body.checkpoint or CheckpointIn(checkpoint_id=body.checkpoint_id)
    if checkpoint.checkpoint_id:
        configurable["checkpoint_id"] = checkpoint.checkpoint_id
    configurable["checkpoint_ns"] = checkpoint.checkpoint_ns
    try:
        config = await assistant.graph.aupdate_state({"configurable": configurable},
                                                     body.values, as_node=body.as_node)
    except TetherError:
        raise
    except Exception as exc:
        # The graph's own code (a reducer, a conditional edge) failed on the values given.
        raise invalid(f"the graph cannot take these values: {type(exc).__name__}: {exc}",
                      "body", "values") from exc
    conf = config["configurable"]
    return {"checkpoint": {"thread_id": thread_id, "checkpoint_ns": conf.get("checkpoint_ns", ""),
                           "checkpoint_id": conf.get("checkpoint_id"), "checkpoint_map": None}}


@router.post("/threads/{thread_id}/history")
async def history(thread_id: str, body: HistoryRequest, server: Server,
                  caller: Caller) -> list[dict[str, Any]]:
    """The thread's past states, newest first.

    Cancellation:
        Read-only: nothing changes, safe to retry.
    """
    record = await server.thread(caller, thread_id)
    assistant = server.graph_of(record)
    if assistant is None:
        return []
    before = body.before
    before_id = before if isinstance(before, str) else (before.checkpoint_id if before else None)
    ns = body.checkpoint.checkpoint_ns if body.checkpoint else ""
    config = {"configurable": {"thread_id": record.thread_id, "checkpoint_ns": ns}}
    states = assistant.graph.aget_state_history(
        config, filter=body.metadata, limit=body.limit,
        before={"configurable": {"checkpoint_id": before_id}} if before_id else None)
    return [state_json(s) async for s in states]
