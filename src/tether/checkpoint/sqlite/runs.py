"""Run records and their status machine, each change one conditional statement in one
transaction: a terminal status is never overwritten (and the schema's trigger refuses it
too), and of racing cancel requests exactly one is recorded."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from tether.checkpoint import owner
from tether.checkpoint.base import FinishResult, RunFinish, refusal
from tether.checkpoint.sqlite import _sql, rows
from tether.checkpoint.sqlite.checkpoints import Checkpoints
from tether.checkpoint.sqlite.connection import Connection
from tether.errors import RunNotFound
from tether.types import TERMINAL_STATUSES, CancelReason, RunEvent, RunInfo, utcnow


def create(db: Connection, info: RunInfo) -> RunInfo:
    """Record a new run, owned by this process.

    Raises:
        ValueError: a run with this id exists.
    """
    row = rows.run_row(info, owner.current(), utcnow())
    try:
        with db.write() as conn:
            conn.execute(_sql.INSERT_RUN, row)
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"run {info.run_id!r} already exists") from exc
    return info


def mark_running(db: Connection, run_id: str, events: Sequence[RunEvent]) -> RunInfo | None:
    """`pending`/`interrupted` → `running`, now owned by this process; None if refused.

    Raises:
        RunNotFound: no such run.
    """
    now = utcnow().isoformat()
    event_rows = rows.event_rows(run_id, events)
    with db.write() as conn:
        row = conn.execute(_sql.MARK_RUNNING, (now, owner.current(), now, run_id)).fetchone()
        if row is None:
            run_of(conn, run_id)
            return None
        conn.executemany(_sql.INSERT_EVENT, event_rows)
    return rows.run_info(row)


def request_cancel(db: Connection, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
    """Record a cancel request unless one is recorded or the run ended; True if this call did.

    Raises:
        RunNotFound: no such run.
    """
    request = rows.event_rows(run_id, [RunEvent("request", reason.requested_at, None,
                                                reason.to_dict())])
    with db.write() as conn:
        # The statement's condition makes the first request the only one, across threads
        # and processes.
        row = conn.execute(_sql.REQUEST_CANCEL, (rows.reason_json(reason), run_id)).fetchone()
        if row is None:
            return run_of(conn, run_id), False
        conn.executemany(_sql.INSERT_EVENT, request)
    return rows.run_info(row), True


def finish(db: Connection, checkpoints: Checkpoints, run_id: str,
           end: RunFinish) -> FinishResult:
    """Commit a run's end in one transaction: checkpoints, writes, events, status.

    Raises:
        RunNotFound, TerminalStatusError, CheckpointNotFound, SerializationError: nothing is
            changed.
    """
    # Everything is serialized before the transaction, which then cannot fail half-way on a
    # value.
    prepared = [(r, checkpoints.prepare(r)) for r in end.checkpoints]
    writes = checkpoints.dump_writes(end.writes)
    events = rows.event_rows(run_id, end.events)
    now = utcnow().isoformat()
    with db.write() as conn:
        info = run_of(conn, run_id)
        refused = refusal(info, end)
        if refused is not None:
            return refused
        for record, ready in prepared:
            checkpoints.insert(conn, record, ready)
        if writes and end.checkpoint_id is not None and end.thread_id is not None:
            ns = str(info.metadata.get("checkpoint_ns", ""))
            checkpoints.insert_writes(conn, end.thread_id, ns, end.checkpoint_id, writes)
        conn.executemany(_sql.INSERT_EVENT, events)
        row = conn.execute(_sql.FINISH_RUN, (
            end.status.value, rows.reason_json(end.reason), end.error,
            rows.failure_json(end.error_node, end.error_traceback), end.checkpoint_id,
            now if end.status in TERMINAL_STATUSES else None, end.cancel_latency_ms, now, run_id,
        )).fetchone()
    for record, ready in prepared:
        checkpoints.remember(record, ready)
    return FinishResult(rows.run_info(row), applied=True)


def run_of(conn: sqlite3.Connection, run_id: str) -> RunInfo:
    """The run's record, read in the caller's transaction.

    Raises:
        RunNotFound: no such run.
    """
    row = conn.execute(_sql.GET_RUN, (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    return rows.run_info(row)


__all__ = ["create", "finish", "mark_running", "request_cancel", "run_of"]
