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
import math
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from starlette.responses import JSONResponse

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

SCOPE = "/"
"""Joins a tenant and a thread id in the id a thread is stored under when another tenant took
the id first (`context.store_ids`)."""


def client_id(stored: str) -> str:
    """The thread id a client knows for a thread stored under `stored`."""
    return stored.rpartition(SCOPE)[2]

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
    (Interrupt, lambda v: {"value": v.value, "id": v.id} if v.response_schema is None
     else {"value": v.value, "id": v.id, "response_schema": v.response_schema}),
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


OUTPUT_DEPTH = 200
"""The nesting a value keeps in an answer; anything deeper becomes a note. (Python's JSON tools,
and pydantic's, give up a few hundred levels down, counting the levels of the answer itself.)"""
_TOO_DEEP = f"<nested deeper than {OUTPUT_DEPTH} levels>"


_ENCODER = json.JSONEncoder(default=encode, ensure_ascii=False, allow_nan=False,
                            separators=(",", ":"))
"""`dumps`'s encoder, made once: `json.dumps` with these options makes one per call."""


def dumps(value: Any) -> bytes:
    """`value` as compact JSON bytes (see `encode`), whatever it holds: always valid JSON in
    UTF-8. A number that is not finite becomes `null`, text that is not valid Unicode gets
    U+FFFD in place of its lone surrogates, nesting past `OUTPUT_DEPTH` becomes a note."""
    try:
        text = _ENCODER.encode(value)
        data = text.encode()
    except (ValueError, UnicodeEncodeError, RecursionError):
        return _dumps_plain(value)
    # Only a text with that many brackets can be that deep: the exact check is rarely needed.
    if text.count("[") + text.count("{") > OUTPUT_DEPTH and _deeper(json.loads(text)):
        return _dumps_plain(value)
    return data


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (a round trip through `dumps`).

    Data that is plain JSON already (the metadata and reasons of most records) is copied as
    the round trip would give it back, without writing and reading it: on every run record.
    """
    copied = _plain_copy(value, 0)
    return json.loads(dumps(value)) if copied is _NOT_PLAIN else copied


_NOT_PLAIN: Any = object()
_PLAIN_DEPTH = 32
"""How deep `_plain_copy` goes before leaving a value to the round trip (well within
`OUTPUT_DEPTH`, and bounding the recursion)."""
_PLAIN_INT = 1 << 64
"""Integers beyond this are left to the round trip (Python limits the digits it writes)."""


def _plain_copy(value: Any, depth: int) -> Any:
    """A copy of `value` equal to what `json.loads(dumps(value))` gives, if `value` is made of
    exact `dict`s with ASCII `str` keys, `list`s, `tuple`s, ASCII `str`s, `int`s, finite
    `float`s, `bool`s and `None`; else `_NOT_PLAIN`."""
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        return _NOT_PLAIN if depth >= _PLAIN_DEPTH else _copy_container(value, depth)
    plain = (value is None or kind is bool or (kind is str and value.isascii())
             or (kind is int and -_PLAIN_INT < value < _PLAIN_INT)
             or (kind is float and math.isfinite(value)))
    return value if plain else _NOT_PLAIN


def _copy_container(value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            copied = _plain_copy(item, depth + 1)
            if type(key) is not str or not key.isascii() or copied is _NOT_PLAIN:
                return _NOT_PLAIN
            out[key] = copied
        return out
    items = [_plain_copy(item, depth + 1) for item in value]
    return _NOT_PLAIN if any(item is _NOT_PLAIN for item in items) else items


class WireJSON(JSONResponse):
    """A JSON response that renders anything (see `dumps`): the server's default response."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def _dumps_plain(value: Any) -> bytes:
    return json.dumps(_plain(value), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode()


def _deeper(data: Any) -> bool:
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= OUTPUT_DEPTH:
                return True
            stack.extend((inner, depth + 1)
                         for inner in (item.values() if isinstance(item, dict) else item))
    return False


def _plain(value: Any) -> Any:
    """`value` as JSON data `json.dumps` writes strictly, built without recursion."""
    holder: list[Any] = [None]
    todo: list[tuple[Any, Any, Any, int]] = [(value, holder, 0, 0)]
    while todo:
        item, into, slot, depth = todo.pop()
        into[slot] = _plain_one(item, depth, todo)
    return holder[0]


def _plain_one(item: Any, depth: int, todo: list[tuple[Any, Any, Any, int]]) -> Any:
    for _ in range(8):  # `encode` may answer another object to convert
        if item is None or isinstance(item, (bool, int)):
            return item
        if isinstance(item, float):
            return item if math.isfinite(item) else None
        if isinstance(item, str):
            return _valid_text(item)
        if isinstance(item, (dict, list, tuple)):
            return _TOO_DEEP if depth >= OUTPUT_DEPTH else _plain_container(item, depth, todo)
        item = encode(item)
    return _valid_text(str(item))


def _plain_container(item: Any, depth: int, todo: list[tuple[Any, Any, Any, int]]) -> Any:
    """An empty copy of a list or dict; its items are queued in `todo` to fill it."""
    if isinstance(item, dict):
        out: dict[str, Any] = {}
        for key, inner in item.items():
            name = _valid_text(key if isinstance(key, str) else json.dumps(key)
                               if key is None or isinstance(key, (bool, int, float))
                               else str(key))
            out[name] = None
            todo.append((inner, out, name, depth + 1))
        return out
    items: list[Any] = [None] * len(item)
    todo.extend((inner, items, i, depth + 1) for i, inner in enumerate(item))
    return items


def _valid_text(text: str) -> str:
    if text.isascii():
        return text
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


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
        "thread_id": client_id(info.thread_id) if info.thread_id is not None else None,
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
    thread_id = conf.get("thread_id")
    return {"thread_id": client_id(thread_id) if isinstance(thread_id, str) else thread_id,
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
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
    "OUTPUT_DEPTH",
    "SCOPE",
    "TENANT_KEY",
    "RunFacts",
    "WireJSON",
    "assistant_id_of",
    "client_id",
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
