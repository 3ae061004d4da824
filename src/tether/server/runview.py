"""One run as the web page shows it: its record, where it stands and what a stop kept, its
error, the question it waits on, what it spent against its budget, its lineage and whether it
may be resumed — and its timeline. Everything is read from the store, so a run reads the same
after a restart and whichever process drove it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tether.checkpoint.base import StoredCheckpoint
from tether.checkpoint.snapshot import is_internal
from tether.checkpoint.snapshot import partial_answers as kept_answers
from tether.constants import ERROR, PARTIAL
from tether.server.context import ServerState
from tether.server.lineage import lineage, resume_refusal
from tether.server.timeline import MAX_STEPS, Point, build, outcome_of, spans_of
from tether.server.wire import jsonable, run_json
from tether.types import RunEvent, RunInfo, RunSnapshot, RunStatus, utcnow

STOPPED = frozenset({RunStatus.CANCELLED, RunStatus.TIMEOUT, RunStatus.ERROR})
"""The ends of a run that may leave partial answers."""


async def run_record(server: ServerState, info: RunInfo) -> dict[str, Any]:
    """A run record as the API returns it: the Agent Server's, with tether's fields, and the
    partial answers a stop kept ("Stop generating").

    Cancellation:
        Safe: it only reads.
    """
    record = run_json(info, server.launcher.facts(info.run_id))
    record["partial_answers"] = await partial_answers(server, info)
    return record


async def partial_answers(server: ServerState, info: RunInfo) -> list[dict[str, Any]]:
    """What the chat models of a stopped run had streamed when it stopped (read only for runs
    that ended stopped: the others have none).

    Cancellation:
        Safe: it only reads.
    """
    if info.status not in STOPPED or info.thread_id is None or info.checkpoint_id is None:
        return []
    # The writes of that one channel of the run's final checkpoint, and nothing else: a point
    # read (not the checkpoint's values, nor `store.load`'s whole snapshot).
    ns = str(info.metadata.get("checkpoint_ns", ""))
    writes = await server.store.aget_writes(info.thread_id, ns, info.checkpoint_id, PARTIAL)
    return [jsonable(p) for p in kept_answers(writes)]


async def detail(server: ServerState, info: RunInfo) -> dict[str, Any]:
    """The run, its audit log (`store.events`), what it kept (`store.load`), and the rest the
    page shows beside them.

    Cancellation:
        Safe: it only reads (a cancel stops every read still in flight; a read that fails is
        the answer, as it was when they were made one by one).
    """
    store = server.store
    # The reads do not depend on one another: made at once (on Postgres each has a connection
    # of its own, so the page waits for the slowest, not for their sum).
    (events, kept, final, why, record, interrupts), family = await asyncio.gather(
        asyncio.gather(  # (asyncio's typed overloads stop at six)
            store.aevents(info.run_id), store.aload(info.run_id), _final(server, info),
            resume_refusal(store, info), run_record(server, info), _interrupts(server, info)),
        lineage(store, info))
    feed = server.launcher.feed(info.run_id)
    return {
        "now": utcnow().isoformat(),
        "run": record,
        "events": [_event(e) for e in events],
        "kept": _kept(kept),
        "error": _error(info, final),
        "interrupts": interrupts,
        "usage": _usage(events),
        "lineage": family,
        "resume": {"allowed": why is None, "why": why},
        "feed_seq": feed.next_seq - 1 if feed is not None else None,
    }


async def timeline(server: ServerState, info: RunInfo) -> dict[str, Any]:
    """The run's supersteps and tasks in time, with each step's changes (see
    `tether.server.timeline`).

    Cancellation:
        Safe: it only reads.
    """
    store = server.store
    points, base = await _points(server, info)
    failed = _failed_nodes(info, await _final(server, info))
    kept = await store.aload(info.run_id)
    outcome = outcome_of(info, kept, await store.aevents(info.run_id), failed)
    feed = server.launcher.feed(info.run_id)
    spans = spans_of((e.at, e.payload) for e in feed.since(0)[0] if e.event == "tasks") \
        if feed is not None else []
    return build(info, points, base, outcome, spans=spans, now=utcnow())


def _event(event: RunEvent) -> dict[str, Any]:
    return {"phase": event.phase, "at": event.at.isoformat(), "node": event.node,
            "detail": jsonable(event.detail)}


def _kept(snap: RunSnapshot) -> dict[str, Any]:
    return {"step": snap.step, "next": list(snap.next), "values": jsonable(snap.values),
            "cancelled_tasks": list(snap.cancelled_tasks),
            "partial_answers": [jsonable(p) for p in snap.partial_answers],
            "pending_writes": [{"node": w.node, "key": w.key, "value": jsonable(w.value)}
                               for w in snap.pending_writes],
            "checkpoint_id": snap.checkpoint_id}


async def _final(server: ServerState, info: RunInfo) -> StoredCheckpoint | None:
    if info.thread_id is None or info.checkpoint_id is None:
        return None
    ns = str(info.metadata.get("checkpoint_ns", ""))
    return await server.store.aget_checkpoint(info.thread_id, ns, info.checkpoint_id)


def _failed_nodes(info: RunInfo, final: StoredCheckpoint | None) -> list[str]:
    """The nodes whose failure ended the run (from its record, else its final checkpoint)."""
    if info.status is not RunStatus.ERROR:
        return []
    if info.error_node:
        return [info.error_node]
    writes = final.pending_writes if final is not None else ()
    return sorted({w.task_name for w in writes if w.channel == ERROR})


def _error(info: RunInfo, final: StoredCheckpoint | None) -> dict[str, Any] | None:
    if info.status is not RunStatus.ERROR:
        return None
    nodes = _failed_nodes(info, final)
    return {"message": info.error, "node": nodes[0] if nodes else None,
            "traceback": info.error_traceback}


async def _interrupts(server: ServerState, info: RunInfo) -> list[dict[str, Any]]:
    """The questions a paused run waits on (`interrupt(value)`), answered with
    `Command(resume=...)`."""
    if info.status is not RunStatus.INTERRUPTED or info.thread_id is None:
        return []
    record = await server.store.aget_thread(info.thread_id)
    snapshot = await server.snapshot(record, info.checkpoint_id) if record is not None else None
    if snapshot is None:
        return []
    return [{"id": i.id, "value": jsonable(i.value)} for i in snapshot.interrupts]


def _usage(events: list[RunEvent]) -> dict[str, Any] | None:
    """What the run spent, and its budget, from its last audit event that says (a run's end;
    a budget stop's evidence)."""
    for event in reversed(events):
        usage = event.detail.get("usage")
        if isinstance(usage, dict):
            return {"usage": jsonable(usage), "budget": jsonable(event.detail.get("budget"))}
        evidence = event.detail.get("evidence")
        if isinstance(evidence, dict) and isinstance(evidence.get("usage"), dict):
            budget = {evidence.get("limit"): evidence.get("value")}
            return {"usage": jsonable(evidence["usage"]), "budget": jsonable(budget)}
    return None


async def _points(server: ServerState, info: RunInfo) -> tuple[list[Point], Point | None]:
    """The run's checkpoints, oldest first (at most `MAX_STEPS` + 1), and the one before."""
    if info.thread_id is None:
        return [], None
    ns = str(info.metadata.get("checkpoint_ns", ""))
    store = server.store
    mine: list[StoredCheckpoint] = []
    async for stored in store.alist_checkpoints(info.thread_id, ns):
        if stored.created_at < info.created_at or len(mine) > MAX_STEPS:
            break
        if stored.run_id == info.run_id:
            mine.append(stored)
    mine.reverse()
    start = mine[0].parent_id if mine else info.checkpoint_id
    before = await store.aget_checkpoint(info.thread_id, ns, start) if start else None
    return [_point(c) for c in mine], _point(before) if before is not None else None


def _point(stored: StoredCheckpoint) -> Point:
    tasks = stored.metadata.get("tasks")
    values = {k: v for k, v in stored.values.items() if not is_internal(k)}
    return Point(stored.id, stored.step, stored.source, stored.created_at,
                 tuple(str(t) for t in tasks) if isinstance(tasks, list) else None,
                 tuple(stored.next), jsonable(values), stored.run_id)


__all__ = ["detail", "run_record", "timeline"]
