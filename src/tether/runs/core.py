"""The machinery of one run: its record, its cancel scope, its driver task, its end.

A `RunCore` is created by the runner and starts its driver at once. The user-facing `Run` handle
holds the core, never the other way round, so that a dropped stream can be garbage-collected
(which cancels its run).

Invariants:
- `final` is set exactly once, after the store accepted the run's last transaction.
- A cancel is recorded in the store before the scope is cancelled; the store decides races
  between a cancel and the run's own end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tether.cancel.deadlines import deadline_after
from tether.cancel.scope import CancelScope
from tether.checkpoint.base import CheckpointStore
from tether.config import RunConfig
from tether.engine.hooks import StepHooks
from tether.engine.loop import Loop
from tether.engine.options import LoopOptions
from tether.engine.outcome import LoopOutcome
from tether.engine.spec import GraphSpec
from tether.engine.stream import Emitter
from tether.engine.task import StopMode, Task
from tether.engine.threads import WorkerPool
from tether.runs.buffer import ChunkBuffer
from tether.runs.policies import Budget, LoopSettings, Policies
from tether.types import CancelReason, EventPhase, RunEvent, RunInfo, RunStatus, utcnow

logger = logging.getLogger("tether.runs")


@dataclass(slots=True)
class StreamFormat:
    """How chunks reach the consumer: LangGraph's shapes for `stream_mode` and `subgraphs`."""

    modes: tuple[str, ...] = ()
    single: bool = True
    subgraphs: bool = False

    def shape(self, ns: tuple[str, ...], mode: str, payload: Any) -> Any:
        """The chunk as the consumer sees it."""
        if self.single:
            return (ns, payload) if self.subgraphs else payload
        return (ns, mode, payload) if self.subgraphs else (mode, payload)


@dataclass(slots=True)
class RunRequest:
    """Everything needed to start a run."""

    spec: GraphSpec
    input: Any
    config: RunConfig
    store: CheckpointStore
    durable: bool
    pool: WorkerPool
    stream: StreamFormat = field(default_factory=StreamFormat)
    context: Any = None
    interrupt_before: frozenset[str] | None = None
    interrupt_after: frozenset[str] | None = None
    inline_sync: bool = False
    buffer_limit: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    wrap_error: Callable[[BaseException], BaseException] | None = None
    multitask: str | None = None
    predecessors: list[RunCore] = field(default_factory=list)
    policy_defaults: tuple[dict[str, Any], Any, tuple[Any, ...]] = ({}, None, ())
    adopt: bool = False
    """The run's record exists already (a queued run a worker claimed): take it over instead
    of creating it."""
    step_check: Callable[[], CancelReason | None] | None = None
    """Asked before the policies at every superstep boundary; a reason stops the run there."""


