"""Cancels requested elsewhere: by another process sharing the run's store, or heard by a worker
on its `LISTEN` connection or in a lease renewal.

The request is already durable in the store; here it is only noticed and handed to the run, always
the same way: `follow(core, reason)`, which gives it to the run's one inbox
(`RunCore.follow_cancel`). Three feeds, as a run may sit in a long step or between steps:
- a poll, every `POLL` seconds, of all the live runs of one (event loop, store): `watch`;
- a check at every superstep boundary, asked before the run's policies: `Gate`;
- what a worker hears (`NOTIFY`, lease renewals, its own step check): it calls `follow`.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tether.checkpoint.base import CheckpointStore
from tether.engine.hooks import StateView, StepHooks
from tether.engine.task import Task
from tether.runs.core import RunCore
from tether.types import CancelReason

POLL = 0.2
"""Seconds between two polls of a store for the cancels of its live runs."""


def follow(core: RunCore, reason: CancelReason) -> bool:
    """Hand a cancel that is durable already (recorded elsewhere) to `core`'s run; True if the
    run was still there to be cancelled (not ended, not cancelled already)."""
    if core.final is not None or core.scope.cancel_called:
        return False
    core.follow_cancel(reason)
    return True


def check(core: RunCore) -> CancelReason | None:
    """Ask the store now whether `core`'s run has a durable cancel; follow it if it has."""
    reason = core.store.cancel_requests([core.run_id]).get(core.run_id)
    if reason is not None:
        follow(core, reason)
    return reason


class _Poller:
    """The poller of one (loop, store): one query per period for all of their runs."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.cores: dict[str, RunCore] = {}
        self.task: asyncio.Task[None] | None = None

    async def poll(self) -> None:
        # The last run's end cancels the poll: it then returns, leaving no exception (and its
        # traceback, which would point back here) on the task.
        with contextlib.suppress(asyncio.CancelledError):
            await self._poll()

    async def _poll(self) -> None:
        while self.cores:
            await asyncio.sleep(POLL)
            live = [c for c in self.cores.values() if c.final is None
                    and not c.scope.cancel_called]
            if not live:
                continue
            found = await self.store.acancel_requests([c.run_id for c in live])
            for core in live:
                reason = found.get(core.run_id)
                if reason is not None:
                    follow(core, reason)


_pollers: dict[tuple[int, int], _Poller] = {}


def watch(core: RunCore) -> None:
    """Poll for cancels of `core` made elsewhere, while it runs (shared stores only; not a
    worker's run, whose worker hears its cancels and checks them at every step: `step_check`)."""
    loop = core.aloop
    if not core.store.shared or loop is None or core.request.step_check is not None:
        return
    key = (id(loop), id(core.store))
    entry = _pollers.get(key)
    if entry is None:
        entry = _pollers[key] = _Poller(core.store)
    entry.cores[core.run_id] = core
    if entry.task is None or entry.task.done():
        entry.task = loop.create_task(entry.poll(), name="tether-remote-cancels")

    def forget(done: RunCore) -> None:
        entry.cores.pop(done.run_id, None)
        if not entry.cores:
            _pollers.pop(key, None)
            if entry.task is not None and not entry.task.done():
                # Called on the run's loop (the run's end): stop the poller now.
                with contextlib.suppress(RuntimeError):
                    entry.task.cancel()

    core.when_done(forget)


class Gate:
    """A run's `StepHooks`: at every superstep boundary, the checks of cancels made elsewhere
    first (the store's, for a shared durable store; then the caller's `step_check`, a worker's
    lease and drain), then the run's own policies.

    Args:
        core: the run.
        policies: its policies.
        step_check: asked first (a reason stops the run at this boundary).
    """

    __slots__ = ("_check", "_core", "_inner", "_noted", "_poll", "watches_progress")

    def __init__(self, core: RunCore, policies: StepHooks,
                 step_check: Callable[[], CancelReason | None] | None) -> None:
        # The run holds its gate (`core.hooks`): the gate holds it weakly, leaving no cycle.
        self._core: RunCore = weakref.proxy(core)
        self._inner, self._check = policies, step_check
        self.watches_progress = policies.watches_progress
        store, request = core.store, core.request
        # A `step_check` (a worker's) and a store that notes cancels answer from what the
        # last checkpoint statement returned: asking the store again would be a second round
        # trip per step, made on the event loop.
        self._poll = store.shared and request.durable and step_check is None
        self._noted = (self._poll and store.notes_cancels
                       and request.config.durability == "sync")

    def before_step(self, step: int, tasks: Sequence[Task],
                    state: StateView) -> CancelReason | None:
        """Cancels made elsewhere, then the policies."""
        if self._check is not None:
            reason = self._check()
            if reason is not None:
                return reason
        if self._noted:
            reason = self._core.store.cancel_noted(self._core.run_id)
            if reason is not None:
                follow(self._core, reason)
                return reason
        elif self._poll:
            reason = check(self._core)
            if reason is not None:
                return reason
        return self._inner.before_step(step, tasks, state)

    def before_commit(self, step: int, tasks: Sequence[Task],
                      values: Mapping[str, Any]) -> CancelReason | None:
        """The policies' guards."""
        return self._inner.before_commit(step, tasks, values)

    def after_commit(self, step: int, progressed: bool,
                     values: Mapping[str, Any]) -> CancelReason | None:
        """The policies' progress checks."""
        return self._inner.after_commit(step, progressed, values)

    def task_failed(self, task: Task, error: BaseException) -> CancelReason | None:
        """The policies' error rates."""
        return self._inner.task_failed(task, error)


def gate(core: RunCore, policies: StepHooks) -> StepHooks:
    """The hooks a run's loop asks: its policies alone when nothing else can cancel it between
    steps, else behind a `Gate`."""
    step_check = core.request.step_check
    if step_check is None and not (core.store.shared and core.request.durable):
        return policies
    return Gate(core, policies, step_check)


__all__ = ["POLL", "Gate", "check", "follow", "gate", "watch"]
