"""What a node or tool asks about its own cancellation: the current scope and the calls on it.

Every function here works from sync and async code alike: the engine puts the task's scope in the
node's context (`tether.node_context`), which follows the task into worker threads.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

import anyio

from tether.cancel.scope import CancelScope, anyio_scope
from tether.errors import NodeCancelled
from tether.node_context import TaskScope
from tether.node_context import current as current_context
from tether.types import CancelReason

# Monotonic time at which the innermost sync shield was entered; None outside any shield.
_shield_entered: ContextVar[float | None] = ContextVar("tether_shield_entered", default=None)


def current_scope() -> CancelScope | None:
    """The scope of the task running this code, or None outside a run."""
    scope = _scope()
    return scope if isinstance(scope, CancelScope) else None


def _scope() -> TaskScope | None:
    ctx = current_context()
    return ctx.scope if ctx is not None else None


def _shield_holds(scope: TaskScope) -> bool:
    # A shield postpones what `cancelled()` reports, for at most the scope's shield grace.
    if _shield_entered.get() is None:
        return False
    grace = scope.shield_grace
    if grace is None or scope.cancelled_at is None:
        return scope.reason is not None
    return time.monotonic() < scope.cancelled_at + grace


def cancelled() -> bool:
    """True if the current run or task has been cancelled (or its deadline has passed).

    Cheap enough to call in a tight loop; sync code should call it (or `check_cancelled()`) at
    its own cancel points.
    """
    scope = _scope()
    if scope is None or not scope.cancelled():
        return False
    return not _shield_holds(scope)


def check_cancelled() -> None:
    """Raise `NodeCancelled` if the current run or task has been cancelled.

    Raises:
        NodeCancelled: carrying the cancel's reason.
    """
    scope = _scope()
    if scope is not None and scope.cancelled() and not _shield_holds(scope):
        raise NodeCancelled(scope.effective_reason())


def cancel_reason() -> CancelReason | None:
    """Why the current run is being cancelled, or None while it is not."""
    scope = _scope()
    return scope.effective_reason() if scope is not None else None


def deadline() -> float | None:
    """The current task's deadline as an absolute `time.monotonic()` value, or None."""
    scope = _scope()
    return scope.deadline if scope is not None else None


async def sleep(seconds: float) -> None:
    """Sleep, waking early with `NodeCancelled`/`CancelledError` if the run is cancelled.

    Cancellation:
        A cancel point: raises at once if the task is already cancelled, or as soon as a cancel
        arrives. Writes nothing; safe to retry.
    """
    check_cancelled()
    await asyncio.sleep(seconds)
    check_cancelled()


def sleep_sync(seconds: float) -> None:
    """Blocking sleep for sync nodes that wakes within microseconds of a cancel.

    Cancellation:
        A cancel point: raises `NodeCancelled` at once if the task is already cancelled, or
        as soon as a cancel or the deadline arrives.
    """
    scope = _scope()
    if scope is None:
        time.sleep(seconds)
        return
    check_cancelled()
    event = threading.Event()
    scope.add_waiter(event)
    try:
        until = time.monotonic() + seconds
        if scope.deadline is not None:
            until = min(until, scope.deadline)
        event.wait(max(until - time.monotonic(), 0.0))
    finally:
        scope.remove_waiter(event)
    check_cancelled()


def on_cancel(hook: Callable[[], Any] | Callable[[], Awaitable[Any]]) -> None:
    """Register a cleanup hook for the current task.

    The hook (sync or async) runs once if this task is cancelled while it runs, never if the
    task finishes first. Hooks run shielded, after the task stopped, within the run's cleanup
    grace (5 s for all of a run's hooks by default).
    """
    scope = _scope()
    if scope is None:
        raise RuntimeError("on_cancel() can only be called from inside a running node")
    scope.add_hook(hook)


def is_async_hook(hook: Callable[..., Any]) -> bool:
    """Whether a cleanup hook must be awaited."""
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


class shield:
    """A region a cancel waits for, for at most the node's grace.

    Inside it, `cancelled()` stays False and awaits are not interrupted; when the grace after a
    cancel runs out, the shield gives way and the cancel is delivered. Use it around a write that
    must not be torn in half.
    """

    __slots__ = ("_async", "_scope", "_token")

    def __init__(self) -> None:
        self._async: anyio.CancelScope | None = None
        self._scope: TaskScope | None = None
        self._token: Token[float | None] | None = None

    def __enter__(self) -> shield:
        self._scope = _scope()
        self._token = _shield_entered.set(time.monotonic())
        if _in_task():
            guard = anyio_scope(shield=True)
            guard.__enter__()
            self._async = guard
            if self._scope is not None:
                self._scope.push_shield(guard)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._token is not None:
            _shield_entered.reset(self._token)
        guard, self._async = self._async, None
        if guard is None:
            return False
        if self._scope is not None:
            self._scope.pop_shield(guard)
        return bool(guard.__exit__(exc_type, exc, tb))

    async def __aenter__(self) -> shield:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)


def _in_task() -> bool:
    try:
        return asyncio.current_task() is not None
    except RuntimeError:
        return False
