"""What the code of a running node can reach, in one context variable: its cancel scope, its
config and stream writer, the run's meter and `Runtime`, the handler of `interrupt()`.

The engine installs one `NodeContext` per attempt of a task (`enter`/`leave`); every call a
node makes — `tether.cancelled()`, `get_config()`, `tether.charge()`, `interrupt()` — reads it
back with `current()`. A worker thread running a sync node sees it through the context it copies.
This module sits in the bottom layer so that `interrupt` (a `tether.types` name) can reach it; the
objects it carries come from the layers above and are typed by the protocols below.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tether.errors import GraphInterrupt, mark_invalid_resume

if TYPE_CHECKING:
    import anyio

    from tether.types import CancelReason, Usage

StreamWriter = Callable[[Any], None]
"""Writes one `custom` stream chunk."""


class TaskScope(Protocol):
    """The cancel scope of the running attempt, as the calls of `tether.cancel` use it
    (implemented by `tether.cancel.CancelScope`)."""

    reason: CancelReason | None
    cancelled_at: float | None
    deadline: float | None

    @property
    def shield_grace(self) -> float | None:
        """How long a shield may hold a cancel off."""

    def cancelled(self) -> bool:
        """Cancelled, or past the deadline."""

    def effective_reason(self) -> CancelReason | None:
        """The reason a node should see."""

    def cancel(self, reason: CancelReason) -> bool:
        """Cancel the scope and its descendants."""

    def add_hook(self, hook: Callable[[], Any]) -> None:
        """Register a cleanup hook."""

    def add_waiter(self, event: threading.Event) -> None:
        """Set `event` on a cancel."""

    def remove_waiter(self, event: threading.Event) -> None:
        """Undo `add_waiter`."""

    def push_shield(self, shield: anyio.CancelScope) -> None:
        """Track an async shield entered under the scope."""

    def pop_shield(self, shield: anyio.CancelScope) -> None:
        """Undo `push_shield`."""


class Meter(Protocol):
    """What a run counts on behalf of its nodes (implemented by the runs layer's policies)."""

    def charge(self, tokens: int, cost: float, tool_calls: int) -> None:
        """Add what a node reports having spent; may cancel the run past a budget."""

    def usage(self) -> Usage:
        """What the run has spent so far."""


class AttemptHost(Protocol):
    """What builds an attempt's config, stream writer and runtime, and answers its `interrupt()`
    calls, on demand, so that an attempt that never asks pays for none of them (implemented by
    the engine's executor)."""

    @property
    def writer(self) -> StreamWriter:
        """The run's `custom` stream writer."""

    @property
    def runtime(self) -> object:
        """The run's `tether.runtime.Runtime`."""

    def node_config(self, task: Any) -> dict[str, Any]:
        """The config dict `task`'s node sees."""

    def node_interrupt(self, task: Any, value: Any) -> Any:
        """`interrupt(value)` inside `task`: the resume value, or a pause."""


def _discard(_chunk: Any) -> None:
    return None


@dataclass(slots=True)
class NodeContext:
    """Everything the code of one attempt of a task can reach.

    Attributes:
        node: the node's name.
        step: the superstep of the task.
        run_id: the run the task belongs to.
        scope: the attempt's cancel scope.
        given_writer: the `custom` stream writer (safe from worker threads); None: `host`'s
            (`writer` reads either).
        make_config: builds the task's config dict on first use (most nodes never ask); None
            where there is no config to give (a process-isolated node's child process).
        given_runtime: the run's `tether.runtime.Runtime`; None: `host`'s (`runtime` reads
            either).
        meter: counts usage toward the run's budgets (None: nothing counts).
        interrupt: answers `interrupt(value)`: the resume value, or a pause.
        alive: a sign of life for the attempt's idle watchdog.
        calls: the engine's launcher of the units this attempt starts from its code (a
            `@task`, a tool call, a graph it invokes); see `tether.engine.calls`.
        task: the engine's task of this attempt (what `calls` launches for).
        host: builds the config, the writer and the runtime, and answers `interrupt()` for
            `task`, for what is not given here.
    """

    node: str
    step: int
    run_id: str | None
    scope: TaskScope | None
    given_writer: StreamWriter | None = None
    make_config: Callable[[], dict[str, Any]] | None = None
    given_runtime: object = None
    meter: Meter | None = None
    interrupt: Callable[[Any], Any] | None = None
    alive: Callable[[], None] | None = None
    calls: Any = None
    task: Any = None
    host: AttemptHost | None = None
    _config: dict[str, Any] | None = None

    @property
    def writer(self) -> StreamWriter:
        """The `custom` stream writer (one that drops its chunks where there is none)."""
        if self.given_writer is not None:
            return self.given_writer
        return self.host.writer if self.host is not None else _discard

    @property
    def runtime(self) -> object:
        """The run's `tether.runtime.Runtime` (None where there is none)."""
        if self.given_runtime is not None:
            return self.given_runtime
        return self.host.runtime if self.host is not None else None

    @property
    def config(self) -> dict[str, Any]:
        """The config the task sees (the run's, plus LangGraph's per-task metadata).

        Raises:
            RuntimeError: this context has no config to give.
        """
        if self._config is None:
            if self.make_config is not None:
                self._config = self.make_config()
            elif self.host is not None:
                self._config = self.host.node_config(self.task)
            else:
                raise RuntimeError("get_config() called outside of a running node")
        return self._config

    def interrupt_handler(self) -> Callable[[Any], Any] | None:
        """What answers `interrupt(value)` in this attempt; None where nothing can."""
        if self.interrupt is not None:
            return self.interrupt
        host = self.host
        if host is None:
            return None
        task = self.task
        return lambda value: host.node_interrupt(task, value)


_current: ContextVar[NodeContext | None] = ContextVar("tether_node_context", default=None)

current: Callable[[], NodeContext | None] = _current.get
"""The context of the running node, or None outside one (the variable's own `get`: `cancelled()`
calls it in tight loops)."""


def enter(ctx: NodeContext) -> Token[NodeContext | None]:
    """Make `ctx` the running node's context (engine use); returns the token for `leave`."""
    return _current.set(ctx)


def leave(token: Token[NodeContext | None]) -> None:
    """Undo `enter`."""
    _current.reset(token)


def interrupt(value: Any, *, response_schema: dict[str, Any] | type | None = None) -> Any:
    """Pause the run from inside a node and surface `value` to the caller.

    The first call raises `GraphInterrupt`; when the run is resumed with `Command(resume=v)`, the
    node runs again from its start and this call returns `v`. Several calls in one node are
    matched to resume values in order. Needs a checkpointer.

    Args:
        response_schema: what the answer must be. A JSON Schema (a dict) is shown with the
            question (`Interrupt.response_schema`) and not checked; a type (a pydantic model,
            a TypedDict, a dataclass...) is shown as its JSON Schema, and the answer is
            validated (and converted) by pydantic, which this needs.

    Raises:
        pydantic.ValidationError: the answer does not match `response_schema` (a type).
            `tether.errors.is_invalid_resume` tells it apart: the answer is not kept, so the
            question can be answered again.
    """
    ctx = _current.get()
    handler = ctx.interrupt_handler() if ctx is not None else None
    if handler is None:
        raise RuntimeError("interrupt() can only be called from inside a running node")
    adapter = None
    shown = response_schema
    if response_schema is not None and not isinstance(response_schema, dict):
        adapter = _type_adapter(response_schema)
        shown = adapter.json_schema()
    try:
        answer = handler(value)
    except GraphInterrupt as paused:
        if shown is None:
            raise
        raise GraphInterrupt(tuple(dataclasses.replace(asked, response_schema=shown)
                                   for asked in paused.interrupts)) from None
    if adapter is None:
        return answer
    try:
        return adapter.validate_python(answer)
    except Exception as refused:
        mark_invalid_resume(refused)
        raise


def _type_adapter(kind: Any) -> Any:
    """pydantic's `TypeAdapter` of a response schema that is a type."""
    try:
        import pydantic
    except ImportError:
        raise ImportError("interrupt(response_schema=<a type>) validates answers with pydantic, "
                          "which is not installed: pip install pydantic (or give a JSON Schema "
                          "dict, which is shown but not checked)") from None
    return pydantic.TypeAdapter(kind)


__all__ = ["Meter", "NodeContext", "StreamWriter", "TaskScope", "current", "enter", "interrupt",
           "leave"]
