"""The run queue in the store's database: queued runs are `runs` rows (status `pending`) that
carry what a worker needs; workers claim them under leases with fencing epochs.

```
enqueue ──> pending (queued) ──claim──> held (lease, epoch+1) ──> running ──> ended
                 ^                          │  lease lapses (crash) / release (drain)
                 └──────────────────────────┘  the next claim resumes from the last checkpoint
```
A cancel is a durable request on the row (plus `NOTIFY tether_cancel`); a run no live worker
holds whose cancel is durable, or whose deadline passed, is ended by `sweep`, which every worker
runs. No broker: the database is the queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from tether import lifecycle
from tether.checkpoint import owner as process
from tether.checkpoint.base import RunFinish
from tether.checkpoint.ids import uuid7
from tether.checkpoint.postgres import _sql, rows, runs
from tether.checkpoint.postgres.ops import AtCommit, Op, Query, unique_violation
from tether.checkpoint.serde import Serializer
from tether.errors import ThreadBusyError
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus, utcnow

if TYPE_CHECKING:
    from tether.checkpoint.postgres.store import PostgresSaver

STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")
CANCEL_CHANNEL = _sql.CANCEL_CHANNEL
"""Notifications on it carry the id of a run whose cancel request just committed."""
QUEUE_CHANNEL = _sql.QUEUE_CHANNEL
"""Notifications on it say a run was queued or handed back, or a run freed its thread for a run
queued behind it."""


@dataclass(frozen=True, slots=True)
class Order:
    """A run to queue.

    Attributes:
        graph: the name of the graph to run (workers claim the graphs they serve).
        config: the run's config (JSON): `configurable.thread_id` is required; `timeout` sets
            the run's deadline, counted from now; `priority` orders the queue (higher first).
        options: what else the run is started with (`context`, `interrupt_before`...), stored
            with the input through the store's serializer.
        multitask: what to do when the thread has a run in flight (`reject`, `enqueue`,
            `interrupt`, `rollback`), decided in the database across processes.
    """

    graph: str
    thread_id: str
    input: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=uuid7)
    multitask: str = "reject"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed run: what the worker needs to drive it, and the lease it holds.

    Attributes:
        epoch: the fencing token of this claim.
        resumed: the run had started before (a worker died or handed it back): continue from
            its last checkpoint rather than from `input`.
        remaining: seconds left before the run's deadline (None: no deadline).
        supersedes: runs to roll back before starting (`multitask_strategy="rollback"`).
        started: the run's record when the claim was also its start (`aclaim(start=True)`):
            it is `running` already, its `start` logged.
    """

    run_id: str
    thread_id: str
    graph: str
    input: Any
    options: dict[str, Any]
    config: dict[str, Any]
    epoch: int
    resumed: bool
    checkpoint_id: str | None
    supersedes: tuple[str, ...]
    multitask: str | None
    remaining: float | None
    started: RunInfo | None = None


