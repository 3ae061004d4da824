"""The records of the store protocol (`tether.checkpoint.base`): what the engine writes (a
checkpoint, a pending write, a run's last transaction) and what a store answers (a stored
checkpoint, a thread, the outcome of a run's finish). Frozen, built cheaply (`fast_record`:
a step writes a checkpoint, a cancel several records)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, Final

from tether.checkpoint.json_fit import check_metadata
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


THREAD_SORTS: Final = ("updated_at", "created_at", "thread_id")
"""What thread searches can be ordered by (`search_threads(sort_by=...)`)."""


def thread_order(sort_by: str, ascending: bool) -> str:
    """The `ORDER BY` terms of the SQL stores' thread search: by `sort_by`, ties by id; an
    ascending order is the exact reverse of the descending one (ties included), so that one
    index of the threads by update serves both.

    Raises:
        ValueError: `sort_by` is not one of `THREAD_SORTS`.
    """
    if sort_by not in THREAD_SORTS:
        raise ValueError(f"threads cannot be sorted by {sort_by!r}; known: "
                         f"{', '.join(THREAD_SORTS)}")
    if sort_by == "thread_id":
        return "thread_id" if ascending else "thread_id DESC"
    return f"{sort_by}, thread_id DESC" if ascending else f"{sort_by} DESC, thread_id"


@dataclass(frozen=True, slots=True)
class ThreadQuery:
    """One search of thread records (`search_threads`): the threads whose metadata has every
    key and value of `metadata` and, with `ids`, whose id is one of them, in `order`, paged.
    Made by `of`, which checks it."""

    metadata: dict[str, Any]
    ids: frozenset[str] | None
    sort_by: str
    ascending: bool
    limit: int
    offset: int
    order: str  # the SQL stores' `ORDER BY` terms (`thread_order`)

    @classmethod
    def of(cls, *, metadata: dict[str, Any] | None, ids: Collection[str] | None,
           sort_by: str = "updated_at", ascending: bool = False, limit: int = 10,
           offset: int = 0) -> ThreadQuery:
        """The search `search_threads` was asked for.

        Raises:
            ValueError: a metadata filter a store could not hold, or an unknown `sort_by`.
        """
        check_metadata(metadata, "a thread metadata filter")
        return cls(dict(metadata or {}), None if ids is None else frozenset(ids), sort_by,
                   ascending, limit, offset, thread_order(sort_by, ascending))

    def matches(self, record: ThreadRecord) -> bool:
        """Whether `record` is one of the threads searched for (compared in Python)."""
        metadata = record.metadata
        return ((self.ids is None or record.thread_id in self.ids)
                and all(metadata.get(k) == v for k, v in self.metadata.items()))

    def page(self, records: Iterable[ThreadRecord]) -> list[ThreadRecord]:
        """The page asked for, of the threads among `records` that match, in the order of the
        SQL stores' `ORDER BY self.order`."""
        by_id, ascending = attrgetter("thread_id"), self.ascending
        found = filter(self.matches, records)
        if self.sort_by == "thread_id":
            ordered = sorted(found, key=by_id, reverse=not ascending)
        else:  # stable: ties keep the id order
            ordered = sorted(found, key=by_id, reverse=ascending)
            ordered.sort(key=attrgetter(self.sort_by), reverse=not ascending)
        return ordered[self.offset:self.offset + self.limit]


__all__ = ["THREAD_SORTS", "CheckpointRecord", "FinishResult", "RunFinish", "StoredCheckpoint",
           "ThreadQuery", "ThreadRecord", "WriteRecord", "thread_order", "write_records"]
