"""Run records and their status machine as store operations (see `ops.py`): each change is one
conditional statement (or one transaction), so a terminal status is never overwritten (the
schema's trigger refuses it too) and of racing cancel requests exactly one is recorded.

`epoch` is the fencing token of the worker holding the run (None when no worker holds it): a
write that carries a stale one is refused with `StaleLeaseError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tether.checkpoint.base import FinishResult, RunFinish
from tether.checkpoint.finish_rule import refusal
from tether.checkpoint.postgres import _sql, checkpoints, rows
from tether.checkpoint.postgres.ops import AtCommit, Op, Query, unique_violation
from tether.checkpoint.serde import Serializer
from tether.errors import RunNotFound, StaleLeaseError
from tether.types import TERMINAL_STATUSES, CancelReason, RunEvent, RunInfo, RunStatus, utcnow


def create(info: RunInfo, owner: str) -> Op[RunInfo]:
    """Record a new run, owned by `owner`.

    Raises:
        ValueError: a run with this id exists.
    """
    try:
        yield Query(_sql.INSERT_RUN, rows.run_row(info, owner, utcnow()), "none")
    except Exception as exc:
        if unique_violation(exc):
            raise ValueError(f"run {info.run_id!r} already exists") from exc
        raise
    return info


def get(run_id: str) -> Op[RunInfo | None]:
    """The run's record, or None."""
    row = yield Query(_sql.GET_RUN, (run_id,))
    return rows.run_info(row) if row is not None else None


def cancel_requests(run_ids: Sequence[str]) -> Op[dict[str, CancelReason]]:
    """Which of these runs, still in flight, have a durable cancel request."""
    found = yield Query(_sql.CANCEL_REQUESTS, (list(run_ids),), "all")
    return {run_id: CancelReason.from_dict(reason) for run_id, reason in found}


def require(run_id: str) -> Op[RunInfo]:
    """The run's record.

    Raises:
        RunNotFound: no such run.
    """
    row = yield Query(_sql.GET_RUN, (run_id,))
    if row is None:
        raise RunNotFound(run_id)
    return rows.run_info(row)


def listing(thread_id: str | None, status: RunStatus | str | None,
            limit: int | None) -> Op[list[RunInfo]]:
    """Runs newest first, optionally of one thread and/or status."""
    sql = _sql.list_runs(by_thread=thread_id is not None, by_status=status is not None)
    params: list[Any] = [p for p in (thread_id, status) if p is not None]
    if isinstance(status, RunStatus):
        params[-1] = status.value
    params.append(limit)
    found = yield Query(sql, params, "all")
    return [rows.run_info(row) for row in found]


def mark_running(run_id: str, events: Sequence[RunEvent], owner: str,
                 epoch: int | None) -> Op[RunInfo | None]:
    """`pending`/`interrupted` → `running` (or a held run adopted again); None if refused.

    Raises:
        RunNotFound: no such run.
        StaleLeaseError: `epoch` is no longer the run's.
    """
    row = yield Query(_sql.MARK_RUNNING, {"run_id": run_id, "now": utcnow(), "owner": owner,
                                          "epoch": epoch, **rows.event_params(events)})
    current, moved = row[0], row[1:]
    if current is None:
        raise RunNotFound(run_id)
    if moved[0] is not None:
        return rows.run_info(moved)
    if epoch is not None and current != epoch:
        raise stale(run_id, epoch, current)
    return None


def request_cancel(run_id: str, reason: CancelReason) -> Op[tuple[RunInfo, bool]]:
    """Record a cancel request unless one is recorded or the run ended; True if this call did.

    Raises:
        RunNotFound: no such run.
    """
    row = yield Query(_sql.REQUEST_CANCEL, {"run_id": run_id, "at": reason.requested_at,
                                            "reason": rows.reason_param(reason)})
    if row is not None:
        return rows.run_info(row), True
    # Refused: read the record again in a new snapshot, which shows the request that won.
    info = yield from require(run_id)
    return info, False


def finish(run_id: str, end: RunFinish, serde: Serializer, epoch: int | None) -> Op[FinishResult]:
    """Commit a run's end: checkpoints, writes, events, status (run it in one transaction).

    Raises:
        RunNotFound, TerminalStatusError, CheckpointNotFound, SerializationError: nothing is
            changed.
        StaleLeaseError: `epoch` is no longer the run's (nothing is changed).
    """
    flip = yield from _up_to_flip(run_id, end, serde, epoch)
    if isinstance(flip, FinishResult):
        return flip
    return _applied((yield flip))


def finish_last(run_id: str, end: RunFinish, serde: Serializer,
                epoch: int | None) -> Op[FinishResult | AtCommit[FinishResult]]:
    """`finish` as its transaction's whole operation: the status flip's row is read after the
    commit, so that the flip travels with the `COMMIT` (`AtCommit`; the lock taken first has
    decided the end: the flip cannot be refused). A run's end waits for two round trips, the
    lock's and the commit's, instead of three.

    Raises:
        As `finish` (a failure of the flip or of the statements before it at the commit).
    """
    flip = yield from _up_to_flip(run_id, end, serde, epoch)
    if isinstance(flip, FinishResult):
        return flip
    cursor = yield Query(flip.sql, flip.params, "later")
    return AtCommit(cursor, _applied)


