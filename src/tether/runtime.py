"""LangGraph's `Runtime` object: what a node may take as its `runtime` parameter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tether import node_context
from tether.node_context import Meter
from tether.types import StreamWriter, Usage

ContextT = TypeVar("ContextT")


def _running_node_writer(chunk: Any) -> None:
    """Writes a `custom` chunk for the node running in this context (dropped outside one): one
    `Runtime` serves every node of a run, so its writer finds the node when called."""
    ctx = node_context.current()
    if ctx is not None:
        ctx.writer(chunk)


@dataclass(frozen=True, slots=True)
class Runtime(Generic[ContextT]):
    """Run-scoped things a node can use, passed as `runtime` or fetched with `get_runtime()`.

    Attributes:
        context: the run's static context (`invoke(..., context=...)`).
        store: a long-term store, when the graph was compiled with one.
        stream_writer: writes `custom` stream chunks.
        previous: unused by StateGraph (kept for LangGraph's functional API signature).
        run_id: the id of the run the node belongs to.
        thread_id: the run's thread, if any.
    """

    context: ContextT = field(default=None)  # type: ignore[assignment]
    store: Any = None
    stream_writer: StreamWriter = _running_node_writer
    previous: Any = None
    run_id: str | None = None
    thread_id: str | None = None

    def heartbeat(self) -> None:
        """Tell the run this node is alive (resets its idle timer, where one is set)."""
        touch()


def get_runtime(context_schema: type[ContextT] | None = None) -> Runtime[ContextT]:
    """The running node's `Runtime` (LangGraph's `get_runtime`)."""
    del context_schema  # only narrows the static type
    ctx = node_context.current()
    runtime = ctx.runtime if ctx is not None else None
    if isinstance(runtime, Runtime):
        return runtime
    raise RuntimeError("get_runtime() called outside of a running node")


def charge(*, tokens: int = 0, cost: float = 0.0, tool_calls: int = 0) -> None:
    """Report usage from inside a node or tool (sync or async code).

    Counts toward the run's budget; crossing a limit cancels the run with kind `budget`.
    Also a sign of life for the node's idle timeout. Outside a run it does nothing.
    """
    ctx = node_context.current()
    if ctx is None:
        return
    if ctx.alive is not None:
        ctx.alive()
    if ctx.meter is not None:
        ctx.meter.charge(tokens, cost, tool_calls)


def usage() -> Usage:
    """What the current run has spent so far (zeros outside a run)."""
    ctx = node_context.current()
    meter = ctx.meter if ctx is not None else None
    return meter.usage() if meter is not None else Usage()


def heartbeat() -> None:
    """Tell the run the current node is alive: resets the node's idle timeout."""
    touch()


def touch() -> None:
    """Record a sign of life of the running node (engine use: stream writes count too)."""
    ctx = node_context.current()
    if ctx is not None and ctx.alive is not None:
        ctx.alive()


__all__ = ["Meter", "Runtime", "charge", "get_runtime", "heartbeat", "touch", "usage"]
