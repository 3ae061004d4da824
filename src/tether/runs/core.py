"""The machinery of one run: its record, its cancel scope, its events, its end.

A `RunCore` is made by a `Run` handle and driven by `runs/driver.py`. The handle holds the core,
never the other way round, so that a dropped stream can be garbage-collected (which cancels its
run). The core is the only writer of its own fields; the decisions it applies at the run's end
are pure functions of `runs/finalize.py`, and its end is published by its base, `RunEnd`
(`runs/ending.py`: the final record, the result or exception, the waiters).

Its cancel requests come in through its other base, `CancelInbox` (`runs/inbox.py`), which
keeps what the end needs of them.

Invariants:
- `final` is set exactly once, after the store accepted the run's last transaction.
- A cancel is recorded in the store before the run's last transaction (`runs/inbox.py`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

from tether.cancel.deadlines import deadline_after
from tether.cancel.scope import CancelHook, CancelScope
from tether.checkpoint.base import RunFinish
from tether.engine.hooks import StepHooks
from tether.engine.loop import Loop
from tether.engine.options import LoopOptions
from tether.engine.outcome import LoopOutcome
from tether.engine.stream import Emitter
from tether.engine.task import StopMode, Task
from tether.runs import finalize
from tether.runs.buffer import ChunkBuffer
from tether.runs.cleanup import run_hooks
from tether.runs.ending import RUN_LOCK
from tether.runs.inbox import CancelInbox
from tether.runs.journal import Journal, RecordedCloser
from tether.runs.policies import Policies
from tether.runs.request import RunRequest
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus

Driver = Callable[["RunCore"], Coroutine[Any, Any, None]]

class RunCore(CancelInbox):
    """One run's state; see the module docstring.

    Args:
        request: what the run is.
        run_id: its id.
        predecessors: runs in flight on its thread that it waits for (or supersedes).
    """

    # Slots: a thousand runs in flight are a thousand of these.
    __slots__ = (
        "__weakref__", "_created", "_loop", "_record", "admitted", "aloop", "emitter", "hooks",
        "journal", "meter", "policies", "predecessors", "request", "run_id", "scope", "store",
        "task", "thread_id",
    )

    def __init__(self, request: RunRequest, run_id: str,
                 predecessors: Sequence[RunCore] = ()) -> None:
        config = request.config
        buffer = ChunkBuffer(request.buffer_limit, request.stream)
        super().__init__(RunInfo(run_id, config.thread_id, RunStatus.PENDING, metadata={
            **request.metadata, "checkpoint_ns": config.checkpoint_ns}), buffer)
        self.request = request
        self.run_id = run_id
        self.thread_id = config.thread_id
        self.store = request.store
        self.predecessors = predecessors or ()  # not a list per run for the usual none
        self.scope = CancelScope(deadline=deadline_after(config.timeout), name=run_id,
                                 shield_grace=config.cancel_grace)
        # The buffer is the emitter's sink, not the run: no cycle through `self`.
        self.emitter = Emitter(buffer, request.stream.modes)
        self.journal = Journal(run_id, self.emitter)
        if request.on_end is not None:
            self.when_done(request.on_end)
        self.task: asyncio.Task[None] | None = None
        self.aloop: asyncio.AbstractEventLoop | None = None
        self.policies: Policies | None = None
        self.meter: Policies | None = None
        self.hooks: StepHooks | None = None
        self._loop: Loop | None = None
        self._created = False
        # Made only for a run whose record is made by its own task (`start(record=False)`).
        self._record: asyncio.Future[None] | None = None
        # True when the run took its admission slot as it was launched (no wait for one).
        self.admitted = False

    # -- starting -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, drive: Driver, *,
              record: bool = True) -> None:
        """Create the record (unless the run adopts one) and start `drive(self)` on `loop`.

        With `record=False` the record is not made here: `drive` makes it first, through the
        store's async API (`create_record`), so that starting a run never blocks a loop that
        serves others on the store's write lock; `recorded()` then tells when it exists.
        """
        self.aloop = self.journal.loop = loop
        if not record and not self.request.adopt:
            self._record = loop.create_future()
        else:
            if not self.request.adopt:
                self.store.create_run(self.info)
            self._created = True
        self.task = loop.create_task(drive(self), name=f"tether-run-{self.run_id}")

    async def create_record(self) -> None:
        """Make the record of a run started with `record=False` (its driver's first step);
        a failure ends the run with it, reported to `recorded()` and to its waiters.

        Cancellation:
            Deferred: the record is made (or refused) whole, as the store's `acreate_run`.
        """
        record = self._record
        if self._created or record is None:
            return
        try:
            await self.store.acreate_run(self.info)
        except BaseException as exc:
            if not record.done():
                record.set_exception(exc)
                record.exception()  # retrieved: a run nobody awaited logs nothing
            if self.final is None:
                self.settle(self.info, None, exc)
            raise
        with RUN_LOCK:  # a request that saw no record has kept itself in `_early` by now
            self._created = True
        if not record.done():
            record.set_result(None)

    async def recorded(self) -> None:
        """Return once the run's record exists (at once unless it is being made).

        Raises:
            What the store raised making it (the run has then ended with it).

        Cancellation:
            Only the waiting stops: the record is made all the same.
        """
        if self._record is not None and not self._record.done():
            await asyncio.shield(self._record)
        elif self._record is not None:
            self._record.result()

    @property
    def started(self) -> bool:
        """True once the driver exists."""
        return self.task is not None

    async def mark_running(self, since: datetime) -> bool:
        """Record the run's start (its driver began at `since`); False when a cancel durable
        before it keeps it from starting.

        A run whose claim recorded its start (`request.started`) takes that record: no
        round trip before its first step. A cancel made durable since then stops it at its
        first step boundary instead (its claim has made it `running`).

        Cancellation:
            One store transaction; safe to retry.
        """
        if self.request.started is not None:
            self.info = self.request.started
            return True
        start = RunEvent("start", since)
        # An adopted record was created by whoever queued the run.
        events = (start,) if self.request.adopt else (RunEvent("create", self.info.created_at),
                                                      start)
        info = await self.store.amark_running(self.run_id, events)
        if info is None:
            return False
        self.info = info
        return True

    # -- events and chunks ----------------------------------------------------------------

    def node_stopped(self, task: Task, how: StopMode) -> None:
        """Record how a node stopped after the cancel (the `terminate_node` phase)."""
        self.journal.record("terminate_node", task.name, {"how": how, "task_id": task.id})

    def consumer_waiting(self) -> bool:
        """True when a consumer is blocked on this run's stream (the loop then yields)."""
        return self.buffer.waiting

    # -- the loop -------------------------------------------------------------------------

    def make_loop(self, policies: Policies, hooks: StepHooks) -> Loop:
        """The engine loop for this run: its `policies` count what nodes report and stop the
        run; `hooks` are asked at every step (the policies, maybe behind other checks)."""
        req = self.request
        self.policies = self.meter = policies
        self.hooks = hooks
        self._loop = Loop(req.spec, LoopOptions(
            config=req.config, scope=self.scope, emitter=self.emitter, pool=req.pool,
            host=weakref.proxy(self), store=self.store if req.durable else None,
            thread_id=self.thread_id if req.durable else None,
            ns=req.config.checkpoint_ns, run_id=self.run_id, inline_sync=req.inline_sync,
            context=req.context, long_term_store=req.long_term_store,
            interrupt_before=req.interrupt_before,
            interrupt_after=req.interrupt_after, subgraphs=req.stream.subgraphs,
            cache=req.cache, cache_policy=req.cache_policy, observer=req.observer,
            closer=None if req.closer is None else RecordedCloser(req.closer, self.journal),
        ))
        return self._loop

    def outcome_if_cancelled(self) -> LoopOutcome | None:
        """The loop's outcome when a cancel stopped it between its own checks."""
        return self._loop.cancelled_outcome() if self._loop is not None else None

    # -- the end --------------------------------------------------------------------------

    async def finish(self, outcome: LoopOutcome | None, failure: BaseException | None, *,
                     started: bool) -> None:
        """Commit the run's end in one store transaction and publish it.

        For a cancel this is where the last four phases happen: each stopped node is reported
        (`terminate_node`), cleanup hooks run (`cleanup`), the final checkpoint is committed
        with the status flip (`checkpoint`), and the run ends (`terminate`).

        Cancellation:
            No anyio cancel reaches it (the driver calls it out of the run's scope, and no other
            encloses a driver: no shield, a scope per run, is needed; a native `Task.cancel()`
            would pass one anyway: the run then settles as failed). Writes the final
            checkpoint; cleanup hooks run shielded, bounded by the cleanup grace.
        """
        try:
            end = finalize.ending(outcome, failure)
            refused = None
            if end.status is not None:
                refused = await self._commit_end(end, outcome)
                if refused is None:
                    return
            await self._commit_cancel(outcome, started, refused)
        except BaseException as exc:
            # The store refused or failed: report the run as failed rather than hang,
            # even when the store cannot be read either (its connection is gone).
            try:
                info = self.store.get_run(self.run_id) or self.info
            except Exception:  # noqa: BLE001 - the failure reported is `exc`
                info = self.info
            self.settle(info, None, exc)
            raise

    async def _commit_end(self, end: finalize.Ending,
                          outcome: LoopOutcome | None) -> RunFinish | None:
        # A failing node aborts its step: the siblings it stopped clean up as on any stop.
        if hooks := self._report_stopped(outcome):
            await self._clean_up(hooks)
        self.journal.record("finish", end.node, {**end.detail(), **finalize.spent(self.policies)})
        if self._must_settle(stopped=False):
            await self._settle_request(stopped=False)
        commit = finalize.commit_end(end, outcome, self.thread_id, self.journal.take())
        result = await self.store.afinish_run(self.run_id, commit)
        if not result.applied:
            return commit  # a cancel became durable first: it wins
        self.settle(result.info, end.value, end.error)
        return None

    async def _commit_cancel(self, outcome: LoopOutcome | None, started: bool,
                             refused: RunFinish | None) -> None:
        ahead = self._ahead_of_answer()
        reason = self._take_ahead(ahead) if ahead is not None else await self._durable_reason()
        if hooks := self._report_stopped(outcome):  # most have none: no coroutine then
            await self._clean_up(hooks)
        self.journal.record("checkpoint",
                            detail=finalize.checkpoint_detail(outcome, refused, started))
        taken = self.journal.take()
        result = None
        if ahead is not None:
            anticipated = self._anticipated
            if anticipated is not None and not anticipated.done():  # (the hooks may be slow)
                commit = self._cancel_commit(reason, outcome, refused, taken, ahead)
                result = await self.store.afinish_run(self.run_id, commit)
            if result is None or not result.applied:  # not (yet) the durable request
                result = None
                reason = await self._after_ahead(ahead)
                taken = (*taken, *self.journal.take())
        if result is None:
            commit = self._cancel_commit(reason, outcome, refused, taken)
            result = await self.store.afinish_run(self.run_id, commit)
        if self.journal.announcing:  # nobody listens, usually: no pass over the events then
            recorded = {id(event) for event in taken}
            for event in commit.events:  # the phases with nothing to do, and `terminate`
                if id(event) not in recorded:
                    self.journal.announce(event)
        self.settle(result.info, None, finalize.CancelVerdict(
            reason, self.run_id, result.info.checkpoint_id,
            outcome.error if outcome is not None else None, self.request.config.recursion_limit))

    def _cancel_commit(self, reason: CancelReason, outcome: LoopOutcome | None,
                       refused: RunFinish | None, taken: tuple[RunEvent, ...],
                       ahead: CancelReason | None = None) -> RunFinish:
        """The last transaction of a cancelled run (`finalize.commit_cancel`)."""
        assert self._requested_at is not None
        latency = (time.monotonic() - self._requested_at) * 1000.0
        commit, _terminate = finalize.commit_cancel(reason, outcome, refused, self.thread_id,
                                                    events=taken, latency_ms=latency,
                                                    spent=finalize.spent(self.policies),
                                                    after_request=ahead)
        return commit

    def _report_stopped(self, outcome: LoopOutcome | None) -> list[tuple[str, CancelHook]]:
        """Report the nodes the stop ended at their next await (`terminate_node`); return the
        cleanup hooks of every stopped task, for `_clean_up`."""
        for node, detail in finalize.stopped_nodes(outcome):
            self.journal.record("terminate_node", node, detail)
        return outcome.hooks if outcome is not None else []

    async def _clean_up(self, hooks: list[tuple[str, CancelHook]]) -> None:
        """Run the cleanup hooks of the stopped tasks, once each (`cleanup`)."""
        config = self.request.config
        for report in await run_hooks(hooks, config.cleanup_grace, self.request.pool):
            self.journal.record("cleanup", report["node"], report)
