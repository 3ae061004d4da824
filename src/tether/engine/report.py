"""What a loop shows outside itself: checkpoint chunks for `checkpoints`/`debug` streams, and
the config a task sees (the run's, plus LangGraph's per-task metadata)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.engine.snapshot import view
from tether.engine.task import Task

if TYPE_CHECKING:
    from tether.engine.loop import Loop


def checkpoint_payload(loop: Loop, checkpoint_id: str, parent_id: str | None, *,
                       names: tuple[str, ...], metadata: dict[str, Any],
                       tasks: list[tuple[str, tuple[Any, ...]]]) -> dict[str, Any]:
    """The `checkpoints`/`debug` chunk for a checkpoint, in LangGraph's shape."""
    def cfg(cid: str | None) -> dict[str, Any] | None:
        if cid is None:
            return None
        return {"configurable": {"thread_id": loop.opts.thread_id,
                                 "checkpoint_ns": loop.opts.ns, "checkpoint_id": cid}}

    shown = [{"id": "", "name": name,
              "interrupts": [{"value": i.value, "id": i.id,
                              "response_schema": i.response_schema} for i in raised]}
             for name, raised in tasks]
    return {"config": cfg(checkpoint_id), "parent_config": cfg(parent_id),
            "values": loop._values(), "metadata": metadata, "next": list(names),
            "tasks": shown}


def announce_loaded(loop: Loop) -> None:
    """The checkpoint a continued run starts from, as the first `debug` chunk (LangGraph's)."""
    emitter, loaded = loop.opts.emitter, loop.loaded
    if not emitter.checkpoints or loaded is None:
        return
    seen = view(loop.spec, loaded, live=False)
    tasks = [(t.name, t.interrupts) for t in seen.tasks]
    payload = checkpoint_payload(loop, loaded.id, loaded.parent_id, names=seen.next,
                                 metadata=dict(loaded.metadata), tasks=tasks)
    emitter.emit_checkpoint(payload, loop.step)


def task_config(loop: Loop, task: Task) -> dict[str, Any]:
    """The config a task's node sees: the run's, with LangGraph's per-task metadata."""
    raw = loop.opts.config.raw
    configurable = dict(raw.get("configurable") or {})
    if loop.opts.thread_id is not None:
        configurable["thread_id"] = loop.opts.thread_id
    configurable["checkpoint_ns"] = loop.opts.ns
    metadata = dict(raw.get("metadata") or {})
    metadata.update({
        "langgraph_step": task.step, "langgraph_node": task.name,
        "langgraph_triggers": loop._node_triggers.get(task.name, ()),
        "langgraph_path": task.path, "langgraph_checkpoint_ns": f"{task.name}:{task.id}",
    })
    if loop.opts.thread_id is not None:
        metadata.setdefault("thread_id", loop.opts.thread_id)
    return {**raw, "configurable": configurable, "metadata": metadata}
