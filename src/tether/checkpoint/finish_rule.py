"""The rule every store's `finish_run` applies before it ends a run: a run that has ended stays
ended, a durable cancel wins over a conditional end, and the status machine must have the edge.
One function, so that the in-memory, SQLite and Postgres stores cannot disagree."""

from __future__ import annotations

from tether.checkpoint.base import FinishResult, RunFinish
from tether.errors import StatusTransitionError, TerminalStatusError
from tether.types import RunInfo


def refusal(info: RunInfo, end: RunFinish) -> FinishResult | None:
    """The rule every store's `finish_run` applies: what it returns instead of applying `end`
    (the run has ended, or a cancel is durable and `end` is conditional), or None to apply it.

    Raises:
        TerminalStatusError: the run has ended and `end` is unconditional.
        StatusTransitionError: the status machine (`TRANSITIONS`) has no `finish_run` edge
            from the run's status to `end.status`.
    """
    if info.terminal:
        if end.unless_cancel_requested:
            return FinishResult(info, applied=False)
        raise TerminalStatusError(
            f"run {info.run_id!r} already ended as {info.status.value}; "
            f"cannot become {end.status.value}"
        )
    if end.unless_cancel_requested and info.reason is not None:
        return FinishResult(info, applied=False)
    if not info.status.can_become(end.status, "finish_run"):
        raise StatusTransitionError(
            f"run {info.run_id!r} is {info.status.value}; finish_run cannot make it "
            f"{end.status.value}"
        )
    return None


__all__ = ["refusal"]