class RunQueue:
    """The queue of one `PostgresSaver`'s database (`store.queue`)."""

    def __init__(self, store: PostgresSaver) -> None:
        self._store = store

    async def alisten(self, application_name: str) -> Any:
        """A new connection `LISTEN`ing for cancels and queue changes (the caller closes it;
        iterate its `notifies()`); a `psycopg.AsyncConnection`.

        Cancellation:
            Safe: a connection being made is abandoned.
        """
        conn = await self._store.db.aconnect(application_name)
        try:
            for statement in _sql.LISTEN:
                await conn.execute(statement)
        except BaseException:
            await conn.close()
            raise
        return conn

    def release(self, run_id: str, epoch: int, owner: str, why: str) -> bool:
        """Hand a held run back (sync). See `arelease`."""
        row = self._store.db.run(_one(_release(run_id, epoch, owner, why)))
        return row is not None

    def enqueue(self, order: Order) -> RunInfo:
        """Queue a run (sync). See `aenqueue`."""
        return self._store.db.run(enqueue(order, self._store.serde), transaction=True)

    async def aenqueue(self, order: Order) -> RunInfo:
        """Queue a run for the workers serving `order.graph`; its `pending` record.

        Raises:
            ThreadBusyError: `multitask="reject"` and the thread has a run in flight.
            ValueError: a run with this id exists; an unknown strategy.
            SerializationError: the input or options cannot be stored.

        Cancellation:
            One transaction: the run is queued (and any superseded runs' cancels recorded)
            whole, or nothing is. Not idempotent: a retry after an unseen commit raises
            ValueError for the existing id.
        """
        return await self._store.db.arun(enqueue(order, self._store.serde), transaction=True)

    async def aclaim(self, owner: str, graphs: Sequence[str], lease: float, limit: int,
                     held: Sequence[str] = (), *, start: bool = False) -> list[Job]:
        """Claim up to `limit` runs of `graphs` for `lease` seconds, best priority first;
        never one of `held` (runs the worker still has, even if their lease lapsed).

        With `start`, each claim is also its run's start, recorded as `mark_running` records
        it (`running`, owned by this process, a `start` event): the worker that drives it then
        has nothing to record before the run's first step (`Job.started`).

        Cancellation:
            One statement: cancelled before its commit, nothing is claimed; after it, the claims
            stand and lapse with their leases, then are claimed again.
        """
        now = utcnow()
        found = await self._store.db.arun(_rows(Query(_sql.CLAIM, {
            "owner": owner, "graphs": list(graphs), "lease": lease, "limit": limit,
            "held": list(held), "now": now, "start": start, "process": process.current()})))
        return [_job(row, self._store.serde, started=start) for row in found]

    async def arenew(self, held: Mapping[str, int], lease: float
                     ) -> dict[str, CancelReason | None]:
        """Extend the leases still held (run id → epoch); each held run's cancel reason.

        A run missing from the answer is lost (another worker holds it) or has ended.

        Cancellation:
            Safe: a lease not renewed lapses; renew again.
        """
        if not held:
            return {}
        found = await self._store.db.arun(_rows(Query(_sql.RENEW, {
            "lease": lease, "ids": list(held), "epochs": list(held.values())})))
        return {run_id: CancelReason.from_dict(reason) if reason is not None else None
                for run_id, reason in found}

    async def arelease(self, run_id: str, epoch: int, owner: str, why: str) -> bool:
        """Hand a held run back to the queue; False if the lease was already lost.

        Cancellation:
            One statement; safe to retry (a second release finds the epoch moved on).
        """
        row = await self._store.db.arun(_one(_release(run_id, epoch, owner, why)))
        return row is not None

    async def afail_start(self, run_id: str, epoch: int, owner: str, error: str, *,
                          attempts: int) -> RunInfo | None:
        """Record that a held run failed before its first step (`error`: type and message):
        it is handed back to the queue; at its `attempts`-th such failure it ends `error`
        instead, with the reason, which frees its thread. The ended record, or None.

        Cancellation:
            One transaction; safe to retry (a second call finds the epoch moved on).
        """
        return await self._store.db.arun(
            fail_start(run_id, epoch, owner, error, attempts=attempts, serde=self._store.serde),
            transaction=True)

    async def asweep(self, owner: str, *, run_id: str | None = None,
                     limit: int = 100) -> list[RunInfo]:
        """End the queued runs no live worker holds whose cancel is durable (`cancelled`, or
        `timeout` for a deadline) or whose deadline passed (`timeout`); return them, ended.

        Cancellation:
            One transaction; runs another sweeper holds are skipped, so sweepers in every
            worker never end a run twice.
        """
        return await self._store.db.arun(sweep(owner, run_id, limit, self._store.serde),
                                         transaction=True)

    async def awatch(self, run_ids: Sequence[str]) -> list[tuple[str, RunStatus, str | None,
                                                                  int | None]]:
        """(run, status, checkpoint, last event id) of each run that exists.

        Cancellation:
            Safe: it only reads.
        """
        found = await self._store.db.arun(_rows(Query(_sql.WATCH, (list(run_ids),))))
        return [(r, RunStatus(s), c, e) for r, s, c, e in found]

    async def aevents_after(self, cursors: Mapping[str, int]
                            ) -> list[tuple[int, str, RunEvent]]:
        """(event id, run, event) of each run's events after its cursor, oldest first.

        Cancellation:
            Safe: it only reads.
        """
        found = await self._store.db.arun(_rows(Query(_sql.EVENTS_AFTER, (
            list(cursors), list(cursors.values())))))
        return [(row[0], row[1], rows.event(row[2:])) for row in found]


