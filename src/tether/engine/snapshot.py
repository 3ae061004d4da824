"""A stored checkpoint seen as LangGraph shows it: the state with the writes of the tasks that
finished applied, the tasks still due, and the interrupts waiting for an answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.checkpoint.base import StoredCheckpoint
from tether.checkpoint.ids import task_id
from tether.constants import ERROR, INTERRUPT, START
from tether.engine.apply import group_writes
from tether.engine.interrupts import attach_pending
from tether.engine.spec import GraphSpec
from tether.engine.state import ChannelState
from tether.engine.task import PULL, Task
from tether.types import Interrupt, PregelTask


@dataclass(frozen=True, slots=True)
class CheckpointView:
    """What `get_state` reports for one checkpoint."""

    values: Any
    next: tuple[str, ...]
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...]


def view(spec: GraphSpec, stored: StoredCheckpoint, *, live: bool) -> CheckpointView:
    """How a checkpoint looks from outside.

    Args:
        live: the current state (the thread's latest): finished tasks' writes applied, `next`
            only what still has to run, only unanswered interrupts. Otherwise a record of the
            step: the state as the step began, every task, every interrupt raised.
    """
    state = ChannelState(spec)
    state.restore(stored)
    state.refresh_all()
    writes = stored.pending_writes
    tasks = state.plan(None)
    for task in tasks:
        task.id = task_id(stored.id, stored.ns, task.step, task.name, task.path_str)
    attach_pending(tasks, writes, {})
    done = [t for t in tasks if t.outcome == "done"]
    if live and done:
        state.put(group_writes(done))
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
        if task.outcome == "done" and spec.root is not None:
            result = dict(task.writes or ()).get(spec.root)
        elif task.outcome == "done":
            result = {k: v for k, v in task.writes or () if k in spec.state_keys} or None
        interrupts = () if (live and task.outcome == "done") else tuple(raised.get(task.id, ()))
        error = errors.get(task.id)
        infos.append(PregelTask(task.id, task.name, task.path, error, interrupts, None, result))
    if stored.source == "input" and START in stored.values and spec.start is not None:
        start_id = task_id(stored.id, stored.ns, stored.step + 1, START, f"{PULL}|{START}")
        infos.insert(0, PregelTask(start_id, START, (PULL, START), None, (), None,
                                   stored.values[START]))
        tasks.insert(0, Task(spec.start, stored.values[START], (PULL, START), stored.step + 1))
    shown = tuple(i for t in infos for i in t.interrupts)
    pending = tuple(t.name for t in tasks if not (live and t.outcome == "done"))
    return CheckpointView(state.shown(), pending, tuple(infos), shown)
