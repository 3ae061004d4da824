"""LangGraph's `Runtime` object: what a node may take as its `runtime` parameter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tether.config import current_node_context
from tether.types import StreamWriter

ContextT = TypeVar("ContextT")


def _no_op_writer(_chunk: Any) -> None:
    return None


def _no_op() -> None:
    return None


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
    stream_writer: StreamWriter = _no_op_writer
    previous: Any = None
    run_id: str | None = None
    thread_id: str | None = None
    heartbeat_hook: Callable[[], None] = _no_op

    def heartbeat(self) -> None:
        """Tell the run this node is alive (resets its idle timer, where one is set)."""
        self.heartbeat_hook()


def get_runtime(context_schema: type[ContextT] | None = None) -> Runtime[ContextT]:
    """The running node's `Runtime` (LangGraph's `get_runtime`)."""
    del context_schema  # only narrows the static type
    ctx = current_node_context()
    if ctx is None or ctx.runtime is None:
        raise RuntimeError("get_runtime() called outside of a running node")
    runtime: Runtime[ContextT] = ctx.runtime
    return runtime


__all__ = ["Runtime", "get_runtime"]
