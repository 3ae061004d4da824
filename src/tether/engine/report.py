"""What a loop shows outside itself: checkpoint chunks for `checkpoints`/`debug` streams, and
the config a task sees (the run's, plus LangGraph's per-task metadata)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.checkpoint.base import StoredCheckpoint
from tether.engine.snapshot import view
from tether.engine.spec import GraphSpec
from tether.engine.stream import Emitter
from tether.engine.task import Task
from tether.types import Interrupt


def checkpoint_payload(thread_id: str | None, ns: str, values: Any, checkpoint_id: str,
                       parent_id: str | None, *, names: tuple[str, ...],
                       metadata: dict[str, Any],
                       tasks: Sequence[tuple[str, tuple[Interrupt, ...]]]) -> dict[str, Any]:
    """The `checkpoints`/`debug` chunk for a checkpoint of `thread_id`, in LangGraph's shape."""
    def cfg(cid: str | None) -> dict[str, Any] | None:
        if cid is None:
            return None
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                 "checkpoint_id": cid}}

    shown = [{"id": "", "name": name,
              "interrupts": [{"value": i.value, "id": i.id,
                              "response_schema": i.response_schema} for i in raised]}
             for name, raised in tasks]
    return {"config": cfg(checkpoint_id), "parent_config": cfg(parent_id),
            "values": values, "metadata": metadata, "next": list(names), "tasks": shown}


def announce_loaded(emitter: Emitter, spec: GraphSpec, loaded: StoredCheckpoint | None,
                    values: Any, step: int) -> None:
    """The checkpoint a continued run starts from, as the first `debug` chunk (LangGraph's).

    Args:
        values: the state it holds, as a `values` chunk shows it.
    """
    if not emitter.checkpoints or loaded is None:
        return
    seen = view(spec, loaded, live=False)
    tasks = [(t.name, t.interrupts) for t in seen.tasks]
    payload = checkpoint_payload(loaded.thread_id, loaded.ns, values, loaded.id,
                                 loaded.parent_id, names=seen.next,
                                 metadata=dict(loaded.metadata), tasks=tasks)
    emitter.emit_checkpoint(payload, step)


def task_config(raw: dict[str, Any], thread_id: str | None, ns: str,
                triggers: tuple[str, ...], task: Task) -> dict[str, Any]:
    """The config a task's node sees: the run's (`raw`), with LangGraph's per-task metadata.

    Args:
        triggers: the channels that trigger the task's node.
    """
    configurable = dict(raw.get("configurable") or {})
    if thread_id is not None:
        configurable["thread_id"] = thread_id
    configurable["checkpoint_ns"] = ns
    metadata = dict(raw.get("metadata") or {})
    metadata.update({
        "langgraph_step": task.step, "langgraph_node": task.name,
        "langgraph_triggers": triggers,
        "langgraph_path": task.path, "langgraph_checkpoint_ns": f"{task.name}:{task.id}",
    })
    if thread_id is not None:
        metadata.setdefault("thread_id", thread_id)
    # `run_id` names the graph's own run, as in LangGraph a node's config never holds it: the
    # chat models a node calls would all take that id, and `add_messages` would merge their
    # answers into one message. A node reads its run's id from `get_runtime().run_id`.
    own = {key: value for key, value in raw.items() if key != "run_id"}
    return {**own, "configurable": configurable, "metadata": metadata}
