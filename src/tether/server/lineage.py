"""How a run relates to the other runs of its thread — resumed from, forked from, superseded
by — and whether resuming it would be honest.

A resume continues a run from its final checkpoint, on its thread. If the thread has moved on
since (another run superseded it, or wrote newer checkpoints), resuming would silently rewind
the thread to the old state; the server refuses and says why, and the page offers to branch
from the run instead (edit and continue, a fork).
"""

from __future__ import annotations

from typing import Any

from tether.checkpoint.base import CheckpointStore
from tether.types import RunInfo, RunStatus

RESUMED_FROM = "resumed_from"
FORKED_FROM = "forked_from"
FORK_CHECKPOINT = "fork_checkpoint"
"""Run metadata keys the server records on the runs it starts from another run."""

RESUMABLE = frozenset({RunStatus.CANCELLED, RunStatus.TIMEOUT, RunStatus.ERROR})
_IN_FLIGHT = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLING})


async def lineage(store: CheckpointStore, info: RunInfo) -> dict[str, Any]:
    """The runs this one came from and the runs that came from it, by id.

    `resumed_by`, `forks` and `supersedes` are found among the runs of the same thread.

    Cancellation:
        Safe: it only reads.
    """
    reason = info.reason
    superseded_by = reason.requested_by if reason is not None and \
        reason.kind == "superseded" else None
    resumed_by: list[str] = []
    forks: list[str] = []
    supersedes: list[str] = []
    if info.thread_id is not None:
        for other in await store.alist_runs(thread_id=info.thread_id):
            if other.metadata.get(RESUMED_FROM) == info.run_id:
                resumed_by.append(other.run_id)
            if other.metadata.get(FORKED_FROM) == info.run_id:
                forks.append(other.run_id)
            why = other.reason
            if why is not None and why.kind == "superseded" and why.requested_by == info.run_id:
                supersedes.append(other.run_id)
    return {
        "thread_id": info.thread_id,
        "resumed_from": _text(info.metadata.get(RESUMED_FROM)),
        "forked_from": _text(info.metadata.get(FORKED_FROM)),
        "fork_checkpoint": _text(info.metadata.get(FORK_CHECKPOINT)),
        "superseded_by": superseded_by,
        "resumed_by": resumed_by,
        "forks": forks,
        "supersedes": supersedes,
    }


async def resume_refusal(store: CheckpointStore, info: RunInfo) -> str | None:
    """Why the run may not be resumed, or None when it may.

    Refused: a run that did not stop (or is waiting for an answer), one with nothing kept, one
    superseded by another run, and one whose thread has a run in flight or newer checkpoints.

    Cancellation:
        Safe: it only reads.
    """
    run = f"run {info.run_id}"
    refusal = _not_stopped(info)
    if refusal is not None or info.thread_id is None:
        return refusal
    moved = ("resuming would rewind the thread to this run's state and undo that work; "
             "use Edit and continue to branch from this run instead")
    reason = info.reason
    if reason is not None and reason.kind == "superseded":
        return f"run {reason.requested_by} superseded {run}: {moved}"
    busy = [r.run_id for r in await store.alist_runs(thread_id=info.thread_id)
            if r.status in _IN_FLIGHT and r.run_id != info.run_id]
    if busy:
        return f"thread {info.thread_id} has run {busy[0]} in flight: wait for it or stop it first"
    ns = str(info.metadata.get("checkpoint_ns", ""))
    latest = await store.aget_checkpoint(info.thread_id, ns)
    if latest is not None and latest.id != info.checkpoint_id:
        by = f" (run {latest.run_id} wrote a newer checkpoint)" if latest.run_id else ""
        return f"thread {info.thread_id} has moved on since {run} stopped{by}: {moved}"
    return None


def _not_stopped(info: RunInfo) -> str | None:
    """Why the run itself, whatever its thread did, may not be resumed."""
    run = f"run {info.run_id}"
    if info.status is RunStatus.INTERRUPTED:
        return f"{run} is waiting for input: answer its question instead"
    if info.status not in RESUMABLE:
        return (f"{run} is {info.status.value}; only cancelled, timed-out or failed runs can "
                "be resumed")
    if info.checkpoint_id is None or info.thread_id is None:
        return f"{run} stopped before its first checkpoint: there is nothing to resume from"
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["FORKED_FROM", "FORK_CHECKPOINT", "RESUMABLE", "RESUMED_FROM", "lineage",
           "resume_refusal"]
