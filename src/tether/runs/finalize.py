"""How a run ends, decided without I/O: from the loop's outcome (or the driver's failure) and,
for a cancel, the durable reason, to the status, the final writes and events the run's last
transaction commits, and what its caller is given (a value or an exception).

`RunCore.finish` does the I/O in this order: an `Ending` with a status is committed on condition
that no cancel is durable (`commit_end`); the store refuses it once one is, and the run then
ends through the cancel path like an `Ending` without status: `cancel_reason`, the cleanup
hooks, `commit_cancel`, `cancel_error`. Whichever became durable first wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether import lifecycle
from tether.checkpoint.base import RunFinish
from tether.checkpoint.snapshot import is_internal
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
from tether.runs.failure import short_traceback
from tether.runs.policies import Policies
from tether.runs.policies.budget import BUDGET_KEYS, UNLIMITED
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus, utcnow


@dataclass(frozen=True, slots=True)
class Ending:
    """What a run's end is, before the store has its say.

    Attributes:
        status: `success`, `error` or `interrupted`; None for the cancel path.
        error: what the caller of a failed run is given.
        value: what the caller of a run that succeeded (or paused) is given.
        node: the node whose exception failed the run (`sub/inner` inside a subgraph).
        traceback: the innermost frames of the code that raised it (`short_traceback`).
    """

    status: RunStatus | None
    error: BaseException | None = None
    value: Any = None
    node: str | None = None
    traceback: str | None = None

    def detail(self) -> dict[str, Any]:
        """The `finish` event's detail."""
        detail: dict[str, Any] = {"status": self.status.value if self.status else None}
        if self.error is not None:
            detail["error"] = describe(self.error)
        if self.traceback is not None:
            detail["traceback"] = self.traceback
        return detail


CANCELLED = Ending(None)


def ending(outcome: LoopOutcome | None, failure: BaseException | None) -> Ending:
    """How the run ends, given the loop's outcome (None: the loop never returned one) or the
    exception that stopped the driver."""
    if failure is not None:
        return _failed(failure)
    if outcome is None or outcome.status == "cancelled":
        return CANCELLED
    if outcome.status == "error":
        assert outcome.error is not None
        return _failed(outcome.error, outcome.error_node)
    if outcome.status == "done":
        return Ending(RunStatus.SUCCESS, value=outcome.output)
    # A run's own loop turns its recursion limit into a cancel: `limit` is a subgraph's.
    assert outcome.status == "interrupted", f"a run's loop never ends {outcome.status!r}"
    value = outcome.output
    if outcome.interrupts:
        shown = list(outcome.interrupts)
        value = {**value, INTERRUPT: shown} if isinstance(value, dict) else {INTERRUPT: shown}
    return Ending(RunStatus.INTERRUPTED, value=value)


def _failed(error: BaseException, node: str | None = None) -> Ending:
    if isinstance(error, ParentCommand):
        error = InvalidUpdateError(
            "A node returned Command(graph=Command.PARENT) but its graph has no parent graph"
        )
    return Ending(RunStatus.ERROR, error=error, node=node, traceback=short_traceback(error))


def commit_end(end: Ending, outcome: LoopOutcome | None, thread_id: str | None,
               events: tuple[RunEvent, ...]) -> RunFinish:
    """The transaction of an `Ending` with a status: refused by the store once a cancel is
    durable."""
    assert end.status is not None
    return RunFinish(
        status=end.status,
        checkpoint_id=outcome.checkpoint_id if outcome else None,
        thread_id=thread_id,
        error=describe(end.error) if end.error is not None else None,
        error_node=end.node, error_traceback=end.traceback,
        checkpoints=outcome.unsaved if outcome else (),
        writes=outcome.final_writes if outcome else (),
        events=events,
        unless_cancel_requested=True,
    )


def cancel_reason(stored: RunInfo | None, local: CancelReason | None) -> CancelReason:
    """The reason a cancelled run ends with: the durable one, else the one its scope was
    cancelled with here."""
    reason = (stored.reason if stored is not None else None) or local
    return reason if reason is not None else CancelReason("user", "cancelled", None)


def stopped_nodes(outcome: LoopOutcome | None) -> list[tuple[str, dict[str, Any]]]:
    """(node, detail) of each task the cancel stopped at its next await, not reported yet
    (those stopped by the ladder were reported as it acted)."""
    if outcome is None:
        return []
    return [(task.name, {"how": "cooperative", "task_id": task.id}) for task in outcome.tasks
            if task.outcome == "cancelled" and task.stop_mode is None]


def checkpoint_detail(outcome: LoopOutcome | None, refused: RunFinish | None,
                      started: bool) -> dict[str, Any]:
    """The `checkpoint` event's detail: the final checkpoint, what it keeps, what stopped."""
    pending = 0
    cancelled: list[str] = []
    if outcome is not None:  # loops, not generators: every cancel's end goes through here
        for write in outcome.final_writes:
            if not is_internal(write.channel):
                pending += 1
        cancelled = list(outcome.cancelled_tasks)
    return {
        "checkpoint_id": _final_checkpoint(outcome, refused),
        "pending_writes": pending,
        "cancelled_tasks": cancelled,
        "started": started,
    }


