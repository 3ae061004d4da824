"""What a run's input means for the loop: fresh values, a `Command`, or nothing (continue); how
a resumed step picks up the writes its finished tasks left behind; and `interrupt()` inside a
task: the answer it is given, or a pause."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.checkpoint.base import StoredCheckpoint, WriteRecord
from tether.config import RunConfig
from tether.constants import CONTROL_WRITES, INTERRUPT, NO_WRITES, RESUME
from tether.engine.call_spec import CALL_ASKED
from tether.engine.spec import GraphSpec, Write
from tether.engine.task import Task
from tether.errors import EmptyInputError, GraphInterrupt, InvalidResumeError
from tether.types import Command, Interrupt, Send


@dataclass(slots=True)
class InputPlan:
    """How a run starts.

    Attributes:
        writes: the input step's writes; None to continue from the checkpoint without one.
        goto: nodes (or `Send`s) a `Command` input routes to.
        resume_map: new resume values per task id.
        resume_writes: those values as pending writes, to store before anything runs.
        skip_interrupt_before: the checkpoint is an `interrupt_before` pause being resumed.
        command_writes: a `Command`'s update, applied to the thread's checkpoint at once.
        null_resume: an answer given to a thread that has tasks due but no question pending
            (its pause was replaced by `update_state`): it goes to the first `interrupt()`
            asked without an answer, as LangGraph's does.
    """

    writes: list[Write] | None
    goto: tuple[Send | str, ...] = ()
    command_writes: list[Write] | None = None
    # Empty and shared unless the run resumes (most runs start fresh: no list per run; an
    # empty dict is not tracked by the collector).
    resume_map: dict[str, list[Any]] = field(default_factory=dict)
    resume_writes: Sequence[WriteRecord] = ()
    skip_interrupt_before: bool = False
    null_resume: Sequence[Any] = ()


def paused_interrupts(stored: StoredCheckpoint) -> dict[str, tuple[str, list[Interrupt]]]:
    """The interrupts a checkpoint is waiting on: task id -> (node, interrupts)."""
    out: dict[str, tuple[str, list[Interrupt]]] = {}
    for w in stored.pending_writes:
        if w.channel == INTERRUPT and w.task_id != INTERRUPT and w.idx != CALL_ASKED:
            out[w.task_id] = (w.task_name, list(w.value))
    return out


def askers(stored: StoredCheckpoint) -> dict[str, tuple[str, str]]:
    """Which call asked each interrupt a call asked: interrupt id -> (call id, call name)."""
    return {i.id: (w.task_id, w.task_name) for w in stored.pending_writes
            if w.channel == INTERRUPT and w.idx == CALL_ASKED for i in w.value}


def paused_before_marker(names: list[str]) -> WriteRecord:
    """The pending write that marks a pause made by `interrupt_before`."""
    return WriteRecord(INTERRUPT, INTERRUPT, 0, INTERRUPT, names)


def _paused_before(stored: StoredCheckpoint | None) -> bool:
    return stored is not None and any(
        w.channel == INTERRUPT and w.task_id == INTERRUPT for w in stored.pending_writes
    )


def plan_input(spec: GraphSpec, graph_input: Any, loaded: StoredCheckpoint | None,
               config: RunConfig) -> InputPlan:
    """Decide how the run starts.

    Raises:
        EmptyInputError: no input and no checkpoint to continue from.
        InvalidResumeError: a `Command(resume=...)` for a thread that is not paused.
    """
    if isinstance(graph_input, Command):
        update = spec.input_writes(graph_input.update) if graph_input.update is not None else []
        goto = graph_input.goto_targets()
        if graph_input.resume is not None:
            plan = _plan_resume(graph_input.resume, loaded, config)
        elif loaded is None:
            return InputPlan(update, goto)
        else:
            plan = InputPlan(None, skip_interrupt_before=_paused_before(loaded))
        if update or goto:
            plan.command_writes, plan.goto = update, goto
        return plan
    if graph_input is None:
        if loaded is None:
            raise EmptyInputError("Received no input for __start__")
        return InputPlan(None, skip_interrupt_before=_paused_before(loaded))
    return InputPlan(spec.input_writes(graph_input))


def _plan_resume(resume: Any, loaded: StoredCheckpoint | None, config: RunConfig) -> InputPlan:
    thread = config.thread_id
    if loaded is None:
        raise InvalidResumeError(f"cannot resume thread {thread!r}: it has no checkpoint")
    waiting = paused_interrupts(loaded)
    if not waiting:
        if _paused_before(loaded):
            return InputPlan(None, skip_interrupt_before=True)
        if loaded.next:
            return InputPlan(None, null_resume=[resume])
        raise InvalidResumeError(
            f"cannot resume thread {thread!r}: it is not waiting for input (no pending interrupt)"
        )
    # An answer goes to whoever asked: the task, or the call inside it that asked.
    owner = {i.id: (tid, name) for tid, (name, interrupts) in waiting.items()
             for i in interrupts}
    owner.update(askers(loaded))
    values: dict[tuple[str, str], Any]
    if isinstance(resume, dict) and resume and set(resume) <= set(owner):
        values = {owner[iid]: value for iid, value in resume.items()}
    elif len(waiting) == 1:
        ((tid, (name, asked)),) = waiting.items()
        by_calls = [i for i in asked if owner[i.id][0] != tid]
        if not by_calls:
            values = {(tid, name): resume}
        elif len(asked) == 1:
            values = {owner[asked[0].id]: resume}
        else:
            # Calls of one task paused side by side: the first question asked again takes
            # the answer, as LangGraph's does.
            return InputPlan(None, null_resume=[resume])
    else:
        raise InvalidResumeError(
            f"thread {thread!r} has {len(waiting)} pending interrupts; resume with "
            "Command(resume={interrupt_id: value, ...})"
        )
    previous = _resume_values(loaded.pending_writes)
    resume_map: dict[str, list[Any]] = {}
    resume_writes: list[WriteRecord] = []
    for (tid, name), value in values.items():
        count = len(previous.get(tid, ()))
        resume_map[tid] = [value]
        resume_writes.append(WriteRecord(tid, name, -10 - count, RESUME, value))
    return InputPlan(None, resume_map=resume_map, resume_writes=resume_writes)


def _resume_values(writes: Sequence[WriteRecord]) -> dict[str, list[Any]]:
    out: dict[str, list[tuple[int, Any]]] = {}
    for w in writes:
        if w.channel == RESUME:
            out.setdefault(w.task_id, []).append((-w.idx, w.value))
    return {tid: [v for _i, v in sorted(items)] for tid, items in out.items()}


def kept_by_task(pending: Sequence[WriteRecord],
                 resume_map: Mapping[str, list[Any]]) -> dict[str, list[WriteRecord]]:
    """The pending writes of a step by task id, with the new answers as `__resume__` records
    (what the calls of the step find when they run again)."""
    out: dict[str, list[WriteRecord]] = {}
    for w in pending:
        out.setdefault(w.task_id, []).append(w)
    for tid, answers in resume_map.items():
        given = out.setdefault(tid, [])
        count = sum(1 for w in given if w.channel == RESUME)
        given.extend(WriteRecord(tid, "", -10 - (count + i), RESUME, value)
                     for i, value in enumerate(answers))
    return out


def is_paused_before(stored: StoredCheckpoint | None) -> bool:
    """Whether a checkpoint is an `interrupt_before` pause."""
    return _paused_before(stored)


def attach_pending(tasks: Sequence[Task], pending: Sequence[WriteRecord],
                   resume_map: Mapping[str, list[Any]]) -> None:
    """Give each task of a resumed step what its earlier attempt left: finished writes (the
    task is then replayed, not rerun) or the resume values for its interrupts."""
    resumes = _resume_values(pending)
    outputs: dict[str, list[WriteRecord]] = {}
    for w in pending:
        if w.channel not in CONTROL_WRITES:
            outputs.setdefault(w.task_id, []).append(w)
    for task in tasks:
        task.resume = resumes.get(task.id, []) + resume_map.get(task.id, [])
        done = outputs.get(task.id)
        if done:
            ordered = sorted(done, key=lambda w: w.idx)
            task.writes = [(w.channel, w.value) for w in ordered if w.channel != NO_WRITES]
            task.outcome = "done"
            task.cached = True


def asked(task: Task, raised: tuple[Interrupt, ...]) -> tuple[Interrupt, ...]:
    """The questions a paused task asks: those it raised, and those of its calls that paused
    beside the one that stopped it."""
    seen = {i.id for i in raised}
    more = [i for call in task.calls or () if call.outcome == "interrupted"
            for i in call.interrupts if i.id not in seen]
    return (*raised, *more) if more else raised


def answer(task: Task, unaddressed: list[Any] | None, value: Any) -> Any:
    """`interrupt(value)` inside `task`: the next resume value, or a pause (`GraphInterrupt`).

    Args:
        unaddressed: answers given to no task in particular; the first question asked without
            an answer takes one (and keeps it, should the task pause again). None: none.
    """
    idx = task.interrupt_count
    task.interrupt_count += 1
    if idx < len(task.resume):
        task.answered = idx
        return task.resume[idx]
    if unaddressed:
        answer = unaddressed.pop(0)
        task.resume = [*task.resume, answer]
        task.claimed = [*task.claimed, answer]
        task.answered = idx
        return answer
    raise GraphInterrupt((Interrupt(value, interrupt_id(task.id or task.name, idx)),))


def interrupt_id(task_id: str, idx: int) -> str:
    """A stable id for the `idx`-th interrupt of a task (what `Command(resume={id: v})` uses)."""
    return hashlib.blake2b(f"{task_id}:{idx}".encode(), digest_size=16).hexdigest()
