"""Plain values every layer shares: LangGraph's `Send`, `Command`, `RetryPolicy`, `StateSnapshot`,
and tether's run records (`CancelReason`, `RunInfo`, `RunSnapshot`, `RunEvent`). LangGraph's
`interrupt` is re-exported here from `tether.node_context`, which answers it."""

from __future__ import annotations

import functools
import hashlib
import random
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, NamedTuple, TypedDict, TypeVar

from tether.errors import InvalidUpdateError
from tether.node_context import StreamWriter, interrupt
from tether.records import fast_record
from tether.status import TERMINAL_STATUSES, TRANSITIONS, Move, RunStatus, sources

N = TypeVar("N", bound=Hashable)
OutputT = TypeVar("OutputT")

All = Literal["*"]
"""Marker for "every node" in `interrupt_before` / `interrupt_after`."""

StreamMode = Literal["values", "updates", "custom", "messages", "debug", "tasks", "checkpoints",
                     "lifecycle"]
"""What a stream yields: whole states, per-node updates, node-written chunks, chat-model tokens
(`(message_chunk, metadata)`), engine events, or (tether's own) the run's lifecycle events."""

Durability = Literal["sync", "async", "exit"]
"""When checkpoints are written: before the next step starts, while it runs, or at the end."""

MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]
"""What a new run does when its thread already has a run in flight."""

CancelKind = Literal[
    "user", "timeout", "budget", "loop", "policy", "superseded", "overload", "shutdown", "parent"
]
"""Why a run was cancelled."""

EventPhase = Literal[
    "create",
    "start",
    "request",
    "propagate",
    "terminate_node",
    "cleanup",
    "checkpoint",
    "terminate",
    "finish",
    "orphan",
    "claim",
    "release",
    "repair",
]
"""A run's audit-log entries: its lifecycle (and, with workers, each claim and release of its
lease), the six phases of a cancel, and the repair of a thread a stopped run left open (the
tool calls it answered, the partial answer it kept)."""

utcnow: Callable[[], datetime] = functools.partial(datetime.now, UTC)
"""The current time as an aware UTC datetime (what every record stores): `datetime.now(UTC)`,
bound in C (a run's cancel stamps half a dozen events, and a Python frame each was a tenth of
their cost)."""