def _final_checkpoint(outcome: LoopOutcome | None, refused: RunFinish | None) -> str | None:
    checkpoint_id = outcome.checkpoint_id if outcome is not None else None
    if refused is not None and checkpoint_id is None:
        checkpoint_id = refused.checkpoint_id
    return checkpoint_id


def commit_cancel(reason: CancelReason, outcome: LoopOutcome | None, refused: RunFinish | None,
                  thread_id: str | None, *, events: tuple[RunEvent, ...],
                  latency_ms: float, spent: Mapping[str, Any] | None = None,
                  after_request: CancelReason | None = None) -> tuple[RunFinish, RunEvent]:
    """The transaction of the cancel path: the final checkpoint and writes with the status flip
    (`timeout` for a reason of kind timeout), and the `terminate` event it ends with. Its events
    hold every phase of the stop, in order (`lifecycle.complete`).

    Args:
        refused: an end the store refused because the cancel won the race: the checkpoints it
            held back are committed here instead.
        events: the events recorded so far, not stored yet.
        latency_ms: from the cancel request to now.
        spent: what the run spent and its budget (`spent`), for the `terminate` event.
        after_request: `reason` itself when the end goes to the store behind its request,
            before the request's answer (`RunFinish.after_request`).
    """
    status = RunStatus.TIMEOUT if reason.kind == "timeout" else RunStatus.CANCELLED
    terminate = RunEvent("terminate", utcnow(), None,
                         {"status": str(status), "cancel_latency_ms": round(latency_ms, 3),
                          **(spent or {})})
    finish = RunFinish(
        status=status, checkpoint_id=_final_checkpoint(outcome, refused), thread_id=thread_id,
        reason=reason,
        checkpoints=(outcome.unsaved if outcome is not None else ())
        + (refused.checkpoints if refused is not None else ()),
        writes=outcome.final_writes if outcome is not None else (),
        events=lifecycle.complete((*events, terminate), terminate.at),
        cancel_latency_ms=latency_ms, after_request=after_request,
    )
    return finish, terminate


def cancel_error(reason: CancelReason, run_id: str, checkpoint_id: str | None,
                 loop_error: BaseException | None, recursion_limit: int) -> BaseException:
    """What the caller of a cancelled run is given: `RecursionLimitReached` for the recursion
    limit (LangGraph's message), the node's `NodeTimeoutError` for its timeout, `RunTimeout`
    for another timeout, `RunCancelled` otherwise.

    Args:
        loop_error: the error the run's loop ended with (`LoopOutcome.error`), if any.
    """
    if reason.requested_by == "recursion_limit":
        error = RecursionLimitReached(reason, run_id, checkpoint_id)
        error.args = (
            f"Recursion limit of {recursion_limit} reached without hitting a stop condition. "
            "You can increase the limit by setting the `recursion_limit` config key.",
        )
        return error
    if isinstance(loop_error, NodeTimeoutError) and reason.kind == "timeout":
        return loop_error
    if reason.kind == "timeout":
        return RunTimeout(reason, run_id, checkpoint_id)
    return RunCancelled(reason, run_id, checkpoint_id)


class CancelVerdict:
    """What the caller of a cancelled run is given (`cancel_error`), made only when asked for:
    most cancels are never awaited for their outcome (a crowd cancelled by handle), and an
    exception made for nobody is a good part of a cancel's end. Holds only immutable values
    (and the loop's own error), so the exception is the same whenever it is made.
    """

    __slots__ = ("_args",)

    def __init__(self, reason: CancelReason, run_id: str, checkpoint_id: str | None,
                 loop_error: BaseException | None, recursion_limit: int) -> None:
        self._args = (reason, run_id, checkpoint_id, loop_error, recursion_limit)

    def error(self) -> BaseException:
        """A new exception, as `cancel_error` makes it."""
        return cancel_error(*self._args)


_BUDGET_ORDER = tuple(sorted(BUDGET_KEYS))
"""The budget's keys in the order the last event shows them (sorted once, not per run)."""


def spent(policies: Policies | None) -> dict[str, Any]:
    """What a run spent (`usage`) and its `budget`, for its last audit event: the faces show
    them. Empty for a run that never started."""
    if policies is None:
        return {}
    budget = policies.budget
    if budget is UNLIMITED:  # the usual run: nothing to look up
        return {"usage": policies.tally.to_dict()}
    limits = {key: dict(value) if isinstance(value, Mapping) else value
              for key in _BUDGET_ORDER if (value := getattr(budget, key)) is not None}
    return {"usage": policies.tally.to_dict(), **({"budget": limits} if limits else {})}


def describe(error: BaseException) -> str:
    """An error as a run's record keeps it: its type and message."""
    return f"{type(error).__name__}: {error}"


__all__ = ["CANCELLED", "CancelVerdict", "Ending", "cancel_error", "cancel_reason",
           "checkpoint_detail", "commit_cancel", "commit_end", "describe", "ending", "spent",
           "stopped_nodes"]
