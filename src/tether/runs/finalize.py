"""The end of a run: one transaction that stores its last checkpoint, writes and status.

For a cancel this is where the last four phases happen: each stopped node is reported
(`terminate_node`), cleanup hooks run (`cleanup`), the final checkpoint is committed with the status
flip (`checkpoint`), and the run ends (`terminate`). The store refuses a success, error or pause
once a cancel is durable, and the run then ends through the cancel path instead: whichever
became durable first wins.
"""

from __future__ import annotations

import time

import anyio

from tether.checkpoint.base import RunFinish, is_internal
from tether.constants import INTERRUPT
from tether.engine.outcome import LoopOutcome
from tether.errors import (
    InvalidUpdateError,
    NodeTimeoutError,
    ParentCommand,
    RecursionLimitReached,
    RunCancelled,
    RunTimeout,
)
from tether.runs.cleanup import run_hooks
from tether.runs.core import RunCore
from tether.types import CancelReason, RunEvent, RunStatus, utcnow


async def finalize(core: RunCore, outcome: LoopOutcome | None, failure: BaseException | None,
                   *, started: bool) -> None:
    """Commit the run's end and publish it.

    Cancellation:
        Shielded: runs to completion even if the driver is cancelled again meanwhile (cleanup
        hooks are bounded by the run's cleanup grace). Writes the run's final checkpoint.
    """
    with anyio.CancelScope(shield=True):
        try:
            await _finalize(core, outcome, failure, started)
        except BaseException as exc:
            # The store refused or failed: report the run as failed rather than hang waiters,
            # even when the store cannot be read either (its connection is gone).
            try:
                info = core.store.get_run(core.run_id) or core.info
            except Exception:  # noqa: BLE001 - the failure reported is `exc`
                info = core.info
            core.settle(info, None, exc)
            raise


async def _finalize(core: RunCore, outcome: LoopOutcome | None, failure: BaseException | None,
                    started: bool) -> None:
    if failure is not None:
        await _end(core, outcome, RunStatus.ERROR, failure, started)
        return
    if outcome is None or outcome.status == "cancelled":
        await _cancelled(core, outcome, started)
        return
    if outcome.status == "limit":
        limit = core.request.config.recursion_limit
        reason = CancelReason("budget", f"recursion_limit of {limit} supersteps reached",
                              "recursion_limit", evidence={"limit": "recursion_limit",
                                                           "value": limit, "step": outcome.step})
        await core.request_cancel(reason)
        await _cancelled(core, outcome, started)
        return
    if outcome.status == "error" and isinstance(outcome.error, NodeTimeoutError):
        error = outcome.error
        reason = CancelReason("timeout", str(error), f"node:{error.node}",
                              evidence={"node": error.node, "timeout": error.timeout})
        await core.request_cancel(reason)
        await _cancelled(core, outcome, started)
        return
    if outcome.status == "error":
        await _end(core, outcome, RunStatus.ERROR, outcome.error, started)
        return
    status = RunStatus.SUCCESS if outcome.status == "done" else RunStatus.INTERRUPTED
    await _end(core, outcome, status, None, started)


async def _end(core: RunCore, outcome: LoopOutcome | None, status: RunStatus,
               error: BaseException | None, started: bool) -> None:
    if isinstance(error, ParentCommand):
        error = InvalidUpdateError(
            "A node returned Command(graph=Command.PARENT) but its graph has no parent graph"
        )
    if error is not None and core.request.wrap_error is not None:
        error = core.request.wrap_error(error)
    core.event("finish", detail={"status": status.value,
                                 **({"error": _describe(error)} if error else {})})
    finish = RunFinish(
        status=status,
        checkpoint_id=outcome.checkpoint_id if outcome else None,
        thread_id=core.thread_id,
        error=_describe(error) if error is not None else None,
        checkpoints=outcome.unsaved if outcome else (),
        writes=outcome.final_writes if outcome else (),
        events=core.take_events(),
        unless_cancel_requested=True,
    )
    result = await core.store.afinish_run(core.run_id, finish)
    if not result.applied:
        # A cancel became durable first: it wins.
        await _cancelled(core, outcome, started, refused=finish)
        return
    if error is not None:
        core.settle(result.info, None, error)
        return
    value = outcome.output if outcome is not None else None
    if status is RunStatus.INTERRUPTED and outcome is not None and outcome.interrupts:
        value = dict(value or {})
        value[INTERRUPT] = list(outcome.interrupts)
    core.settle(result.info, value, None)