@fast_record
@dataclass(frozen=True, slots=True)
class CancelReason:
    """Why a run was (or is being) cancelled: seen by nodes, stored on the run, shown by faces.

    Attributes:
        kind: the source of the cancel.
        message: a human-readable explanation.
        requested_by: who asked (a user name, "deadline", a policy name...).
        requested_at: when the request was made (UTC).
        evidence: what a policy saw when it fired (limit, usage, repeated steps...).
    """

    kind: CancelKind = "user"
    message: str = ""
    requested_by: str | None = None
    requested_at: datetime = field(default_factory=utcnow)
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def coerce(cls, reason: CancelReason | str | None, *,
               default_by: str | None = None) -> CancelReason:
        """Accept what `cancel(reason)` takes: a reason, a message (kind `user`), or nothing."""
        if isinstance(reason, CancelReason):
            return reason
        if reason is None:
            return cls("user", "cancelled by request", default_by)
        if isinstance(reason, str):
            return cls("user", reason, default_by)
        raise TypeError(f"cancel reason must be a str or CancelReason, not {type(reason).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as the store and the server keep it."""
        return {
            "kind": self.kind,
            "message": self.message,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CancelReason:
        """The inverse of `to_dict`."""
        return cls(
            kind=data["kind"],
            message=data.get("message", ""),
            requested_by=data.get("requested_by"),
            requested_at=datetime.fromisoformat(data["requested_at"]),
            evidence=dict(data.get("evidence") or {}),
        )


@fast_record
@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run's record, as `graph.get_run(run_id)` returns it."""

    run_id: str
    thread_id: str | None
    status: RunStatus
    reason: CancelReason | None = None
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    checkpoint_id: str | None = None
    error: str | None = None
    cancel_latency_ms: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error_node: str | None = None
    """The node whose exception failed the run (`outer/inner` inside a subgraph)."""
    error_traceback: str | None = None
    """The innermost frames of the failing node's code, formatted as Python prints them."""

    @property
    def terminal(self) -> bool:
        """True once the run has ended."""
        return self.status in TERMINAL_STATUSES

    def __call__(self) -> RunInfo:
        """The record itself: `run.info` is an attribute, and `run.info()` (its spelling in
        tether 0.1) keeps working."""
        return self


@fast_record
@dataclass(frozen=True, slots=True)
class Usage:
    """What a run has spent so far (`tether.usage()`).

    Attributes:
        steps: supersteps run (subgraph steps included).
        node_calls: task executions per node name.
        tokens, cost, tool_calls: what nodes reported with `tether.charge()`.
        wall_time: seconds since the run started.
    """

    steps: int = 0
    node_calls: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    tool_calls: int = 0
    wall_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (stored as evidence)."""
        return Usage.dict_of(steps=self.steps, node_calls=self.node_calls, tokens=self.tokens,
                             cost=self.cost, tool_calls=self.tool_calls,
                             wall_time=self.wall_time)

    @staticmethod
    def dict_of(*, steps: int, node_calls: dict[str, int], tokens: int, cost: float,
                tool_calls: int, wall_time: float) -> dict[str, Any]:
        """`Usage(...).to_dict()` from the values, without the record in between (a run's
        counters give it straight to its last audit event)."""
        return {"steps": steps, "node_calls": dict(node_calls), "tokens": tokens, "cost": cost,
                "tool_calls": tool_calls, "wall_time": round(wall_time, 6)}


class PendingWrite(NamedTuple):
    """A write of a task that finished in a step that did not complete."""

    node: str
    key: str
    value: Any


@fast_record
@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """What `store.load(run_id)` returns: the state a run ended (or paused) in."""

    run_id: str
    values: dict[str, Any]
    next: tuple[str, ...]
    step: int
    status: RunStatus
    reason: CancelReason | None
    checkpoint_id: str | None
    cancelled_tasks: tuple[str, ...]
    pending_writes: tuple[PendingWrite, ...]
    partial_answers: tuple[dict[str, Any], ...] = ()
    """What the chat models of stopped nodes had streamed of their answers ("Stop
    generating"): one `{"text", "id", "name"}` per answer cut short, in order."""


@fast_record
@dataclass(frozen=True, slots=True)
class RunEvent:
    """One entry of a run's audit log (`store.events(run_id)`)."""

    phase: EventPhase
    at: datetime
    node: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Send:
    """A packet for one task of `node` in the next superstep, with its own private input."""

    __slots__ = ("arg", "node")

    def __init__(self, node: str, arg: Any) -> None:
        self.node = node
        self.arg = arg

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Send) and (self.node, self.arg) == (other.node, other.arg)

    def __hash__(self) -> int:
        return hash((self.node, repr(self.arg)))


@dataclass(frozen=True, slots=True)
class Command(Generic[N]):
    """Returned by a node (or given as input) to update state, route, and/or resume.

    Attributes:
        graph: None for the current graph, `Command.PARENT` for the parent of a subgraph.
        update: a state update, applied like a node's return value.
        resume: the value for a pending `interrupt()` (or a map of interrupt id to value).
        goto: node names or `Send`s to run next.
    """

    graph: str | None = None
    update: Any | None = None
    resume: dict[str, Any] | Any | None = None
    goto: Send | Sequence[Send | N] | N = ()

    PARENT: ClassVar[Literal["__parent__"]] = "__parent__"

    def goto_targets(self) -> tuple[Send | str, ...]:
        """`goto` as a tuple of node names and `Send`s."""
        goto: Any = self.goto
        if isinstance(goto, (str, Send)):
            return (goto,)
        return tuple(goto)

    def update_pairs(self) -> list[tuple[str, Any]] | None:
        """`update` as (key, value) pairs, or None when it is a state object to map later."""
        update = self.update
        if update is None:
            return []
        if isinstance(update, dict):
            return list(update.items())
        if isinstance(update, (list, tuple)) and all(
            isinstance(t, tuple) and len(t) == 2 for t in update
        ):
            return list(update)
        return None


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A pause requested by `interrupt(value)`, waiting for `Command(resume=...)`."""

    value: Any
    id: str = ""
    response_schema: Any = None


_NOT_RETRIED = (
    ValueError, TypeError, ArithmeticError, ImportError, LookupError, NameError, SyntaxError,
    RuntimeError, ReferenceError, StopIteration, StopAsyncIteration, OSError, InvalidUpdateError,
)


def default_retry_on(exc: Exception) -> bool:
    """LangGraph's default: retry connection errors and HTTP 5xx, not programming errors."""
    if isinstance(exc, ConnectionError):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return 500 <= status < 600
    return not isinstance(exc, _NOT_RETRIED)


class RetryPolicy(NamedTuple):
    """How a failing node is retried (LangGraph's fields and defaults)."""

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: (
        type[Exception] | Sequence[type[Exception]] | Callable[[Exception], bool]
    ) = default_retry_on

    def should_retry(self, exc: Exception) -> bool:
        """Whether `exc` is one this policy retries."""
        retry_on = self.retry_on
        if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
            return isinstance(exc, retry_on)
        if isinstance(retry_on, Sequence):
            return isinstance(exc, tuple(retry_on))
        predicate: Callable[[Exception], bool] = retry_on  # type: ignore[assignment]
        return bool(predicate(exc))

    def interval(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        growth = self.backoff_factor ** (attempt - 1)
        interval = min(self.max_interval, self.initial_interval * growth)
        if self.jitter:
            interval += random.uniform(0, 1)
        return interval


def default_cache_key(*args: Any, **kwargs: Any) -> str:
    """A node input's cache key (`CachePolicy`'s default): a SHA-256 of its canonical form —
    dicts by sorted key, sets sorted, dataclasses and pydantic models by their fields — so the
    same input gives the same key in every process. An object known only by its `repr` keys by
    it (one whose `repr` shows its address never hits the cache again)."""
    return hashlib.sha256(repr(_canonical((args, kwargs))).encode()).hexdigest()


def _canonical(value: Any, depth: int = 16) -> Any:
    if depth == 0 or isinstance(value, (str, int, float, bool, type(None), bytes)):
        return value
    if isinstance(value, dict):
        items = ((_canonical(k, depth - 1), _canonical(v, depth - 1)) for k, v in value.items())
        return ("dict", tuple(sorted(items, key=repr)))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((_canonical(v, depth - 1) for v in value), key=repr)))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v, depth - 1) for v in value)
    fields = getattr(value, "__dataclass_fields__", None)
    data = ({name: getattr(value, name) for name in fields} if fields is not None
            else value.model_dump() if hasattr(value, "model_dump") else None)
    if data is not None:
        return (type(value).__qualname__, _canonical(data, depth - 1))
    return repr(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePolicy:
    """Caching of a node's writes by its input (LangGraph's `CachePolicy`).

    Attributes:
        key_func: turns the node's input into its cache key (str or bytes).
        ttl: seconds an entry lives, or None for ever.
    """

    key_func: Callable[..., str | bytes] = default_cache_key
    ttl: int | None = None


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """LangGraph's per-node timeouts: a hard cap per attempt, and/or an idle limit that any sign
    of life (a stream chunk, `tether.heartbeat()`, `tether.charge()`) resets."""

    run_timeout: float | None = None
    idle_timeout: float | None = None
    refresh_on: Literal["auto", "heartbeat"] = "auto"


class PregelTask(NamedTuple):
    """One task of a `StateSnapshot`: a node due to run, with what it produced so far."""

    id: str
    name: str
    path: tuple[Any, ...]
    error: Exception | str | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None


class StateUpdate(NamedTuple):
    """One update of `bulk_update_state`: `values` written as if node `as_node` had returned
    them. `task_id` is accepted for LangGraph's programs and not used (tether derives a task's
    id from its checkpoint)."""

    values: dict[str, Any] | None
    as_node: str | None = None
    task_id: str | None = None


class StateSnapshot(NamedTuple):
    """A thread's state at one checkpoint, as `get_state` returns it."""

    values: dict[str, Any] | Any
    next: tuple[str, ...]
    config: dict[str, Any]
    metadata: dict[str, Any] | None
    created_at: str | None
    parent_config: dict[str, Any] | None
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...] = ()


