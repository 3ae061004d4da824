"""Checkpoints and pending writes as store operations (see `ops.py`): each write one statement,
each read one query that brings the values its refs point at and its pending writes along."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from tether.checkpoint.base import CheckpointRecord, StoredCheckpoint, WriteRecord
from tether.checkpoint.postgres import _sql, rows
from tether.checkpoint.postgres.ops import AtCommit, Op, Query
from tether.checkpoint.serde import Serializer
from tether.checkpoint.store_records import write_records
from tether.errors import CheckpointNotFound, StaleLeaseError
from tether.types import CancelReason, utcnow

PAGE = 64
"""Checkpoints `list_checkpoints` reads per query as its iterator advances."""


def put_params(record: CheckpointRecord, serde: Serializer, epoch: int | None) -> dict[str, Any]:
    """The parameters of `_sql.PUT_CHECKPOINT` (serialized before any I/O).

    Raises:
        SerializationError: a value cannot be stored.
    """
    return {**rows.checkpoint_params(record, serde), "epoch": epoch, "now": utcnow()}


def put(record: CheckpointRecord, params: dict[str, Any]) -> Op[CancelReason | None]:
    """Store one checkpoint, its changed values and its run's pointer; returns the run's cancel
    reason if one is recorded (a worker's look at its run, for free).

    Raises:
        StaleLeaseError: the epoch in `params` is no longer the run's (nothing is stored).
    """
    return _verdict(record, params, (yield Query(_sql.PUT_CHECKPOINT, params)))


def put_chain(records: Sequence[CheckpointRecord],
              params: Sequence[dict[str, Any]]
              ) -> Op[CancelReason | AtCommit[CancelReason | None] | None]:
    """`put` each of `records` in order (run it in one transaction): no statement waits for
    an answer, and the last one's row is read after the commit (`AtCommit`): BEGIN, the
    statements and COMMIT are one round trip. They carry one epoch, so the last one's verdict
    is theirs: a stale one stores none of them.

    Raises:
        StaleLeaseError: as `put` (nothing is stored).
    """
    for each in params[:-1]:
        yield Query(_sql.PUT_CHECKPOINT, each, "none")
    last, last_params = records[-1], params[-1]
    cursor = yield Query(_sql.PUT_CHECKPOINT, last_params, "later")
    return AtCommit(cursor, lambda row: _verdict(last, last_params, row))


def _verdict(record: CheckpointRecord, params: dict[str, Any],
             row: tuple[bool, Any]) -> CancelReason | None:
    """What `PUT_CHECKPOINT`'s row says: the run's cancel reason, if one is recorded.

    Raises:
        StaleLeaseError: the checkpoint was refused.
    """
    stored, reason = row
    if not stored:
        raise StaleLeaseError(f"run {record.run_id!r}: lease epoch {params['epoch']} was taken "
                              f"over; checkpoint {record.id} was refused")
    return CancelReason.from_dict(reason) if reason is not None else None


def put_writes(thread_id: str, ns: str, checkpoint_id: str, writes: dict[str, Any], *,
               run_id: str | None, epoch: int | None) -> Op[None]:
    """Attach pending writes (`rows.write_params`) to a checkpoint.

    Raises:
        CheckpointNotFound: no such checkpoint (nothing is stored).
        StaleLeaseError: `epoch` is no longer `run_id`'s (nothing is stored).
    """
    allowed, found = yield Query(_sql.PUT_WRITES, {
        "thread_id": thread_id, "ns": ns, "checkpoint_id": checkpoint_id, "run_id": run_id,
        "epoch": epoch, **writes})
    if not allowed:
        raise StaleLeaseError(f"run {run_id!r}: lease epoch {epoch} was taken over; pending "
                              "writes were refused")
    if not found:
        raise CheckpointNotFound(
            f"no checkpoint {checkpoint_id!r} in thread {thread_id!r} (namespace {ns!r})")


def get(thread_id: str, ns: str, checkpoint_id: str | None,
        serde: Serializer) -> Op[StoredCheckpoint | None]:
    """A checkpoint (the latest of the thread and namespace when `checkpoint_id` is None)."""
    if checkpoint_id is None:
        row = yield Query(_sql.GET_LATEST_CHECKPOINT, (thread_id, ns))
    else:
        row = yield Query(_sql.GET_CHECKPOINT, (thread_id, ns, checkpoint_id))
    return rows.stored_checkpoint(row, serde) if row is not None else None


def writes(thread_id: str, ns: str, checkpoint_id: str, channel: str,
           serde: Serializer) -> Op[tuple[WriteRecord, ...]]:
    """One channel's pending writes of a checkpoint (none when there is no such checkpoint)."""
    found = yield Query(_sql.LIST_CHANNEL_WRITES, (thread_id, ns, checkpoint_id, channel), "all")
    return write_records(thread_id, checkpoint_id, found, serde)


def page(thread_id: str, ns: str, before: str | None, limit: int,
         serde: Serializer) -> Op[list[StoredCheckpoint]]:
    """Up to `limit` checkpoints older than `before` (all when None), newest first."""
    params: list[Any] = [thread_id, ns]
    if before is not None:
        params.append(before)
    params.append(limit)
    found = yield Query(_sql.list_checkpoints(before=before is not None), params, "all")
    return [rows.stored_checkpoint(row, serde) for row in found]


def pages(fetch: Any, before: str | None, limit: int | None) -> Iterator[StoredCheckpoint]:
    """Checkpoints newest first, read `PAGE` at a time by `fetch(before, count)`."""
    left = limit
    while left is None or left > 0:
        count = PAGE if left is None else min(PAGE, left)
        batch: list[StoredCheckpoint] = fetch(before, count)
        yield from batch
        if len(batch) < count:
            return
        before = batch[-1].id
        if left is not None:
            left -= len(batch)


def delete_of_run(run_id: str) -> Op[None]:
    """Remove the checkpoints a run wrote (their blobs and writes go with them)."""
    row = yield Query(_sql.THREAD_OF_RUN, (run_id,))
    if row is None:
        yield Query(_sql.DELETE_UNKNOWN_RUN_CHECKPOINTS, (run_id,), "none")
    else:
        yield Query(_sql.DELETE_RUN_CHECKPOINTS, (row[0], run_id), "none")


__all__ = ["PAGE", "delete_of_run", "get", "page", "pages", "put", "put_params", "put_writes",
           "writes"]
