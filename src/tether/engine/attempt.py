"""The pieces of one attempt of a task that do not await: its cancel scope and idle watchdog,
its end, what a cancelled attempt amounts to, and the retry policy of a failed one."""

from __future__ import annotations

import asyncio
import time
from contextvars import Token

from tether import node_context
from tether.cancel.deadlines import deadline_after
from tether.cancel.scope import CancelScope
from tether.engine.liveness import Liveness
from tether.engine.observe import AttemptWatch
from tether.engine.task import Task
from tether.errors import NodeError, NodeTimeoutError
from tether.node_context import NodeContext
from tether.types import RetryPolicy


def open_scope(task: Task, run_scope: CancelScope, started: float) -> CancelScope:
    """The scope of an attempt of `task` starting at `started` (its node's timeout counted from
    then), under its parent call's scope or `run_scope`; the task points to it."""
    node = task.node
    parent = task.parent.scope if task.parent is not None else None
    scope = CancelScope(parent or run_scope, name=node.name,
                        deadline=None if node.timeout is None
                        else deadline_after(node.timeout, started))
    task.scope = scope
    task.partials = None
    return scope


def watchdog(task: Task, scope: CancelScope, run_idle: float | None) -> Liveness | None:
    """The idle watchdog of an attempt under `scope`, where its node or the run (`run_idle`)
    sets an idle limit; None where none does."""
    idle = task.node.idle_timeout or run_idle
    return Liveness(scope, idle) if idle is not None else None


def end(task: Task, watch: Liveness | None, seen: AttemptWatch | None,
          token: Token[NodeContext | None]) -> None:
    """End an attempt: its watchdog, its watch (what it left unfinished goes to the task, after
    what its subgraphs left) and its node context."""
    if watch is not None:
        watch.stop()
    cut = seen.close() if seen is not None else None
    if cut:
        task.partials = [*(task.partials or ()), *cut]
    node_context.leave(token)


def refuse_own_cancel(task: Task) -> None:
    """A `CancelledError` came out of an attempt of `task` that tether did not cancel: the node
    raised it itself, which fails it (`NodeError`). Returns when the calling asyncio task is
    being cancelled: a cancel from outside, which propagates."""
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        return
    raise NodeError(task.node.name, "raised CancelledError without being cancelled "
                                    "(raise another exception to fail the node)") from None


def cancelled_error(task: Task, scope: CancelScope, run_scope: CancelScope, started: float,
                    run_idle: float | None) -> BaseException | None:
    """What an attempt of `task` under `scope`, started at `started`, that a cancel stopped
    amounts to: a `NodeTimeoutError` for its own timeout (or idle limit), which may be retried;
    else a cancel (by the run, or a failed sibling): the task is `cancelled`, and None (no
    exception is made for it: nobody raises it, and every cancelled run's task comes here).
    The hooks its node registered go to the task."""
    hooks = scope.take_hooks()
    if hooks:  # most attempts registered none: no list is rebuilt for them
        task.hooks = [*task.hooks, *((task.name, hook) for hook in hooks)]
    if run_scope.cancel_called:
        task.outcome = "cancelled"
        return None
    reason = scope.reason
    if reason is not None and reason.kind == "timeout":
        elapsed = time.monotonic() - started
        if reason.requested_by == "idle":
            limit = task.node.idle_timeout or run_idle or 0.0
            return NodeTimeoutError(task.name, limit, elapsed, kind="idle")
        if task.node.timeout is not None:
            return NodeTimeoutError(task.name, task.node.timeout, elapsed)
    task.outcome = "cancelled"
    return None


def retry_policy(policies: tuple[RetryPolicy, ...], exc: BaseException) -> RetryPolicy | None:
    """The first of `policies` that retries `exc` (None: the attempt's error is final)."""
    if not isinstance(exc, Exception):
        return None
    for policy in policies:
        if policy.should_retry(exc):
            return policy
    return None


__all__ = ["cancelled_error", "end", "open_scope", "refuse_own_cancel", "retry_policy",
           "watchdog"]
