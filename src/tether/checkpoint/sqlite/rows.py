"""Records to SQLite rows and back: pure functions, in the column order of `_sql`.

Timestamps are ISO-8601 text (they keep their offset); run reasons, run metadata and event
details are JSON (readable with `sqlite3` alone); state values, pending writes, checkpoint
metadata and `next` are bytes from the store's `Serializer`; refs are encoded by `refs.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from tether.checkpoint.base import CheckpointRecord, StoredCheckpoint, ThreadRecord, WriteRecord
from tether.checkpoint.serde import Serializer, place
from tether.checkpoint.sqlite.refs import Encoded
from tether.checkpoint.store_records import write_records
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus

RunRow = tuple[Any, ...]
"""The `_sql.RUN_COLUMNS` of one run."""
CheckpointRow = tuple[Any, ...]
"""The `_sql.CHECKPOINT_COLUMNS` of one checkpoint."""


def to_json(value: Any) -> str:
    """Compact JSON; a value JSON cannot hold is stored as its `str()` (the log must not fail)."""
    return json.dumps(value, separators=(",", ":"), default=str)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_time(value: str | None) -> datetime | None:
    """The inverse of storing a timestamp as ISO text."""
    return datetime.fromisoformat(value) if value is not None else None


# -- runs -----------------------------------------------------------------------------------


def reason_param(reason: CancelReason | None) -> str | None:
    """A cancel reason as stored in `runs.reason`."""
    return to_json(reason.to_dict()) if reason is not None else None


def failure_json(node: str | None, traceback: str | None) -> str | None:
    """Where a run failed, as stored in `runs.failure` (NULL when nothing is known)."""
    if node is None and traceback is None:
        return None
    return to_json({"node": node, "traceback": traceback})


def run_row(info: RunInfo, owner: str, now: datetime) -> tuple[Any, ...]:
    """The parameters of `_sql.INSERT_RUN`."""
    return (
        info.run_id, info.thread_id, info.status.value, reason_param(info.reason),
        info.created_at.isoformat(), _time(info.started_at), _time(info.ended_at),
        info.checkpoint_id, info.error, info.cancel_latency_ms, to_json(info.metadata),
        failure_json(info.error_node, info.error_traceback), owner, now.isoformat(),
    )


def run_info(row: RunRow) -> RunInfo:
    """A `RunInfo` from a row of `_sql.RUN_COLUMNS`."""
    (run_id, thread_id, status, reason, created_at, started_at, ended_at, checkpoint_id,
     error, cancel_latency_ms, metadata, failure) = row
    where = json.loads(failure) if failure is not None else {}
    return RunInfo(
        run_id=run_id,
        thread_id=thread_id,
        status=RunStatus(status),
        reason=CancelReason.from_dict(json.loads(reason)) if reason is not None else None,
        created_at=datetime.fromisoformat(created_at),
        started_at=parse_time(started_at),
        ended_at=parse_time(ended_at),
        checkpoint_id=checkpoint_id,
        error=error,
        cancel_latency_ms=cancel_latency_ms,
        metadata=json.loads(metadata),
        error_node=where.get("node"),
        error_traceback=where.get("traceback"),
    )


# -- events ---------------------------------------------------------------------------------


def event_params(run_id: str, events: Iterable[RunEvent]) -> list[tuple[Any, ...]]:
    """The parameters of `_sql.INSERT_EVENT`, one tuple per event, in order."""
    return [(run_id, e.phase, e.at.isoformat(), e.node, to_json(e.detail)) for e in events]


def event(row: tuple[Any, ...]) -> RunEvent:
    """A `RunEvent` from a row of `_sql.LIST_EVENTS`."""
    phase, at, node, detail = row
    return RunEvent(phase, datetime.fromisoformat(at), node, json.loads(detail))


# -- threads --------------------------------------------------------------------------------


def thread_row(record: ThreadRecord) -> tuple[Any, ...]:
    """The parameters of `_sql.PUT_THREAD`."""
    return (record.thread_id, record.created_at.isoformat(), record.updated_at.isoformat(),
            to_json(record.metadata))


def thread(row: tuple[Any, ...]) -> ThreadRecord:
    """A `ThreadRecord` from a row of `_sql.THREAD_COLUMNS`."""
    thread_id, created_at, updated_at, metadata = row
    return ThreadRecord(thread_id, datetime.fromisoformat(created_at),
                        datetime.fromisoformat(updated_at), json.loads(metadata))


# -- checkpoints ----------------------------------------------------------------------------


def checkpoint_params(record: CheckpointRecord, serde: Serializer,
                   refs: Encoded) -> tuple[Any, ...]:
    """The parameters of `_sql.INSERT_CHECKPOINT`, with `refs` encoded by the store."""
    return (
        record.thread_id, record.ns, record.id, record.parent_id, record.step, record.source,
        record.created_at.isoformat(), serde.dumps(list(record.next), "next"),
        serde.dumps(record.metadata, "metadata"), record.run_id, refs.data, refs.base,
        refs.depth,
    )


def blob_rows(record: CheckpointRecord, serde: Serializer) -> list[tuple[Any, ...]]:
    """The parameters of `_sql.INSERT_BLOB`, one per value the checkpoint stores.

    Raises:
        SerializationError: a value cannot be stored (the message names its channel).
    """
    key = (record.thread_id, record.ns, record.id)
    return [(*key, channel, blob) for channel, blob in serde.dumps_each(record.blobs).items()]


def write_params(thread_id: str, ns: str, checkpoint_id: str,
               writes: Sequence[tuple[WriteRecord, bytes]]) -> list[tuple[Any, ...]]:
    """The parameters of `_sql.PUT_WRITE`, from writes paired with their serialized values."""
    return [
        (thread_id, ns, checkpoint_id, w.task_id, w.idx, w.task_name, w.channel, value)
        for w, value in writes
    ]


def stored_checkpoint(row: CheckpointRow, refs: dict[str, str],
                      blobs: Iterable[tuple[str, bytes]], writes: Iterable[tuple[Any, ...]],
                      serde: Serializer) -> StoredCheckpoint:
    """A `StoredCheckpoint` from its row, its decoded refs, the blobs they point at, and its
    pending writes."""
    (thread_id, ns, checkpoint_id, parent_id, step, source, created_at, next_data, metadata,
     run_id, _refs, _refs_base) = row
    def loads(data: bytes, channel: str) -> Any:
        return serde.loads(data, place(thread_id, checkpoint_id, channel))

    raw = dict(blobs)
    values = {channel: loads(raw[channel], channel) for channel in refs if channel in raw}
    pending = write_records(thread_id, checkpoint_id, writes, serde)
    return StoredCheckpoint(
        thread_id=thread_id, ns=ns, id=checkpoint_id, parent_id=parent_id, step=step,
        source=source, created_at=datetime.fromisoformat(created_at), values=values, refs=refs,
        next=tuple(loads(next_data, "(next)")), metadata=loads(metadata, "(metadata)"),
        run_id=run_id, pending_writes=pending,
    )
