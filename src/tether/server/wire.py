"""What goes over the wire: tether's records in the Agent Server's JSON shapes (plus tether's own
fields), and state values made JSON-safe.

Agent Server run statuses are `pending, running, success, error, timeout, interrupted`; tether's
are finer, so every run also carries `tether_status`:

| tether      | Agent Server  | note                                                |
|-------------|---------------|-----------------------------------------------------|
| pending     | pending       |                                                     |
| running     | running       |                                                     |
| cancelling  | running       | a cancel is durable; the run is stopping            |
| interrupted | interrupted   | paused for input (`interrupt()`, `interrupt_before`) |
| success     | success       |                                                     |
| error       | error         |                                                     |
| cancelled   | interrupted   | what the Agent Server reports for a cancelled run   |
| timeout     | timeout       |                                                     |
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from tether.types import CancelReason, Interrupt, RunInfo, RunStatus, Send, StateSnapshot

AGENT_STATUS: dict[RunStatus, str] = {
    RunStatus.PENDING: "pending",
    RunStatus.RUNNING: "running",
    RunStatus.CANCELLING: "running",
    RunStatus.INTERRUPTED: "interrupted",
    RunStatus.SUCCESS: "success",
    RunStatus.ERROR: "error",
    RunStatus.CANCELLED: "interrupted",
    RunStatus.TIMEOUT: "timeout",
}

TENANT_KEY = "tether_tenant"
"""The metadata key (of threads, runs and their checkpoints) that records the tenant."""

NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""The Agent Server's namespace for assistant ids: `uuid5(NAMESPACE_GRAPH, graph_id)`."""


def assistant_id_of(graph_id: str) -> str:
    """The id of the assistant the server makes for a graph (the Agent Server's id)."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


@dataclasses.dataclass(frozen=True, slots=True)
class RunFacts:
    """What an Agent Server run record says that tether's `RunInfo` does not."""

    assistant_id: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    multitask_strategy: str | None = None
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


FACTS_KEPT = 10_000
"""How many runs' facts a launcher remembers; the oldest are forgotten first."""


class RecentFacts:
    """The `RunFacts` of the runs a server started most recently (`FACTS_KEPT` of them).

    Only the loop of the server touches it.
    """

    __slots__ = ("_facts",)

    def __init__(self) -> None:
        self._facts: OrderedDict[str, RunFacts] = OrderedDict()

    def remember(self, run_id: str, facts: RunFacts) -> None:
        """Keep `facts` of a run just started."""
        self._facts[run_id] = facts
        while len(self._facts) > FACTS_KEPT:
            self._facts.popitem(last=False)

    def get(self, run_id: str) -> RunFacts | None:
        """The facts of a run, if still remembered."""
        return self._facts.get(run_id)


_SIMPLE: tuple[tuple[type[Any] | tuple[type[Any], ...], Any], ...] = (
    (Interrupt, lambda v: {"value": v.value, "id": v.id}),
    ((datetime, date), lambda v: v.isoformat()),
    (Enum, lambda v: v.value),
    (uuid.UUID, str),
    ((set, frozenset), list),
    (BaseException, lambda v: {"error": type(v).__name__, "message": str(v)}),
    (Send, lambda v: {"node": v.node, "arg": v.arg}),
    (bytes, lambda v: v.decode("utf-8", errors="replace")),
)


