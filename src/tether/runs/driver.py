"""The driver task of a run: start it, run the loop under the run's scope, finish.

The driver is the only task that enters the run's cancel scope; everything after the loop
returns happens outside it, so the run's end is never interrupted by the cancel it reports.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

import anyio

from tether.engine.loop import Loop
from tether.engine.outcome import LoopOutcome
from tether.runs import remote
from tether.runs.admission import ADMISSION
from tether.runs.core import RunCore
from tether.runs.multitask import wait_turn
from tether.runs.policies.budget import over
from tether.types import CancelReason, utcnow

_LEAVE = ADMISSION.leave
"""Made once: a bound method per run would be one more object for the collector."""


def launch(core: RunCore, loop: asyncio.AbstractEventLoop) -> None:
    """Take a slot for `core` (or a place in the queue for one), create its record and start
    its driver on `loop` (the caller's running loop).

    Raises:
        OverloadError: the process is full and refuses new runs.
    """
    core.admitted = ADMISSION.admit(core)
    try:
        core.start(loop, drive)
    except BaseException:
        ADMISSION.leave(core)
        raise


async def drive(core: RunCore) -> None:
    """Run `core` from `pending` to its end. Never raises, except a foreign cancellation, or
    `KeyboardInterrupt`/`SystemExit` forcing the process out (the run then stays `running` in
    the store, and a durable store reports it as orphaned when it is next opened).

    Cancellation:
        A cancel of the driver task itself (its event loop shutting down) is recorded as a
        `shutdown` cancel of the run, which ends through its cancel path; then it propagates.
    """
    # One coroutine for the whole drive (no helper frame awaited in between): a run in
    # flight holds every frame of its await chain, and a thousand runs hold a thousand.
    outcome: LoopOutcome | None = None
    failure: BaseException | None = None
    foreign: asyncio.CancelledError | None = None
    try:
        try:
            if not await _begin(core):
                # A cancel became durable before the run started: it never starts.
                await core.finish(None, None, started=False)
                return
            loop, timer = _prepare(core)
            try:
                with core.scope:
                    outcome = await loop.run(core.request.input)
            finally:
                if timer is not None:
                    timer.cancel()
        except asyncio.CancelledError as exc:
            if not core.scope.cancel_called:
                # Someone cancelled the driver task itself (the loop is shutting down): stop
                # the run as a shutdown, record it, then let the cancellation continue.
                foreign = exc
                with anyio.CancelScope(shield=True):
                    await core.stop(CancelReason(
                        "shutdown", "the event loop running the run was shut down", "loop"))
            outcome = core.outcome_if_cancelled()
        except Exception as exc:  # noqa: BLE001 - the run's failure, reported by finish
            failure = exc
        await core.finish(outcome, failure, started=True)
    except (KeyboardInterrupt, SystemExit) as exc:
        # Wake the waiters, who raise it in their own tasks: nobody will finish this run.
        if core.final is None:
            core.settle(core.info, None, exc)
        return
    if foreign is not None:
        raise foreign


async def _begin(core: RunCore) -> bool:
    """Take the run to `running` (a kept early cancel first, its turn on the thread, a slot);
    False when a cancel durable before it keeps it from starting.

    Cancellation:
        Waiting for the thread or a slot happens in the run's scope: a cancel stops the wait.
    """
    early = core.early_cancel
    if early is not None:
        await core.stop(early)
    since = utcnow()
    if core.predecessors or not core.admitted:
        # Waiting (for the thread, for a slot) is cancellable; a run that holds its slot
        # and waits for nobody has nothing to wait for, and no scope to enter for it.
        with core.scope:
            if core.predecessors:
                await wait_turn(core)
            await ADMISSION.enter(core)
    core.when_done(_LEAVE)
    return await core.mark_running(since)


def _prepare(core: RunCore) -> tuple[Loop, _WallTimer | None]:
    """The started run's deadline, remote cancels, policies and engine loop."""
    if core.scope.own_deadline is not None:  # no closure per run for a run with none
        core.scope.arm(lambda _scope: core.request_cancel_sync(_deadline_passed(core)))
    remote.watch(core)
    policies = core.request.policies.for_run(core.request.config, _stopper(core))
    loop = core.make_loop(policies, remote.gate(core, policies))
    return loop, _wall_time(core)


def _stopper(core: RunCore) -> Callable[[CancelReason], None]:
    """`core.stop_sync` for the policies to hold, by a weak reference: the run holds its
    policies, which must not hold it back (no reference cycle for the collector)."""
    return _Stopper(core)


class _Stopper(weakref.ref[RunCore]):
    """`stop_sync` of a run held weakly: the weak reference itself, called with a reason (one
    object per run, where a closure would be three and a holder of a reference two)."""

    __slots__ = ()

    def __call__(self, reason: CancelReason) -> None:  # type: ignore[override]
        found = super().__call__()
        if found is not None:
            found.stop_sync(reason)


def _deadline_passed(core: RunCore) -> CancelReason:
    # Called synchronously on the run's loop when the deadline passes: the request is durable
    # and the scope cancelled before the timer returns, so nothing of the run can observe the
    # deadline without the cancel.
    timeout = core.request.config.timeout
    return CancelReason("timeout", f"run exceeded its timeout of {timeout}s", "deadline",
                        evidence={"timeout": timeout})


def _wall_time(core: RunCore) -> _WallTimer | None:
    policies = core.policies
    limit = policies.budget.wall_time if policies is not None else None
    if limit is None or core.aloop is None:
        return None
    return _WallTimer(core, limit)


class _WallTimer:
    """The wall-time budget's timer: cancels the run once the budget is spent.

    A loop's timers may run a little before their time by the clock the budget is counted in
    (uvloop rounds to milliseconds): then the timer is armed again for what is left, so an
    early tick never lets the run go on unbudgeted.
    """

    __slots__ = ("_core", "_handle", "_limit")

    def __init__(self, core: RunCore, limit: float) -> None:
        self._core, self._limit = core, limit
        assert core.aloop is not None
        self._handle = core.aloop.call_later(limit * 1.000001 + 1e-6, self._expire)

    def cancel(self) -> None:
        self._handle.cancel()

    def _expire(self) -> None:
        core, policies = self._core, self._core.policies
        assert policies is not None and core.aloop is not None
        spent = policies.usage().wall_time
        reason = over(policies.budget, policies.tally, "wall_time", self._limit,
                      round(spent, 6))
        if reason is not None:
            core.aloop.create_task(core.request_cancel(reason))
        else:
            self._handle = core.aloop.call_later(max(self._limit - spent, 0.0) * 1.000001 + 1e-4,
                                                 self._expire)


__all__ = ["drive", "launch"]
