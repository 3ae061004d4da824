"""The records of the store protocol (`tether.checkpoint.base`): what the engine writes (a
checkpoint, a pending write, a run's last transaction) and what a store answers (a stored
checkpoint, a thread, the outcome of a run's finish). Frozen, built cheaply (`fast_record`:
a step writes a checkpoint, a cancel several records)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.checkpoint.serde import Serializer, place
from tether.records import fast_record
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus, utcnow


@fast_record
@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One pending write: a value a task produced in a step that has not completed."""

    task_id: str
    task_name: str
    idx: int
    channel: str
    value: Any


@fast_record
@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint as the engine writes it.

    Attributes:
        refs: for every non-empty channel, the id of the checkpoint that stored its value.
        blobs: the values of channels changed since the parent (stored under this checkpoint).
        next: names of the tasks due to run from this checkpoint.
    """

    thread_id: str
    ns: str
    id: str
    parent_id: str | None
    step: int
    source: str
    refs: dict[str, str]
    blobs: dict[str, Any]
    next: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)


@fast_record
@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint as a store returns it: values resolved, pending writes attached."""

    thread_id: str
    ns: str
    id: str
    parent_id: str | None
    step: int
    source: str
    created_at: datetime
    values: dict[str, Any]
    refs: dict[str, str]
    next: tuple[str, ...]
    metadata: dict[str, Any]
    run_id: str | None
    pending_writes: tuple[WriteRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """A thread: a conversation whose runs share checkpoints. Metadata is the caller's."""

    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


@fast_record
@dataclass(frozen=True, slots=True)
class RunFinish:
    """Everything a run's last transaction commits at once.

    Attributes:
        status: the terminal (or `interrupted`) status to set.
        checkpoints: checkpoints not yet stored (durability `async`/`exit`), oldest first.
        writes: pending writes to attach to `checkpoint_id`.
        unless_cancel_requested: refuse (return `applied=False`) if a cancel is already durable.
        after_request: the end of this cancel request, handed to the store before its answer
            came back (`CheckpointStore.commits_in_order`): refused (`applied=False`) unless
            this request is the run's durable cancel and the run has not ended.
    """

    status: RunStatus
    checkpoint_id: str | None = None
    thread_id: str | None = None
    reason: CancelReason | None = None
    error: str | None = None
    error_node: str | None = None
    error_traceback: str | None = None
    checkpoints: tuple[CheckpointRecord, ...] = ()
    writes: tuple[WriteRecord, ...] = ()
    events: tuple[RunEvent, ...] = ()
    cancel_latency_ms: float | None = None
    unless_cancel_requested: bool = False
    after_request: CancelReason | None = None


@fast_record
@dataclass(frozen=True, slots=True)
class FinishResult:
    """What `finish_run` did: `applied` is False when the condition refused the change."""

    info: RunInfo
    applied: bool


def write_records(thread_id: str, checkpoint_id: str,
                  rows: Iterable[tuple[str, str, int, str, bytes]],
                  serde: Serializer) -> tuple[WriteRecord, ...]:
    """Pending writes of one checkpoint from their stored rows `(task_id, task_name, idx,
    channel, value)`: the one rule by which every backend decodes them (each value where it
    was kept)."""
    return tuple(
        WriteRecord(task_id, task_name, idx, channel,
                    serde.loads(value, place(thread_id, checkpoint_id, channel)))
        for task_id, task_name, idx, channel, value in rows
    )


def thread_page(records: Iterable[ThreadRecord], limit: int,
                offset: int) -> list[ThreadRecord]:
    """A page of thread records in the order every store searches them: latest update first,
    ties by id (the SQL stores' `ORDER BY updated_at DESC, thread_id`), so that pages taken
    one after another hold each thread once."""
    ordered = sorted(records, key=lambda r: r.thread_id)
    ordered.sort(key=lambda r: r.updated_at, reverse=True)  # stable: ties keep the id order
    return ordered[offset:offset + limit]


__all__ = ["CheckpointRecord", "FinishResult", "RunFinish", "StoredCheckpoint", "ThreadRecord",
           "WriteRecord", "thread_page", "write_records"]