# -- operations -------------------------------------------------------------------------------


def enqueue(order: Order, serde: Serializer) -> Op[RunInfo | AtCommit[RunInfo]]:
    """Queue `order` under the multitask rule of its thread (run it in one transaction).

    Raises:
        ThreadBusyError, ValueError, SerializationError: nothing is queued.
    """
    if order.multitask not in STRATEGIES:
        raise ValueError(f"multitask_strategy must be one of {STRATEGIES}, "
                         f"not {order.multitask!r}")
    job = serde.dumps({"input": order.input, **order.options}, "input")
    yield Query(_sql.LOCK_THREAD, (order.thread_id,), "none")
    # `reject` asks the insert itself whether the thread is busy; `enqueue` need not know.
    active: list[str] = []
    if order.multitask in ("interrupt", "rollback"):
        active = [r for (r,) in (yield Query(_sql.ACTIVE_ON_THREAD, (order.thread_id,), "all"))]
    if active:
        reason = CancelReason("superseded", f"superseded by run {order.run_id} "
                              f"({order.multitask})", order.run_id)
        yield Query(_sql.SUPERSEDE, {"ids": active, "at": reason.requested_at,
                                     "reason": rows.reason_param(reason)}, "none")
    timeout = order.config.get("timeout")
    # The insert is the last statement and its row is read after the commit (`AtCommit`): a
    # run is queued in one round trip. A busy thread kept it out (the statement inserted
    # nothing, and the lock taken first ends with the transaction): refused then.
    cursor = yield Query(_sql.INSERT_QUEUED, {
        "run_id": order.run_id, "thread_id": order.thread_id, "created_at": utcnow(),
        # As a run started in-process records it: the caller's config metadata.
        "metadata": rows.jsonb({**(order.config.get("metadata") or {}), **order.metadata,
                                "graph": order.graph, "checkpoint_ns": ""}),
        "graph": order.graph, "job": job, "config": rows.jsonb(order.config),
        "priority": int(order.config.get("priority") or 0),
        "timeout": float(timeout) if timeout is not None else None,
        "supersedes": active if order.multitask == "rollback" else [],
        "multitask": order.multitask, "unless_busy": order.multitask == "reject"}, "later")
    return AtCommit(cursor, partial(_queued, order.thread_id), partial(_duplicate, order.run_id))


def _queued(thread_id: str, row: Any) -> RunInfo:
    busy, queued = row[0], row[1:]
    if busy:
        raise ThreadBusyError(thread_id, busy[0])
    return rows.run_info(queued)


def _duplicate(run_id: str, exc: Exception) -> BaseException | None:
    return ValueError(f"run {run_id!r} already exists") if unique_violation(exc) else None


def sweep(owner: str, run_id: str | None, limit: int, serde: Serializer) -> Op[list[RunInfo]]:
    """End the sweepable runs (see `RunQueue.asweep`); run it in one transaction."""
    found = yield Query(_sql.SWEEPABLE, {"run_id": run_id, "limit": limit}, "all")
    ended = []
    for row in found:
        info, timeout = rows.run_info(row[:-1]), row[-1]
        result = yield from runs.finish(info.run_id, _swept(info, timeout, owner), serde, None)
        ended.append(result.info)
    return ended