@dataclass(frozen=True, slots=True)
class GraphOutput(Generic[OutputT]):
    """What `invoke(..., version="v2")` returns: the output and the pending interrupts, apart.

    Attributes:
        value: the graph's output (a dict, or the dataclass or pydantic state it describes).
        interrupts: the questions the run paused on, if it paused.
    """

    value: OutputT
    interrupts: tuple[Interrupt, ...] = ()

    def __getitem__(self, key: str) -> Any:
        """Deprecated, as in LangGraph: `out["__interrupt__"]` and the output's keys."""
        warnings.warn("GraphOutput[key] is deprecated: use .value or .interrupts",
                      DeprecationWarning, stacklevel=2)
        if key == "__interrupt__":
            return self.interrupts
        if isinstance(self.value, dict):
            return self.value[key]
        try:
            return getattr(self.value, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        """Deprecated, as in LangGraph: membership in the output (or `"__interrupt__"`)."""
        warnings.warn("`key in GraphOutput` is deprecated: use .value or .interrupts",
                      DeprecationWarning, stacklevel=2)
        if key == "__interrupt__":
            return bool(self.interrupts)
        if isinstance(self.value, dict):
            return key in self.value
        return isinstance(key, str) and hasattr(self.value, key)


class StreamPart(TypedDict):
    """One chunk of a `version="v2"` stream: its mode, the namespace of the graph that made it,
    and its payload (`values` parts also carry `interrupts`)."""

    type: str
    ns: tuple[str, ...]
    data: Any


__all__ = [
    "TERMINAL_STATUSES",
    "GraphOutput",
    "StreamPart",
    "TRANSITIONS",
    "Usage",
    "All",
    "CachePolicy",
    "CancelKind",
    "CancelReason",
    "Command",
    "Durability",
    "EventPhase",
    "Interrupt",
    "Move",
    "MultitaskStrategy",
    "PendingWrite",
    "PregelTask",
    "RetryPolicy",
    "RunEvent",
    "RunInfo",
    "RunSnapshot",
    "RunStatus",
    "Send",
    "StateSnapshot",
    "StateUpdate",
    "StreamMode",
    "StreamWriter",
    "TimeoutPolicy",
    "default_cache_key",
    "default_retry_on",
    "interrupt",
    "sources",
    "utcnow",
]
