"""The rule every store's `finish_run` applies before it ends a run: a run that has ended stays
ended, a durable cancel wins over a conditional end, the end of a cancel request sent ahead of
its answer needs that request to be the durable one, and the status machine must have the edge.
One function, so that the in-memory, SQLite and Postgres stores cannot disagree."""

from __future__ import annotations

from tether.checkpoint.base import FinishResult, RunFinish
from tether.errors import StatusTransitionError, TerminalStatusError
from tether.types import CancelReason, RunInfo


def refusal(info: RunInfo, end: RunFinish) -> FinishResult | None:
    """The rule every store's `finish_run` applies: what it returns instead of applying `end`
    (the run has ended, or a cancel is durable and `end` is conditional, or `end` is the end of
    a cancel request that is not the run's durable one), or None to apply it.

    Raises:
        TerminalStatusError: the run has ended and `end` is unconditional.
        StatusTransitionError: the status machine (`TRANSITIONS`) has no `finish_run` edge
            from the run's status to `end.status`.
    """
    ahead = end.after_request
    if ahead is not None and (info.terminal or info.reason is None
                              or not same_request(info.reason, ahead)):
        return FinishResult(info, applied=False)
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


def same_request(stored: CancelReason, made: CancelReason) -> bool:
    """Whether `stored` (a run's durable cancel, as the store reads it back) is the request
    `made`: the same kind, message, requester and instant (its evidence may come back in
    another form: JSON has no tuples)."""
    return (stored.requested_at == made.requested_at and stored.kind == made.kind
            and stored.requested_by == made.requested_by and stored.message == made.message)


__all__ = ["refusal", "same_request"]
