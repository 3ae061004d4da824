"""A new run on a thread that already has one in flight (`multitask_strategy`).

`reject` (the library's default) refuses the new run; `enqueue` starts it when the runs before
it have ended; `interrupt` cancels them (kind `superseded`, their progress kept in their final
checkpoints) and then starts; `rollback` does the same and removes the checkpoints they wrote.
The default is `reject` because a second writer on a thread is more often a bug than a plan:
the caller should choose how the two runs relate.
"""

from __future__ import annotations

import asyncio

from tether.errors import ThreadBusyError
from tether.runs.core import RunCore
from tether.runs.registry import REGISTRY
from tether.types import CancelReason


def predecessors(thread_id: str | None, strategy: str | None) -> list[RunCore]:
    """The runs a new run on `thread_id` must wait for (or supersede).

    Raises:
        ThreadBusyError: the strategy is `reject` and the thread has a run in flight.
    """
    if thread_id is None:
        return []
    active = REGISTRY.active_on(thread_id)
    if active and (strategy or "reject") == "reject":
        raise ThreadBusyError(thread_id, active[0].run_id)
    return active


async def wait_turn(core: RunCore) -> None:
    """Hold a new run until the runs before it on its thread have ended.

    Cancellation:
        Runs inside the new run's cancel scope: cancelling the new run while it waits stops the
        wait (and the run never starts). Superseded runs are cancelled through their own
        cancel path and keep their final checkpoints.
    """
    before = core.predecessors
    if not before:
        return
    strategy = core.request.config.multitask_strategy or "reject"
    if strategy in ("interrupt", "rollback"):
        reason = CancelReason("superseded", f"superseded by run {core.run_id} ({strategy})",
                              core.run_id)
        for prior in before:
            if prior.aloop is core.aloop:
                await prior.request_cancel(reason)
            else:
                prior.request_cancel_sync(reason)
    for prior in before:
        await _ended(prior, core)
    if strategy == "rollback":
        for prior in before:
            await core.store.adelete_run_checkpoints(prior.run_id)


async def _ended(prior: RunCore, core: RunCore) -> None:
    if prior.aloop is core.aloop:
        await prior.wait()
        return
    # The prior run lives on another loop: wait for its thread-safe event off this loop.
    await asyncio.to_thread(prior.wait_blocking, None)
