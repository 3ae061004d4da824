"""How a loop run is set up (`LoopOptions`), and what it asks of the run that drives it
(`RunHost`, implemented by `tether.runs`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tether.cancel.scope import CancelScope
from tether.checkpoint.base import CheckpointStore
from tether.config import RunConfig
from tether.engine.closing import Closer
from tether.engine.hooks import StepHooks
from tether.engine.observe import TaskObserver
from tether.engine.stream import Emitter
from tether.engine.task import StopMode, Task
from tether.engine.to_thread import ThreadPool
from tether.node_context import Meter
from tether.store.base import BaseStore
from tether.types import CancelReason


class RunHost(Protocol):
    """The run a loop belongs to, as the loop sees it."""

    @property
    def hooks(self) -> StepHooks | None:
        """The run's policies, asked at every step (None: no policies)."""

    @property
    def meter(self) -> Meter | None:
        """Counts what the nodes report (`tether.charge()`)."""

    async def stop(self, reason: CancelReason) -> None:
        """Stop the run for `reason` through its cancel path: the request made durable, then
        the run's scope cancelled. Does nothing once the run is being cancelled.

        Cancellation:
            The durable write is not torn by a cancel; safe to repeat.
        """

    def node_stopped(self, task: Task, how: StopMode) -> None:
        """A node stopped after the run's cancel, `how` (the `terminate_node` phase)."""

    def consumer_waiting(self) -> bool:
        """True when someone is blocked reading the run's stream (the loop then yields to them
        after each step)."""


@dataclass(slots=True)
class LoopOptions:
    """How one loop run is set up (the runs layer fills this in; a subgraph's loop gets its
    parent's, with its own namespace and scope).

    Attributes:
        host: the run driving the loop.
        store: where checkpoints go (None: nowhere; then `thread_id` is None too).
        ns: the checkpoint namespace ("" for the root graph).
        inline_sync: a sync node alone in its step may run on the loop's thread.
        context: the run's static context (`Runtime.context`).
        long_term_store: the run's long-term store (`Runtime.store`); a subgraph's loop uses
            its parent's, as in LangGraph.
        interrupt_before, interrupt_after: pauses asked for by the call (None: the graph's).
        parent_interrupt: for a subgraph, the parent task's `interrupt()` handler.
        nested: the loop of a subgraph: its recursion limit fails its parent task instead of
            cancelling the run.
        subgraphs: stream the subgraphs' chunks too.
        cache: where nodes and calls with a `CachePolicy` keep their results (None: nowhere).
        cache_policy: the policy of calls that have none (an entrypoint's).
        observer: watches each attempt of the tasks (chat-model tokens, partial answers); a
            subgraph's loop has its parent's. None: nothing is watched.
        closer: closes a thread a stopped run left open before a new input is applied (the
            root loop only; None: never).
    """

    config: RunConfig
    scope: CancelScope
    emitter: Emitter
    pool: ThreadPool
    host: RunHost
    store: CheckpointStore | None = None
    thread_id: str | None = None
    ns: str = ""
    run_id: str | None = None
    inline_sync: bool = False
    context: Any = None
    long_term_store: BaseStore | None = None
    interrupt_before: frozenset[str] | None = None
    interrupt_after: frozenset[str] | None = None
    parent_interrupt: Callable[[Any], Any] | None = None
    nested: bool = False
    subgraphs: bool = False
    cache: Any = None
    cache_policy: Any = None
    observer: TaskObserver | None = None
    closer: Closer | None = None


__all__ = ["LoopOptions", "RunHost"]