class RunCore:
    """One run's state and driver. See the module docstring."""

    def __init__(self, request: RunRequest, run_id: str) -> None:
        config = request.config
        self.request = request
        self.run_id = run_id
        self.thread_id = config.thread_id
        self.store = request.store
        self.scope = CancelScope(deadline=deadline_after(config.timeout), name=run_id,
                                 shield_grace=config.cancel_grace)
        self.buffer = ChunkBuffer(request.buffer_limit)
        self.emitter = Emitter(self._sink, request.stream.modes)
        self.info = RunInfo(run_id, self.thread_id, RunStatus.PENDING,
                            metadata={**request.metadata, "checkpoint_ns": config.checkpoint_ns})
        self.final: RunInfo | None = None
        self.result: Any = None
        self.exception: BaseException | None = None
        self.pending_events: list[RunEvent] = []
        self.requested_at: float | None = None
        self.loop_obj: Loop | None = None
        self.task: asyncio.Task[None] | None = None
        self.aloop: asyncio.AbstractEventLoop | None = None
        # Waiters, created only when someone waits: most runs are awaited once, on their loop.
        self._done_event: threading.Event | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._created = False
        self._early: CancelReason | None = None
        self._lock = threading.Lock()
        self.on_final: list[Callable[[RunCore], None]] = []
        self.policies: Policies | None = None
        self.hooks: StepHooks | None = None
        self.meter: Policies | None = None

    # -- starting -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Create the record and start the driver on `loop` (the caller's running loop)."""
        from tether.runs.admission import ADMISSION
        from tether.runs.driver import drive

        ADMISSION.admit(self)
        self.aloop = loop
        try:
            if not self.request.adopt:
                self.store.create_run(self.info)
        except BaseException:
            ADMISSION.leave(self)
            raise
        self._created = True
        self.task = loop.create_task(drive(self), name=f"tether-run-{self.run_id}")

    @property
    def started(self) -> bool:
        """True once the driver exists."""
        return self.task is not None

    # -- cancelling -----------------------------------------------------------------------

    async def request_cancel(self, reason: CancelReason) -> RunInfo:
        """Record a cancel durably, then cancel the scope. Idempotent; returns the receipt.

        Cancellation:
            The durable write is not interrupted midway; if the caller is cancelled after it,
            the cancel still proceeds. Safe to retry.
        """
        if self.final is not None:
            return self.final
        if not self._created:
            self._early = self._early or reason
            return self.info
        info, first = await self.store.arequest_cancel(self.run_id, reason)
        return self._after_request(info, first)

    def request_cancel_sync(self, reason: CancelReason) -> RunInfo:
        """`request_cancel` from any thread, without an event loop."""
        if self.final is not None:
            return self.final
        if not self._created:
            self._early = self._early or reason
            return self.info
        info, first = self.store.request_cancel(self.run_id, reason)
        return self._after_request(info, first)

    def follow_cancel(self, info: RunInfo) -> RunInfo:
        """Propagate a cancel already durable in the store (recorded by another process and
        seen there, e.g. by a worker): the scope is cancelled with no second request."""
        if self.final is not None:
            return self.final
        return self._after_request(info, False)

    def _after_request(self, info: RunInfo, first: bool) -> RunInfo:
        with self._lock:
            if first and self.requested_at is None:
                self.requested_at = time.monotonic()
                request = info.reason
                assert request is not None
                self._announce(RunEvent("request", request.requested_at, None, request.to_dict()))
        if info.terminal:
            return info
        reason = info.reason
        assert reason is not None
        self.info = info
        if self.scope.cancel(reason):
            self.event("propagate", detail={"kind": reason.kind})
        return info

    def on_deadline(self, _scope: CancelScope) -> None:
        """The run's deadline passed: cancel it with kind `timeout`, through the usual path.

        Synchronous (on the run's loop): the request is durable and the scope cancelled before
        this returns, so nothing of the run can observe the deadline without the cancel.
        """
        timeout = self.request.config.timeout
        reason = CancelReason("timeout", f"run exceeded its timeout of {timeout}s", "deadline",
                              evidence={"timeout": timeout})
        self.request_cancel_sync(reason)

    @property
    def early_cancel(self) -> CancelReason | None:
        """A cancel that arrived before the record existed."""
        return self._early

    # -- events and chunks ----------------------------------------------------------------

    def event(self, phase: EventPhase, node: str | None = None,
              detail: dict[str, Any] | None = None) -> RunEvent:
        """Record a lifecycle event (stored with the run's next transaction)."""
        event = RunEvent(phase, utcnow(), node, detail or {})
        with self._lock:
            self.pending_events.append(event)
        self._announce(event)
        return event

    def take_events(self) -> tuple[RunEvent, ...]:
        """Events not yet stored."""
        with self._lock:
            events, self.pending_events = tuple(self.pending_events), []
        return events

    def _announce(self, event: RunEvent) -> None:
        logger.info("run %s %s%s %s", self.run_id, event.phase,
                    f" [{event.node}]" if event.node else "", event.detail or "")
        if not self.emitter.lifecycle:
            return
        payload = {"phase": event.phase, "at": event.at.isoformat(), "node": event.node,
                   "detail": event.detail}
        loop = self.aloop
        if loop is None or _in_loop(loop):
            self._sink((), "lifecycle", payload)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._sink, (), "lifecycle", payload)

    def _sink(self, ns: tuple[str, ...], mode: str, payload: Any) -> None:
        self.buffer.put(self.request.stream.shape(ns, mode, payload))

    def consumer_waiting(self) -> bool:
        """True when a consumer is blocked on this run's stream (the driver then yields)."""
        return self.buffer.waiting

    # -- the loop -------------------------------------------------------------------------

    def make_policies(self) -> Policies:
        """The run's policies (budgets, loop detection, guards), built from its config."""
        budget, loops, guards = self.request.policy_defaults
        config = self.request.config
        remote = self._remote_poll if self.store.shared and self.request.durable else None
        self.policies = Policies(Budget.parse(budget, config.budget),
                                 LoopSettings.parse(loops, config.loop_detection), guards,
                                 self._policy_stop, remote)
        return self.policies

    def _remote_poll(self) -> CancelReason | None:
        return self.store.cancel_requests([self.run_id]).get(self.run_id)

    def _policy_stop(self, reason: CancelReason) -> None:
        if self.final is None and not self.scope.cancel_called:
            self.request_cancel_sync(reason)

    def make_loop(self) -> Loop:
        """The engine loop for this run."""
        req = self.request
        policies = self.policies or self.make_policies()
        self.meter = policies
        self.hooks = policies if req.step_check is None else _Checked(policies, req.step_check)
        options = LoopOptions(
            config=req.config, scope=self.scope, emitter=self.emitter, pool=req.pool,
            host=self, store=self.store if req.durable else None,
            thread_id=self.thread_id if req.durable else None,
            ns=req.config.checkpoint_ns, run_id=self.run_id, inline_sync=req.inline_sync,
            context=req.context, interrupt_before=req.interrupt_before,
            interrupt_after=req.interrupt_after, subgraphs=req.stream.subgraphs,
        )
        self.loop_obj = Loop(req.spec, options)
        return self.loop_obj

    async def stop(self, reason: CancelReason) -> None:
        """Stop the run for a reason the engine found (a policy, its recursion limit, a node's
        timeout): through `request_cancel`, unless the run is cancelled already.

        Cancellation:
            As `request_cancel`.
        """
        if self.final is None and not self.scope.cancel_called:
            await self.request_cancel(reason)

    def node_stopped(self, task: Task, how: StopMode) -> None:
        """Record how a node stopped after the cancel (the `terminate_node` phase)."""
        self.event("terminate_node", task.name, {"how": how, "task_id": task.id})

    # -- the end --------------------------------------------------------------------------

    def settle(self, info: RunInfo, result: Any, exception: BaseException | None) -> None:
        """Publish the run's end: wake waiters and close the stream."""
        with self._lock:
            self.final = self.info = info
            self.result = result
            self.exception = exception
            event = self._done_event
        self.buffer.close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        if event is not None:
            event.set()
        for callback in self.on_final:
            callback(self)

    async def wait(self) -> RunInfo:
        """Wait (on the run's own loop) until the run has ended."""
        if self.final is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        assert self.final is not None
        return self.final

    def wait_blocking(self, timeout: float | None) -> bool:
        """Block (another thread than the run's loop) until the run has ended; False on
        timeout."""
        with self._lock:
            if self.final is not None:
                return True
            if self._done_event is None:
                self._done_event = threading.Event()
            event = self._done_event
        return event.wait(timeout)

    def outcome_if_cancelled(self) -> LoopOutcome | None:
        """The loop's outcome when a cancel stopped it between its own checks."""
        return self.loop_obj.cancelled_outcome() if self.loop_obj is not None else None


class _Checked:
    """A run's policies behind an outside check, asked first at every superstep boundary."""

    __slots__ = ("_check", "_inner")

    def __init__(self, inner: Policies, check: Callable[[], CancelReason | None]) -> None:
        self._inner, self._check = inner, check

    def before_step(self, step: int, tasks: Any, values: Any) -> CancelReason | None:
        return self._check() or self._inner.before_step(step, tasks, values)

    def before_commit(self, step: int, tasks: Any, values: Any) -> CancelReason | None:
        return self._inner.before_commit(step, tasks, values)

    def after_commit(self, step: int, changed: frozenset[str], values: Any) -> CancelReason | None:
        return self._inner.after_commit(step, changed, values)

    def task_failed(self, task: Any, error: BaseException) -> CancelReason | None:
        return self._inner.task_failed(task, error)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