def _applied(row: Any) -> FinishResult:
    return FinishResult(rows.run_info(row), applied=True)


def _up_to_flip(run_id: str, end: RunFinish, serde: Serializer,
                epoch: int | None) -> Op[FinishResult | Query]:
    """`finish` up to its status flip: the refusal, or the flip to run."""
    # Everything is serialized before the first statement, which then cannot fail on a value.
    staged = [checkpoints.put_params(r, serde, None) for r in end.checkpoints]
    writes = rows.write_params(end.writes, serde)
    row = yield Query(_sql.LOCK_RUN, (run_id,))
    if row is None:
        raise RunNotFound(run_id)
    info, current = rows.run_info(row[:-1]), row[-1]
    if epoch is not None and current != epoch:
        raise stale(run_id, epoch, current)
    refused = refusal(info, end)
    if refused is not None:
        return refused
    # The statements up to the status flip wait for no answer (the lock above fenced the
    # run; a failure surfaces with the flip's, in the same transaction): in a pipeline they
    # travel with it.
    for params in staged:
        yield Query(_sql.PUT_CHECKPOINT, params, "none")
    if writes["task_ids"] and end.checkpoint_id is not None and end.thread_id is not None:
        ns = str(info.metadata.get("checkpoint_ns", ""))
        yield from checkpoints.put_writes(end.thread_id, ns, end.checkpoint_id, writes,
                                          run_id=None, epoch=None)
    now = utcnow()
    return Query(_sql.FINISH_RUN, {
        "run_id": run_id, "status": end.status.value, "reason": rows.reason_param(end.reason),
        "error": end.error,
        "failure": rows.failure_param(end.error_node, end.error_traceback),
        "checkpoint_id": end.checkpoint_id, "latency": end.cancel_latency_ms,
        "ended_at": now if end.status in TERMINAL_STATUSES else None, "now": now,
        **rows.event_params(end.events)})


def append_events(run_id: str, events: Sequence[RunEvent], epoch: int | None) -> Op[None]:
    """Append to the run's audit log.

    Raises:
        StaleLeaseError: `epoch` is no longer the run's (nothing is appended).
    """
    if not events:
        return
    row = yield Query(_sql.APPEND_EVENTS, {"run_id": run_id, "epoch": epoch,
                                           **rows.event_params(events)})
    if not row[0]:
        raise stale(run_id, epoch, None)


def events(run_id: str) -> Op[list[RunEvent]]:
    """The run's audit log, oldest first."""
    found = yield Query(_sql.LIST_EVENTS, (run_id,), "all")
    return [rows.event(row) for row in found]


def delete(run_id: str) -> Op[bool]:
    """Forget an ended (or paused) run's record and log; False if there was no such run.

    Raises:
        RunError: the run is still in flight.
    """
    from tether.errors import RunError

    status, gone = yield Query(_sql.DELETE_RUN, {"r": run_id})
    if status is None:
        return False
    if not gone:
        raise RunError(f"run {run_id!r} is {status}; cancel it before deleting it")
    return True


def orphans(owner_alive: Callable[[str], bool]) -> Op[list[tuple[str | None, RunInfo]]]:
    """(owner, run) of every orphan, oldest first: a run of an in-process driver whose process
    is dead (owner given), or a queued run whose worker's lease lapsed mid-run (owner None:
    another worker will claim it again). Each owner is checked once."""
    found = yield Query(_sql.ACTIVE_RUNS, None, "all")
    verdicts: dict[str, bool] = {}
    out: list[tuple[str | None, RunInfo]] = []
    for who, queued, lapsed, *run in found:
        info = rows.run_info(tuple(run))
        if queued:
            if lapsed and info.status is not RunStatus.PENDING:
                out.append((None, info))
        elif who is not None:
            if who not in verdicts:
                verdicts[who] = owner_alive(who)
            if not verdicts[who]:
                out.append((who, info))
    return out


def mark_orphaned(info: RunInfo, who: str, pid: int | None) -> Op[RunInfo | None]:
    """End an orphan as `error` with an `orphan` event, if it still has the same dead owner."""
    now = utcnow()
    detail = {"owner": who, "pid": pid, "status": info.status.value,
              "checkpoint_id": info.checkpoint_id}
    row = yield Query(_sql.MARK_ORPHANED, {
        "run_id": info.run_id, "owner": who, "now": now, "detail": rows.jsonb(detail),
        "error": f"orphaned: the process running it died (pid {pid})"})
    return rows.run_info(row) if row is not None else None


def stale(run_id: str, epoch: int | None, current: int | None) -> StaleLeaseError:
    """The error for a write whose fencing epoch was superseded."""
    now = "" if current is None else f" (it is now {current})"
    return StaleLeaseError(f"run {run_id!r}: lease epoch {epoch} was taken over{now}; "
                           "the write was refused")


__all__ = ["append_events", "create", "delete", "events", "finish", "finish_last", "get", "listing",
           "mark_orphaned", "mark_running", "orphans", "request_cancel", "require", "stale"]