async def _cancelled(core: RunCore, outcome: LoopOutcome | None, started: bool,
                     refused: RunFinish | None = None) -> None:
    info = await core.store.aget_run(core.run_id)
    reason = (info.reason if info is not None else None) or core.scope.reason
    if reason is None:
        reason = CancelReason("user", "cancelled", None)
    remote_latency = None
    if core.requested_at is None:
        # The request came through the store (another process): count from when it was made.
        core.requested_at = time.monotonic()
        remote_latency = max((utcnow() - reason.requested_at).total_seconds() * 1000.0, 0.0)
        core.scope.cancel(reason)
    tasks = outcome.tasks if outcome is not None else []
    for task in tasks:
        if task.outcome == "cancelled" and task.stop_mode is None:
            core.event("terminate_node", task.name, {"how": "cooperative", "task_id": task.id})
    hooks = outcome.hooks if outcome is not None else []
    if hooks:
        reports = await run_hooks(hooks, core.request.config.cleanup_grace, core.request.pool)
        for report in reports:
            core.event("cleanup", report["node"], report)
    status = RunStatus.TIMEOUT if reason.kind == "timeout" else RunStatus.CANCELLED
    checkpoint_id = outcome.checkpoint_id if outcome is not None else None
    if refused is not None and checkpoint_id is None:
        checkpoint_id = refused.checkpoint_id
    writes = outcome.final_writes if outcome is not None else ()
    core.event("checkpoint", detail={
        "checkpoint_id": checkpoint_id,
        "pending_writes": sum(1 for w in writes if not is_internal(w.channel)),
        "cancelled_tasks": list(outcome.cancelled_tasks) if outcome is not None else [],
        "started": started,
    })
    latency = (time.monotonic() - core.requested_at) * 1000.0
    if remote_latency is not None:
        latency = remote_latency
    terminate = RunEvent("terminate", utcnow(), None,
                         {"status": status.value, "cancel_latency_ms": round(latency, 3)})
    finish = RunFinish(
        status=status, checkpoint_id=checkpoint_id, thread_id=core.thread_id, reason=reason,
        checkpoints=(outcome.unsaved if outcome is not None else ())
        + (refused.checkpoints if refused is not None else ()),
        writes=writes, events=(*core.take_events(), terminate), cancel_latency_ms=latency,
    )
    result = await core.store.afinish_run(core.run_id, finish)
    core._announce(terminate)
    core.settle(result.info, None, _cancel_error(core, reason, result.info.checkpoint_id, outcome))


def _cancel_error(core: RunCore, reason: CancelReason, checkpoint_id: str | None,
                  outcome: LoopOutcome | None) -> BaseException:
    if reason.requested_by == "recursion_limit":
        limit = core.request.config.recursion_limit
        error = RecursionLimitReached(reason, core.run_id, checkpoint_id)
        error.args = (
            f"Recursion limit of {limit} reached without hitting a stop condition. You can "
            "increase the limit by setting the `recursion_limit` config key.",
        )
        return error
    if outcome is not None and isinstance(outcome.error, NodeTimeoutError) and \
            reason.kind == "timeout":
        return outcome.error
    if reason.kind == "timeout":
        return RunTimeout(reason, core.run_id, checkpoint_id)
    return RunCancelled(reason, core.run_id, checkpoint_id)


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}" if error is not None else ""


__all__ = ["finalize"]

