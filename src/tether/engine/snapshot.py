"""A stored checkpoint seen as LangGraph shows it: the state with the writes of the tasks that
finished applied, the tasks still due, and the interrupts waiting for an answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.checkpoint.base import StoredCheckpoint
from tether.checkpoint.ids import task_id
from tether.constants import ERROR, INTERRUPT, NULL_TASK_ID, START
from tether.engine.apply import apply_grouped, group_writes, refresh_values
from tether.engine.plan import plan_tasks
from tether.engine.resume import attach_pending
from tether.engine.spec import GraphSpec
from tether.engine.task import PULL, Task
from tether.types import Interrupt, PregelTask


@dataclass(frozen=True, slots=True)
class CheckpointView:
    """What `get_state` reports for one checkpoint."""

    values: Any
    next: tuple[str, ...]
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...]


def restore(spec: GraphSpec, stored: StoredCheckpoint) -> tuple[dict[str, Any], dict[str, Any]]:
    """Channels and state dict as of a stored checkpoint."""
    channels = {k: f() for k, f in spec.channels.items()}
    for key, value in stored.values.items():
        if key in channels:
            channels[key].restore(value)
    values: dict[str, Any] = {}
    refresh_values(channels, values, frozenset(spec.state_keys), spec.state_keys)
    return channels, values


def view(spec: GraphSpec, stored: StoredCheckpoint, *, live: bool) -> CheckpointView:
    """How a checkpoint looks from outside.

    Args:
        live: the current state (the thread's latest): finished tasks' writes applied, `next`
            only what still has to run, only unanswered interrupts. Otherwise a record of the
            step: the state as the step began, every task, every interrupt raised.
    """
    channels, values = restore(spec, stored)
    writes = stored.pending_writes
    null = [w for w in writes if w.task_id == NULL_TASK_ID]
    if null:
        grouped: dict[str, list[Any]] = {}
        for w in sorted(null, key=lambda w: w.idx):
            grouped.setdefault(w.channel, []).append(w.value)
        updated = apply_grouped(channels, grouped, ())
        refresh_values(channels, values, frozenset(spec.state_keys), updated)
    tasks = plan_tasks(spec, channels, values, stored.step + 1, None)
    for task in tasks:
        task.id = task_id(stored.id, stored.ns, task.step, task.name, task.path_str)
    attach_pending(tasks, writes, {})
    done = [t for t in tasks if t.outcome == "done"]
    if live and done:
        updated = apply_grouped(channels, group_writes(done), ())
        refresh_values(channels, values, frozenset(spec.state_keys), updated)
    raised: dict[str, list[Interrupt]] = {}
    errors: dict[str, str] = {}
    for w in writes:
        if w.channel == INTERRUPT and w.task_id != INTERRUPT:
            raised.setdefault(w.task_id, []).extend(w.value)
        elif w.channel == ERROR:
            errors[w.task_id] = str(w.value)
    infos: list[PregelTask] = []
    for task in tasks:
        result = None
        if task.outcome == "done":
            result = {k: v for k, v in task.writes or () if k in spec.state_keys} or None
        interrupts = () if (live and task.outcome == "done") else tuple(raised.get(task.id, ()))
        error = errors.get(task.id)
        infos.append(PregelTask(task.id, task.name, task.path, error, interrupts, None, result))
    if stored.source == "input" and START in stored.values:
        start_id = task_id(stored.id, stored.ns, stored.step + 1, START, f"{PULL}|{START}")
        infos.insert(0, PregelTask(start_id, START, (PULL, START), None, (), None,
                                   stored.values[START]))
        tasks.insert(0, Task(spec.start, stored.values[START], (PULL, START), stored.step + 1))
    shown = tuple(i for t in infos for i in t.interrupts)
    pending = tuple(t.name for t in tasks if not (live and t.outcome == "done"))
    return CheckpointView(spec.values(values) or {}, pending, tuple(infos), shown)
