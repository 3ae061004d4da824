"""What starting a run takes: the graph, its input and config, where it is recorded, how its
chunks are shaped, and the policies it runs under."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tether.checkpoint.base import CheckpointStore
from tether.config import RunConfig
from tether.engine.closing import Closer
from tether.engine.observe import TaskObserver
from tether.engine.spec import GraphSpec
from tether.engine.to_thread import ThreadPool
from tether.runs.policies import PolicyDefaults
from tether.store.base import BaseStore
from tether.types import CancelReason, RunInfo


@dataclass(slots=True)
class StreamFormat:
    """How chunks reach the consumer: LangGraph's shapes for `stream_mode` and `subgraphs`."""

    modes: tuple[str, ...] = ()
    single: bool = True
    subgraphs: bool = False

    def shape(self, ns: tuple[str, ...], mode: str, payload: Any) -> Any:
        """The chunk as the consumer sees it."""
        if self.single:
            return (ns, payload) if self.subgraphs else payload
        return (ns, mode, payload) if self.subgraphs else (mode, payload)


@dataclass(slots=True)
class RunRequest:
    """Everything needed to start a run.

    Attributes:
        store: where the run is recorded (the graph's ledger).
        durable: the run checkpoints into `store` (a graph with a checkpointer); otherwise
            `store` only records the run.
        long_term_store: what its nodes get as `runtime.store` (None: nothing).
        inline_sync: a sync node alone in its step may run on the caller's thread (a sync call
            on a private loop).
        buffer_limit: chunks kept for a consumer that lags (None: all).
        metadata: recorded on the run.
        policies: the graph's default budgets, loop detection and guards.
        adopt: the run's record exists already (a queued run a worker claimed): take it over
            instead of creating it.
        started: the adopted record, when whoever claimed the run recorded its start too
            (`running`, a `start` event): the run's start is not recorded a second time.
        step_check: asked before the policies at every superstep boundary; a reason stops the
            run there.
    """

    spec: GraphSpec
    input: Any
    config: RunConfig
    store: CheckpointStore
    durable: bool
    pool: ThreadPool
    stream: StreamFormat = field(default_factory=StreamFormat)
    context: Any = None
    interrupt_before: frozenset[str] | None = None
    interrupt_after: frozenset[str] | None = None
    inline_sync: bool = False
    buffer_limit: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    policies: PolicyDefaults = field(default_factory=PolicyDefaults)
    adopt: bool = False
    started: RunInfo | None = None
    step_check: Callable[[], CancelReason | None] | None = None
    long_term_store: BaseStore | None = None
    cache: Any = None
    """Where nodes and calls with a `CachePolicy` keep their results (`compile(cache=...)`)."""
    cache_policy: Any = None
    """The policy of calls that have none (an entrypoint's `cache_policy`)."""
    observer: TaskObserver | None = None
    """Watches each attempt of the run's tasks (chat-model tokens, partial answers)."""
    closer: Closer | None = None
    """Closes a thread a stopped run left open before a new input (a chat's unanswered tool
    calls); each closing is recorded in the run's audit log (a `repair` event)."""
    on_end: Callable[[Any], None] | None = None
    """Called with the run once it has ended, on its loop (its `result`, its `exception`):
    the graph layer ends the run's trace there."""


__all__ = ["RunRequest", "StreamFormat"]
