"""Which tasks the next superstep runs: pure functions of the channels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tether.channels.base import BaseChannel
from tether.channels.topic import Topic
from tether.constants import TASKS
from tether.engine.spec import GraphSpec
from tether.engine.task import PULL, PUSH, Task
from tether.errors import InvalidUpdateError
from tether.managed.base import StepBudget
from tether.types import Send


def due_nodes(spec: GraphSpec, channels: Mapping[str, BaseChannel],
              candidates: Iterable[str] | None) -> list[str]:
    """Nodes whose triggers are available, in LangGraph's order: by name within a run (the
    order their tasks start in, and so the order instant ones finish and stream in), in
    declaration order when planned from a checkpoint alone (`candidates` None).

    Args:
        candidates: trigger channels that changed in the last step (None: check them all,
            as after loading a checkpoint).
    """
    triggers = spec.triggers
    if candidates is None:
        order = spec.order
        return sorted({n for channel, nodes in triggers.items()
                       if nodes and channels[channel].is_available() for n in nodes},
                      key=order.__getitem__)
    names: set[str] = set()
    for channel in candidates:
        nodes = triggers.get(channel)
        if nodes and channels[channel].is_available():
            names.update(nodes)
    if len(names) <= 1:
        return list(names)
    return sorted(names)


def pending_sends(channels: Mapping[str, BaseChannel]) -> Sequence[Send]:
    """`Send` packets waiting for the next superstep."""
    topic = channels.get(TASKS)
    # None first: most runs never make the topic, and an `isinstance` against a channel class
    # (an ABC) is slow when it fails.
    if topic is None or not isinstance(topic, Topic) or not topic.values:
        return ()
    return list(topic.values)


def managed_values(spec: GraphSpec, step: int, stop: int | None) -> dict[str, Any]:
    """The managed values (`RemainingSteps`...) a task of superstep `step` sees, for a run
    whose budget stops before step `stop` (None: no budget known, none given)."""
    if not spec.managed or stop is None:
        return {}
    budget = StepBudget(step, stop)
    return {key: manager.get(budget) for key, manager in spec.managed.items()}


_PULL_PATHS: dict[str, tuple[str, str]] = {}
"""One path tuple per node name, shared by every pull task of that node (tasks are made by the
thousand; node names are few)."""


def plan_tasks(spec: GraphSpec, channels: Mapping[str, BaseChannel], values: dict[str, Any],
               step: int, candidates: Iterable[str] | None, *,
               stop: int | None = None) -> list[Task]:
    """The tasks of superstep `step`: one per due node, then one per pending `Send`.

    Args:
        stop: the first step the run's budget does not allow (for managed values).
    """
    nodes = spec.nodes
    tasks: list[Task] = []
    if spec.managed:
        values = {**values, **managed_values(spec, step, stop)}
    for name in due_nodes(spec, channels, candidates):
        node = nodes[name]
        reader = node.reader
        node_input = reader(values) if reader is not None else dict(values)
        path = _PULL_PATHS.get(name)
        if path is None:
            path = _PULL_PATHS[name] = (PULL, name)
        tasks.append(Task(node, node_input, path, step))
    for idx, send in enumerate(pending_sends(channels)):
        target = nodes.get(send.node)
        if target is None:
            raise InvalidUpdateError(f"Send to unknown node {send.node!r}")
        tasks.append(Task(target, send.arg, (PUSH, idx), step))
    return tasks


def consume_triggers(spec: GraphSpec, channels: Mapping[str, BaseChannel],
                     tasks: Iterable[Task]) -> list[str]:
    """Reset the barriers (and deferred triggers) that fired for `tasks`; returns the
    channels that changed."""
    changed: list[str] = []
    barriers = spec.barriers
    if not barriers:
        return changed
    for task in tasks:
        if task.path[0] != PULL:
            continue
        for channel in barriers.get(task.name, ()):
            if channels[channel].consume():
                changed.append(channel)
    return changed


__all__ = ["PULL", "PUSH", "consume_triggers", "due_nodes", "managed_values", "pending_sends",
           "plan_tasks"]
