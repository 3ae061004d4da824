"""The driver task of a run: start it, run the loop under the run's scope, finalise.

The driver is the only task that enters the run's cancel scope; everything after the loop
returns happens outside it, so finalisation is never interrupted by the cancel it reports.
"""

from __future__ import annotations

import asyncio

from tether.engine.outcome import LoopOutcome
from tether.runs.admission import ADMISSION
from tether.runs.core import RunCore
from tether.runs.finalize import finalize
from tether.runs.multitask import wait_turn
from tether.runs.policies.budget import over
from tether.runs.remote import watch
from tether.types import CancelReason, RunEvent, utcnow


async def drive(core: RunCore) -> None:
    """Run `core` from `pending` to its end. Never raises, except a foreign cancellation, or
    `KeyboardInterrupt`/`SystemExit` forcing the process out (the run then stays `running` in
    the store, and a durable store reports it as orphaned when it is next opened)."""
    try:
        await _drive(core)
    except (KeyboardInterrupt, SystemExit) as exc:
        # Wake the waiters, who raise it in their own tasks: nobody will finalise this run.
        if core.final is None:
            core.settle(core.info, None, exc)


async def _drive(core: RunCore) -> None:
    outcome: LoopOutcome | None = None
    failure: BaseException | None = None
    foreign: asyncio.CancelledError | None = None
    try:
        early = core.early_cancel
        if early is not None:
            await core.request_cancel(early)
        start = RunEvent("start", utcnow())
        create = RunEvent("create", core.info.created_at)
        with core.scope:
            if core.request.predecessors:
                await wait_turn(core)
            await ADMISSION.enter(core)
        core.on_final.append(ADMISSION.leave)
        # An adopted record was created by whoever queued the run.
        events = (start,) if core.request.adopt else (create, start)
        info = await core.store.amark_running(core.run_id, events)
        if info is None:
            # A cancel became durable before the run started: it never starts.
            await finalize(core, None, None, started=False)
            return
        core.info = info
        core.scope.arm(core.on_deadline)
        watch(core)
        loop = core.make_loop()
        timer = _wall_time(core)
        try:
            with core.scope:
                outcome = await loop.run(core.request.input)
        finally:
            if timer is not None:
                timer.cancel()
        if outcome is None:
            outcome = core.outcome_if_cancelled()
    except asyncio.CancelledError as exc:
        if core.scope.cancel_called:
            outcome = core.outcome_if_cancelled()
        else:
            # Someone cancelled the driver task itself (the loop is shutting down): stop the
            # run as a shutdown, record it, then let the cancellation continue.
            foreign = exc
            await _shutdown(core)
            outcome = core.outcome_if_cancelled()
    except Exception as exc:  # noqa: BLE001 - the run's failure, reported by finalize
        failure = exc
    await finalize(core, outcome, failure, started=True)
    if foreign is not None:
        raise foreign


def _wall_time(core: RunCore) -> asyncio.TimerHandle | None:
    policies = core.policies
    limit = policies.budget.wall_time if policies is not None else None
    if limit is None or core.aloop is None:
        return None
    aloop = core.aloop

    def expire() -> None:
        assert policies is not None
        reason = over(policies.budget, policies.tally, "wall_time", limit,
                      round(policies.usage().wall_time, 6))
        if reason is not None:
            aloop.create_task(core.request_cancel(reason))

    return aloop.call_later(limit * 1.000001 + 1e-6, expire)


async def _shutdown(core: RunCore) -> None:
    import anyio

    reason = CancelReason("shutdown", "the event loop running the run was shut down", "loop")
    with anyio.CancelScope(shield=True):
        await core.request_cancel(reason)