def fail_start(run_id: str, epoch: int, owner: str, error: str, *, attempts: int,
               serde: Serializer) -> Op[RunInfo | None]:
    """See `RunQueue.afail_start` (run it in one transaction)."""
    (failed,) = yield Query(_sql.START_FAILURES, (run_id,))
    if failed + 1 < attempts:
        yield _release(run_id, epoch, owner, f"could not start: {error}",
                       {"start_failed": error})
        return None
    message = f"{error} (the run failed to start {attempts} times; not retried)"
    end = RunFinish(status=RunStatus.ERROR, error=message, unless_cancel_requested=True,
                    events=(RunEvent("finish", utcnow(), None, {
                        "status": "error", "error": message, "owner": owner}),))
    result = yield from runs.finish(run_id, end, serde, epoch)
    if not result.applied:  # a cancel is durable: the sweeper ends the run with it
        yield _release(run_id, epoch, owner, "could not start; cancelled meanwhile", {})
        return None
    return result.info


def _release(run_id: str, epoch: int, owner: str, why: str,
             detail: dict[str, Any] | None = None) -> Query:
    return Query(_sql.RELEASE, {"run_id": run_id, "epoch": epoch, "owner": owner, "why": why,
                                "now": utcnow(), "detail": rows.jsonb(detail or {})})


def _swept(info: RunInfo, timeout: Any, owner: str) -> RunFinish:
    """The end of a run nobody drives: its durable cancel, or its deadline, settled here."""
    now = utcnow()
    events = []
    reason = info.reason
    if reason is None:
        reason = CancelReason("timeout", f"run exceeded its timeout of {timeout}s", "deadline",
                              now, {"timeout": timeout, "swept_by": owner})
        events.append(RunEvent("request", now, None, reason.to_dict()))
    status = RunStatus.TIMEOUT if reason.kind == "timeout" else RunStatus.CANCELLED
    events += [
        RunEvent("propagate", now, None, {"kind": reason.kind, "driver": None,
                                          "swept_by": owner}),
        RunEvent("checkpoint", now, None, {"checkpoint_id": info.checkpoint_id,
                                           "pending_writes": 0, "cancelled_tasks": []}),
        RunEvent("terminate", now, None, {"status": status.value}),
    ]
    latency = max(0.0, (now - reason.requested_at).total_seconds() * 1000.0)
    return RunFinish(status=status, checkpoint_id=info.checkpoint_id, thread_id=info.thread_id,
                     reason=reason, events=lifecycle.complete(events, now),
                     cancel_latency_ms=latency)


def _rows(query: Query) -> Op[list[Any]]:
    found: list[Any] = yield Query(query.sql, query.params, "all")
    return found


def _one(query: Query) -> Op[Any]:
    row = yield query
    return row


def _job(row: tuple[Any, ...], serde: Serializer, *, started: bool) -> Job:
    (run_id, thread_id, graph, job, config, epoch, status, checkpoint_id, supersedes,
     multitask, remaining), record = row[:11], row[11:]
    payload = dict(serde.loads(job, f"the queued input of run {run_id!r}"))
    graph_input = payload.pop("input", None)
    return Job(run_id=run_id, thread_id=thread_id, graph=graph, input=graph_input,
               options=payload, config=dict(config or {}), epoch=int(epoch),
               resumed=status != RunStatus.PENDING.value, checkpoint_id=checkpoint_id,
               supersedes=tuple(supersedes or ()), multitask=multitask, remaining=remaining,
               started=rows.run_info(record) if started else None)


__all__ = ["CANCEL_CHANNEL", "QUEUE_CHANNEL", "STRATEGIES", "Job", "Order", "RunQueue",
           "enqueue", "fail_start", "sweep"]