def encode(value: Any) -> Any:
    """A JSON-ready form of a value that `json` cannot write itself (the `default` hook).

    Messages keep their `type`; dataclasses, pydantic models and named tuples become objects;
    interrupts become `{"value", "id"}`; anything else unknown becomes its `str`.
    """
    for kind, convert in _SIMPLE:
        if isinstance(value, kind):
            return convert(value)
    if isinstance(value, type):
        return str(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        tag = getattr(type(value), "type", None)
        return {**fields, "type": tag} if isinstance(tag, str) else fields
    as_dict = getattr(value, "_asdict", None)
    return as_dict() if callable(as_dict) else str(value)


def dumps(value: Any) -> bytes:
    """`value` as compact JSON bytes (see `encode`)."""
    return json.dumps(value, default=encode, ensure_ascii=False,
                      separators=(",", ":")).encode()


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (a round trip through `dumps`)."""
    return json.loads(dumps(value))


def reason_json(reason: CancelReason | None) -> dict[str, Any] | None:
    """A cancel reason as JSON."""
    return None if reason is None else jsonable(reason.to_dict())


def error_json(error: str | None) -> dict[str, str]:
    """`RunInfo.error` ("Type: message") as the Agent Server's `{"error", "message"}`."""
    text = error or "Error"
    kind, sep, message = text.partition(": ")
    if not sep or " " in kind:
        return {"error": "Error", "message": text}
    return {"error": kind, "message": message}


_RECORD_KEYS = frozenset({"graph", "checkpoint_ns", "assistant_id", "graph_id", TENANT_KEY})


def facts_of(info: RunInfo) -> RunFacts:
    """What a run's own record says of its order (its metadata, when the store keeps the run
    config's metadata)."""
    metadata = {k: v for k, v in info.metadata.items() if k not in _RECORD_KEYS}
    assistant = info.metadata.get("assistant_id")
    return RunFacts(assistant if isinstance(assistant, str) else None, metadata)


def run_json(info: RunInfo, facts: RunFacts | None = None) -> dict[str, Any]:
    """A run in the Agent Server's shape, with tether's fields added."""
    facts = facts or facts_of(info)
    graph = info.metadata.get("graph")
    updated = info.ended_at or info.started_at or info.created_at
    reason = info.reason
    return {
        "run_id": info.run_id,
        "thread_id": info.thread_id,
        "assistant_id": facts.assistant_id or (assistant_id_of(graph) if graph else None),
        "created_at": info.created_at.isoformat(),
        "updated_at": updated.isoformat(),
        "status": AGENT_STATUS[info.status],
        "metadata": jsonable(facts.metadata),
        "multitask_strategy": facts.multitask_strategy,
        "kwargs": jsonable(facts.kwargs),
        "cancel_reason": reason.message if reason is not None else None,
        "tether_status": info.status.value,
        "tether_reason": reason_json(reason),
        "graph_id": graph,
        "started_at": info.started_at.isoformat() if info.started_at else None,
        "ended_at": info.ended_at.isoformat() if info.ended_at else None,
        "checkpoint_id": info.checkpoint_id,
        "error": info.error,
        "error_node": info.error_node,
        "error_traceback": info.error_traceback,
        "cancel_latency_ms": info.cancel_latency_ms,
    }


def checkpoint_json(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A LangGraph checkpoint config as the Agent Server's `Checkpoint` object."""
    if not config:
        return None
    conf = config.get("configurable") or {}
    if conf.get("checkpoint_id") is None:
        return None
    return {"thread_id": conf.get("thread_id"), "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": conf.get("checkpoint_id"), "checkpoint_map": None}


def state_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """A `StateSnapshot` as the Agent Server's `ThreadState`."""
    checkpoint = checkpoint_json(snapshot.config)
    parent = checkpoint_json(snapshot.parent_config)
    tasks = [{"id": t.id, "name": t.name, "path": list(t.path),
              "error": None if t.error is None else str(t.error),
              "interrupts": list(t.interrupts), "checkpoint": None, "state": None,
              "result": t.result} for t in snapshot.tasks]
    state: dict[str, Any] = jsonable({
        "values": snapshot.values,
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": snapshot.metadata,
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": list(snapshot.interrupts),
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    })
    return state


def interrupts_by_task(snapshot: StateSnapshot | None) -> dict[str, list[Any]]:
    """A thread's waiting interrupts, by task id (the Agent Server's `Thread.interrupts`)."""
    if snapshot is None:
        return {}
    return {t.id: jsonable(list(t.interrupts)) for t in snapshot.tasks if t.interrupts}


__all__ = [
    "FACTS_KEPT",
    "RecentFacts",
    "AGENT_STATUS",
    "NAMESPACE_GRAPH",
    "TENANT_KEY",
    "RunFacts",
    "assistant_id_of",
    "checkpoint_json",
    "dumps",
    "encode",
    "error_json",
    "facts_of",
    "interrupts_by_task",
    "jsonable",
    "reason_json",
    "run_json",
    "state_json",
]
