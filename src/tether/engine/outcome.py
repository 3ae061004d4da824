"""How a run of the superstep loop ended, as the runs layer receives it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.cancel.scope import CancelHook
from tether.checkpoint.base import CheckpointRecord, WriteRecord
from tether.constants import CANCELLED, ERROR, INTERRUPT, NO_WRITES, PARTIAL, RESUME, WITHDRAWN
from tether.engine.call_spec import call_writes
from tether.engine.persist import Persistence
from tether.engine.state import ChannelState
from tether.engine.task import Task
from tether.errors import is_invalid_resume
from tether.types import Interrupt

LoopStatus = Literal["done", "interrupted", "cancelled", "error", "limit"]
"""How a loop run ended; `limit` only for a subgraph (a run's own loop turns its recursion limit
into a cancel of the run)."""


@dataclass(slots=True)
class LoopOutcome:
    """The end of a loop run.

    Attributes:
        status: `done` (no task left), `interrupted` (paused for input or by
            interrupt_before/after), `cancelled` (the run's scope was cancelled), `error` (a
            task failed), `limit` (the superstep budget ran out before the next step).
        values: the state to report (for a pause, with the finished tasks' writes applied).
        output: what `invoke` returns (None for `cancelled`: nothing is returned).
        step: the step of the last checkpoint.
        checkpoint_id: the last checkpoint taken (stored or not, see `unsaved`).
        tasks: the tasks of the step that did not complete, if any.
        final_writes: pending writes to store with the run's final transaction.
        unsaved: checkpoints not yet stored (durability `async`/`exit`).
        next: nodes due to run from the last checkpoint.
        error_node: the node that raised `error` (`sub/inner` inside a subgraph).
    """

    status: LoopStatus
    values: dict[str, Any]
    output: Any
    step: int
    checkpoint_id: str | None = None
    interrupts: tuple[Interrupt, ...] = ()
    error: BaseException | None = None
    error_node: str | None = None
    tasks: list[Task] = field(default_factory=list)
    final_writes: tuple[WriteRecord, ...] = ()
    unsaved: tuple[CheckpointRecord, ...] = ()
    next: tuple[str, ...] = ()

    @property
    def cancelled_tasks(self) -> tuple[str, ...]:
        """Names of tasks that were running when the cancel stopped them."""
        return tuple([t.name for t in self.tasks if t.outcome == "cancelled"])  # no generator

    @property
    def hooks(self) -> list[tuple[str, CancelHook]]:
        """Cleanup hooks of the cancelled tasks and of the calls they launched (a `@task`, a
        tool call), with their names."""
        return [hook for t in self.tasks for hook in _hooks_of(t)]


def _hooks_of(task: Task) -> Sequence[tuple[str, CancelHook]]:
    if not task.calls:  # the usual task: its own hooks (`hooks` copies them)
        return task.hooks
    return [*task.hooks, *(hook for call in task.calls for hook in _hooks_of(call))]


def task_writes(task: Task) -> list[WriteRecord]:
    """The pending-write records of one task, by what became of it."""
    tid, name = task.id, task.name
    if task.outcome == "done":
        writes = [w for w in task.writes or () if w[0]]
        if not writes:
            return [WriteRecord(tid, name, 0, NO_WRITES, None)]
        return [WriteRecord(tid, name, i, ch, v) for i, (ch, v) in enumerate(writes)]
    if task.outcome == "interrupted":
        return [WriteRecord(tid, name, -1, INTERRUPT, list(task.interrupts)),
                *(WriteRecord(tid, name, -10 - (len(task.resume) - len(task.claimed) + i),
                              RESUME, answer) for i, answer in enumerate(task.claimed))]
    kept: list[WriteRecord] = []
    if task.outcome == "error":
        kept.append(WriteRecord(tid, name, -2, ERROR, repr(task.error)))
        if task.answered is not None and is_invalid_resume(task.error):
            # The answer was refused (`interrupt(response_schema=...)`): it goes, so that the
            # question can be answered again.
            kept.append(WriteRecord(tid, name, -10 - task.answered, WITHDRAWN, None))
    elif task.outcome == "cancelled":
        kept.append(WriteRecord(tid, name, -3, CANCELLED, None))
    else:
        return kept
    return [*kept, *partial_writes(task)] if task.partials else kept


PARTIAL_IDX = -1000
"""Index of a stopped task's first partial answer (the next ones count down from it)."""


def partial_writes(task: Task) -> list[WriteRecord]:
    """The answers a stopped task's chat models had begun to stream, one record each."""
    return [WriteRecord(task.id, task.name, PARTIAL_IDX - i, PARTIAL, partial)
            for i, partial in enumerate(task.partials or ())]


def conclude(status: LoopStatus, state: ChannelState, tasks: list[Task],
             persist: Persistence | None, cancelled_at: float | None, *,
             error: BaseException | None = None,
             interrupts: tuple[Interrupt, ...] = (),
             error_node: str | None = None) -> LoopOutcome:
    """The outcome of a loop run that ends with `tasks` due (or, for `cancelled`, stopped).

    Args:
        cancelled_at: when the run's scope was cancelled: a task that finished at or after it
            counts as cancelled, its writes dropped.
    """
    tasks = tasks if status != "done" else []
    values = state.values
    if status == "interrupted" and tasks:
        done = [t for t in tasks if t.outcome == "done"]
        if done:
            values = state.preview([w for t in sorted(done, key=lambda t: t.sort_key)
                                    for w in t.writes or ()])
    writes: tuple[WriteRecord, ...] = ()
    if status == "cancelled":
        for task in tasks:
            if task.outcome == "done" and task.finished_at is not None and (
                    cancelled_at is not None and task.finished_at >= cancelled_at):
                task.outcome, task.writes = "cancelled", None
    if status in ("cancelled", "error", "interrupted"):
        kept: list[WriteRecord] = []
        for task in tasks:
            kept += task_writes(task)
            if task.calls:
                kept += call_writes(task)
        writes = tuple(kept)
    # A cancelled loop returns nothing to anyone (its run raises, its parent task is
    # cancelled): its output is not assembled.
    output = state.output(values) if status != "cancelled" else None
    return LoopOutcome(
        status=status, values=dict(values), output=output, step=state.step,
        checkpoint_id=persist.checkpoint_id if persist is not None else None,
        interrupts=interrupts, error=error, error_node=error_node, tasks=list(tasks),
        final_writes=writes, unsaved=persist.unsaved() if persist is not None else (),
        next=tuple([t.name for t in tasks]),
    )
