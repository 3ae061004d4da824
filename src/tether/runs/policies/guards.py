"""Guards: callables that see a step's proposed writes before they are applied, and may veto.

A guard is called as `guard(step, writes, state)`: `writes` maps each task (its node name; `name#i`
for the i-th `Send` task) to the state keys and values it is about to write, `state` is the state
before the step. It returns None (or True) to let the writes through, or a message (a str) to
veto: the run is cancelled with kind `policy` and the vetoed writes are never applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tether.engine.task import PULL, Task
from tether.types import CancelReason

Guard = Callable[[int, Mapping[str, Mapping[str, Any]], Mapping[str, Any]], Any]


def check(guards: Sequence[Guard], step: int, tasks: Sequence[Task],
          state: Mapping[str, Any]) -> CancelReason | None:
    """Ask every guard; the first veto wins."""
    writes = proposed(tasks)
    for guard in guards:
        verdict = guard(step, writes, state)
        if verdict is not None and verdict is not True:
            return _veto(guard, verdict, step, writes)
    return None


def check_one(guard: Guard, step: int, tasks: Sequence[Task],
              state: Mapping[str, Any]) -> CancelReason | None:
    """`check` of a single guard (the usual case: no loop over the guards)."""
    writes = proposed(tasks)
    verdict = guard(step, writes, state)
    if verdict is None or verdict is True:
        return None
    return _veto(guard, verdict, step, writes)


def proposed(tasks: Sequence[Task]) -> dict[str, dict[str, Any]]:
    """What a guard is shown of a step: each finished task's writes to state keys, by its node
    name (`name#i` for the i-th `Send` task to a node)."""
    if len(tasks) == 1 and (task := tasks[0]).path[0] == PULL:  # the usual step: one task
        return {task.node.name: task.state_update() or {}} if task.outcome == "done" else {}
    writes: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if task.outcome == "done":
            kind, index = task.path
            name = task.node.name
            writes[name if kind == PULL else f"{name}#{index}"] = task.state_update() or {}
    return writes


def _veto(guard: Guard, verdict: Any, step: int,
          writes: Mapping[str, Mapping[str, Any]]) -> CancelReason:
    name = getattr(guard, "__name__", repr(guard))
    message = verdict if isinstance(verdict, str) else f"vetoed by {name}"
    return CancelReason("policy", message, f"guard:{name}",
                        evidence={"guard": name, "step": step, "vetoed": sorted(writes)})
