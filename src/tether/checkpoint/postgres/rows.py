"""Records to Postgres parameters and rows back: pure functions, in the column order of `_sql`.

Timestamps are `timestamptz` (sessions run in UTC); run reasons, run and thread metadata and
event details are `jsonb` (readable with `psql`); state values, pending writes, checkpoint
metadata and `next` are bytes from the store's `Serializer`; refs are a `jsonb` map of channel to
the id of the checkpoint that stored its value, `""` standing for the checkpoint itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from tether.checkpoint.base import CheckpointRecord, StoredCheckpoint, ThreadRecord, WriteRecord
from tether.checkpoint.serde import Serializer, place
from tether.checkpoint.store_records import write_records
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus

RunRow = tuple[Any, ...]
"""The `_sql.RUN_COLUMNS` of one run."""

_SELF = ""


def jsonb(value: Any) -> Jsonb:
    """A `jsonb` parameter; a value JSON cannot hold is stored as its `str()` (as SQLite's)."""
    return Jsonb(value, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


# -- runs -------------------------------------------------------------------------------------


def reason_param(reason: CancelReason | None) -> Jsonb | None:
    """A cancel reason as stored in `runs.reason`."""
    return jsonb(reason.to_dict()) if reason is not None else None


def failure_param(node: str | None, traceback: str | None) -> Jsonb | None:
    """Where a run failed, as stored in `runs.failure` (NULL when nothing is known)."""
    if node is None and traceback is None:
        return None
    return jsonb({"node": node, "traceback": traceback})


def run_row(info: RunInfo, owner: str, now: datetime) -> tuple[Any, ...]:
    """The parameters of `_sql.INSERT_RUN`."""
    return (info.run_id, info.thread_id, info.status.value, reason_param(info.reason),
            info.created_at, info.started_at, info.ended_at, info.checkpoint_id, info.error,
            info.cancel_latency_ms, jsonb(info.metadata),
            failure_param(info.error_node, info.error_traceback), owner, now)


def run_info(row: RunRow) -> RunInfo:
    """A `RunInfo` from a row of `_sql.RUN_COLUMNS`."""
    (run_id, thread_id, status, reason, created_at, started_at, ended_at, checkpoint_id,
     error, cancel_latency_ms, metadata, failure) = row
    where = failure or {}
    return RunInfo(
        run_id=run_id, thread_id=thread_id, status=RunStatus(status),
        reason=CancelReason.from_dict(reason) if reason is not None else None,
        created_at=created_at, started_at=started_at, ended_at=ended_at,
        checkpoint_id=checkpoint_id, error=error, cancel_latency_ms=cancel_latency_ms,
        metadata=metadata, error_node=where.get("node"),
        error_traceback=where.get("traceback"),
    )


# -- events -----------------------------------------------------------------------------------


def event_params(events: Sequence[RunEvent]) -> dict[str, Any]:
    """The `e_events` parameter of `_sql.EVENTS_IN`: the events as one JSON array of
    `[phase, at, node, detail]`, `at` in ISO 8601 (an aware time keeps its offset; a naive one
    is read in the session's time zone, as a `timestamp` parameter cast to `timestamptz`)."""
    return {"e_events": jsonb([[e.phase, e.at.isoformat(), e.node, e.detail] for e in events])}


def event(row: tuple[Any, ...]) -> RunEvent:
    """A `RunEvent` from (phase, at, node, detail)."""
    phase, at, node, detail = row
    return RunEvent(phase, at, node, detail)


# -- threads ----------------------------------------------------------------------------------


def thread_row(record: ThreadRecord) -> tuple[Any, ...]:
    """The parameters of `_sql.PUT_THREAD`."""
    return (record.thread_id, record.created_at, record.updated_at, jsonb(record.metadata))


def thread(row: tuple[Any, ...]) -> ThreadRecord:
    """A `ThreadRecord` from a row of `_sql.THREAD_COLUMNS`."""
    thread_id, created_at, updated_at, metadata = row
    return ThreadRecord(thread_id, created_at, updated_at, metadata)


# -- checkpoints ------------------------------------------------------------------------------


def checkpoint_params(record: CheckpointRecord, serde: Serializer) -> dict[str, Any]:
    """The checkpoint's own parameters of `_sql.PUT_CHECKPOINT` (values serialized here, so
    that a value that cannot be stored fails before any I/O).

    Raises:
        SerializationError: a value cannot be stored (the message names its channel).
    """
    dumps = serde.dumps
    channels = list(record.blobs)
    return {
        "thread_id": record.thread_id, "ns": record.ns, "id": record.id,
        "parent_id": record.parent_id, "step": record.step, "source": record.source,
        "created_at": record.created_at, "next": dumps(list(record.next), "next"),
        "metadata": dumps(record.metadata, "metadata"), "run_id": record.run_id,
        "refs": jsonb({ch: (_SELF if ref == record.id else ref)
                       for ch, ref in record.refs.items()}),
        "channels": channels, "values": list(serde.dumps_each(record.blobs).values()),
        "root": record.ns == "",
    }


def write_params(writes: Sequence[WriteRecord], serde: Serializer) -> dict[str, Any]:
    """The write arrays of `_sql.PUT_WRITES`, each (task, idx) once: the first of a task's
    ordinary writes, the last of its control writes (one statement cannot touch a row twice).

    Raises:
        SerializationError: a value cannot be stored.
    """
    kept: dict[tuple[str, int], WriteRecord] = {}
    for w in writes:
        key = (w.task_id, w.idx)
        if key not in kept or w.idx < 0:
            kept[key] = w
    dumps = serde.dumps
    ordered = list(kept.values())
    return {
        "task_ids": [w.task_id for w in ordered], "idxs": [w.idx for w in ordered],
        "names": [w.task_name for w in ordered], "channels": [w.channel for w in ordered],
        "values": [dumps(w.value, w.channel) for w in ordered],
    }


def stored_checkpoint(row: tuple[Any, ...], serde: Serializer) -> StoredCheckpoint:
    """A `StoredCheckpoint` from a row of `_sql._RESOLVED`."""
    (thread_id, ns, checkpoint_id, parent_id, step, source, created_at, next_data, metadata,
     run_id, refs, channels, values, task_ids, names, idxs, write_channels, write_values) = row
    def loads(data: bytes, channel: str) -> Any:
        return serde.loads(data, place(thread_id, checkpoint_id, channel))

    resolved = {ch: (checkpoint_id if ref == _SELF else ref) for ch, ref in refs.items()}
    stored_values = dict(zip(channels or (), values or (), strict=True))
    writes = write_records(thread_id, checkpoint_id, zip(
        task_ids or (), names or (), idxs or (), write_channels or (), write_values or (),
        strict=True), serde)
    return StoredCheckpoint(
        thread_id=thread_id, ns=ns, id=checkpoint_id, parent_id=parent_id, step=step,
        source=source, created_at=created_at,
        values={ch: loads(stored_values[ch], ch) for ch in resolved if ch in stored_values},
        refs=resolved, next=tuple(loads(next_data, "(next)")),
        metadata=loads(metadata, "(metadata)"), run_id=run_id, pending_writes=writes,
    )


__all__ = [
    "checkpoint_params", "event", "event_params", "jsonb", "reason_param",
    "run_info", "run_row", "stored_checkpoint", "thread", "thread_row", "write_params",
]
