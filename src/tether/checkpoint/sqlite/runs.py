"""Run records and their status machine as store operations (`tether.checkpoint.query`), each run
in one transaction (`Connection.run`): a terminal status is never overwritten (and the schema's
trigger refuses it too), and of racing cancel requests exactly one is recorded."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tether.checkpoint.base import FinishResult, RunFinish
from tether.checkpoint.finish_rule import refusal
from tether.checkpoint.query import Op, Query
from tether.checkpoint.sqlite import _sql, rows
from tether.checkpoint.sqlite.checkpoints import Checkpoints, DumpedWrites, Prepared
from tether.errors import RunError, RunNotFound
from tether.types import TERMINAL_STATUSES, CancelReason, RunEvent, RunInfo, RunStatus


def create(info: RunInfo, owner: str, now: datetime) -> Op[RunInfo]:
    """Record a new run, owned by `owner`.

    Raises:
        ValueError: a run with this id exists.
    """
    try:
        yield Query(_sql.INSERT_RUN, rows.run_row(info, owner, now), "none")
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"run {info.run_id!r} already exists") from exc
    return info


def delete(run_id: str) -> Op[bool]:
    """Delete a run at rest with its events and checkpoints; False when there is no such run.

    Raises:
        RunError: the run is still going (cancel it first).
    """
    row = yield Query(_sql.RUN_STATUS, (run_id,))
    if row is None:
        return False
    status = RunStatus(row[0])
    if not status.at_rest:
        raise RunError(f"run {run_id!r} is {status.value}; cancel it before deleting it")
    for statement in _sql.DELETE_RUN:
        yield Query(statement, (run_id,), "none")
    return True


def mark_running(run_id: str, events: Sequence[RunEvent], owner: str,
                 now: datetime) -> Op[RunInfo | None]:
    """`pending`/`interrupted` → `running`, now owned by `owner`; None if refused.

    Raises:
        RunNotFound: no such run.
    """
    at = now.isoformat()
    row = yield Query(_sql.MARK_RUNNING, (at, owner, at, run_id))
    if row is None:
        yield from require(run_id)
        return None
    yield Query(_sql.INSERT_EVENT, rows.event_params(run_id, events), "each")
    return (yield from _changed(row))


def request_cancel(run_id: str, reason: CancelReason) -> Op[tuple[RunInfo, bool]]:
    """Record a cancel request unless one is recorded or the run ended; True if this call did.

    Raises:
        RunNotFound: no such run.
    """
    # The statement's condition makes the first request the only one, across threads and
    # processes.
    row = yield Query(_sql.REQUEST_CANCEL, (rows.reason_param(reason), run_id))
    if row is None:
        info = yield from require(run_id)
        return info, False
    request = RunEvent("request", reason.requested_at, None, reason.to_dict())
    yield Query(_sql.INSERT_EVENT, rows.event_params(run_id, [request]), "each")
    return (yield from _changed(row)), True


def finish(run_id: str, end: RunFinish, checkpoints: Checkpoints, *,
           prepared: Sequence[Prepared], writes: DumpedWrites,
           now: datetime) -> Op[FinishResult]:
    """Commit a run's end: checkpoints, writes, events, status.

    Args:
        prepared: `end.checkpoints`, each with its serialized form (made before the
            transaction, which then cannot fail half-way on a value).
        writes: `end.writes` serialized.

    Raises:
        RunNotFound, TerminalStatusError, StatusTransitionError, CheckpointNotFound: nothing
            is changed.
    """
    info = yield from require(run_id)
    refused = refusal(info, end)
    if refused is not None:
        return refused
    for record, ready in zip(end.checkpoints, prepared, strict=True):
        yield from checkpoints.insert(record, ready)
    if writes and end.checkpoint_id is not None and end.thread_id is not None:
        ns = str(info.metadata.get("checkpoint_ns", ""))
        yield from checkpoints.insert_writes(end.thread_id, ns, end.checkpoint_id, writes)
    yield Query(_sql.INSERT_EVENT, rows.event_params(run_id, end.events), "each")
    at = now.isoformat()
    row = yield Query(_sql.FINISH_RUN, (
        end.status.value, rows.reason_param(end.reason), end.error,
        rows.failure_json(end.error_node, end.error_traceback), end.checkpoint_id,
        at if end.status in TERMINAL_STATUSES else None, end.cancel_latency_ms, at, run_id,
    ))
    return FinishResult((yield from _changed(row)), applied=True)


def mark_orphaned(info: RunInfo, who: str, pid: int | None, now: datetime) -> Op[RunInfo | None]:
    """End an orphan as `error` with an `orphan` event, if it still has the same dead owner and
    is still active (None otherwise)."""
    error = f"orphaned: the process running it died (pid {pid})"
    row = yield Query(_sql.MARK_ORPHANED, (error, now.isoformat(), info.run_id, who))
    if row is None:
        return None
    detail = {"owner": who, "pid": pid, "status": info.status.value,
              "checkpoint_id": info.checkpoint_id}
    orphan = RunEvent("orphan", now, None, detail)
    yield Query(_sql.INSERT_EVENT, rows.event_params(info.run_id, [orphan]), "each")
    return (yield from _changed(row))


_STATUS = _sql.RUN_FIELDS.split(", ").index("status")
_CHECKPOINT = _sql.RUN_FIELDS.split(", ").index("checkpoint_id")
"""Where `_sql.RUN_FIELDS` puts a run's status and its checkpoint."""


def _changed(row: rows.RunRow) -> Op[RunInfo]:
    """The record of a run whose row a statement just changed, from the `_sql.RUN_FIELDS` it
    returned: a run at rest has its checkpoint stored exactly; an active one's stored
    checkpoint is a lower bound, and its latest is read (`_sql.RUN_LIVE_CHECKPOINT`)."""
    checkpoint_id = row[_CHECKPOINT]
    if checkpoint_id is not None and not RunStatus(row[_STATUS]).at_rest:
        live = yield Query(_sql.RUN_LIVE_CHECKPOINT, (row[0],))
        row = (*row[:_CHECKPOINT], live[0], *row[_CHECKPOINT + 1:])
    return rows.run_info(row)


def require(run_id: str) -> Op[RunInfo]:
    """The run's record, read in the operation's transaction.

    Raises:
        RunNotFound: no such run.
    """
    row = yield Query(_sql.GET_RUN, (run_id,))
    if row is None:
        raise RunNotFound(run_id)
    return rows.run_info(row)


def append_events(event_rows: Sequence[tuple[Any, ...]]) -> Op[None]:
    """Append rows of the audit log (`rows.event_params`)."""
    yield Query(_sql.INSERT_EVENT, event_rows, "each")


__all__ = ["append_events", "create", "finish", "mark_orphaned", "mark_running", "request_cancel",
           "require"]
