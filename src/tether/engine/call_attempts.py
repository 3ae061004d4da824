"""A call's attempts: what running calls asks of its parent's executor, and a sync call run to
an outcome (its retries, its scope, the cache) in the calling thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextvars import Token
from typing import Any, Protocol

from tether import node_context
from tether.cancel.scope import CancelScope
from tether.constants import RETURN
from tether.engine import caching
from tether.engine.liveness import Liveness
from tether.engine.spec import GraphSpec
from tether.engine.stream import Emitter
from tether.engine.task import Task
from tether.engine.to_thread import ThreadPool
from tether.errors import GraphInterrupt
from tether.node_context import NodeContext
from tether.types import RetryPolicy


class CallHost(Protocol):
    """What calls ask of the graph run their parent task belongs to (the loop, `TaskHost`)."""

    keeps_writes: bool

    async def task_done(self, task: Task) -> None:
        """Store a finished call's result as a pending write.

        Cancellation:
            One store transaction; cancelled before it commits, the call runs again on resume.
        """

    async def run_graph(self, task: Task, spec: GraphSpec, graph_input: Any,
                        handler: Callable[[Any], Any], *, index: int | None = None) -> Any:
        """Run a graph `task`'s code invokes (the `index`-th), under it; its output.

        Cancellation:
            The graph's tasks are children of `task`'s scope: cancelling stops them.
        """


class Executor(Protocol):
    """What running calls asks of the executor of their parent task (implemented by
    `tether.engine.execute.Executor`, which imports this module)."""

    scope: CancelScope
    emitter: Emitter
    pool: ThreadPool
    grace: float
    cache: Any
    cache_policy: Any

    @property
    def host(self) -> CallHost:
        """The graph run the parent task belongs to."""

    def recall(self, call: Task) -> bool:
        """Give a call what an earlier attempt kept (True: its result; it does not run)."""

    def remember(self, call: Task) -> None:
        """A call finished: a retry of its parent finds its result."""

    def emit_call(self, call: Task) -> None:
        """The `updates` chunk of a finished call."""

    async def run_task(self, task: Task, *, alone: bool) -> None:
        """Run one task (a call) to its outcome.

        Cancellation:
            A cancel of the run stops the task with the node's ladder; its outcome says so.
        """

    def kwargs(self, task: Task) -> dict[str, Any]:
        """The keyword arguments the task's function asks for."""

    def enter(self, task: Task, scope: CancelScope,
              watch: Liveness | None = None) -> Token[NodeContext | None]:
        """Make `task`'s attempt the node context of the calling code."""


def run_here(executor: Executor, call: Task) -> None:
    """Run a sync call in the calling thread, with its own scope and retries, to an outcome
    (or serve it from the cache)."""
    cache = executor.cache
    if cache is not None and caching.recall_sync(cache, call, executor.cache_policy):
        return
    _attempts(executor, call)
    if cache is not None:
        caching.keep_sync(cache, call, executor.cache_policy)


def _attempts(executor: Executor, call: Task) -> None:
    parent_scope = call.parent.scope if call.parent is not None else executor.scope
    node = call.node
    attempt = 0
    while True:
        attempt += 1
        scope = CancelScope(parent_scope, name=node.name)
        call.scope = scope
        token = executor.enter(call, scope)
        try:
            value = node.func(call.input, **executor.kwargs(call)) if node.kwargs \
                else node.func(call.input)
            if call.site is not None and call.site.busy:
                call.site.settle_here()
        except GraphInterrupt as exc:
            call.outcome, call.interrupts = "interrupted", exc.interrupts
            return
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            return
        except Exception as exc:  # noqa: BLE001 - recorded on the call, maybe retried
            policy = _policy(node.retry, exc)
            if policy is None or attempt >= policy.max_attempts or scope.cancelled():
                call.outcome, call.error = "error", exc
                return
            done = threading.Event()
            scope.add_waiter(done)
            done.wait(policy.interval(attempt))
            scope.remove_waiter(done)
            continue
        finally:
            node_context.leave(token)
            scope.close()
        call.finished_at = finished = time.monotonic()
        cancelled_at = executor.scope.cancelled_at
        if cancelled_at is not None and finished >= cancelled_at:
            call.outcome = "cancelled"
        else:
            call.writes, call.outcome = [(RETURN, value)], "done"
        return


def _policy(policies: tuple[RetryPolicy, ...], exc: Exception) -> RetryPolicy | None:
    return next((p for p in policies if p.should_retry(exc)), None)


__all__ = ["CallHost", "Executor", "run_here"]
