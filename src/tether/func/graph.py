"""The graph an `@entrypoint` function becomes: one node, triggered by the input, whose return
value is the whole state (LangGraph's functional `Pregel`), run by tether's runtime like any
compiled graph (cancel, resume, budgets, history)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from tether.cancel.deadlines import coerce_timeout
from tether.channels.base import BaseChannel
from tether.channels.ephemeral_value import EphemeralValue
from tether.channels.last_value import LastValue
from tether.constants import END, PREVIOUS, START
from tether.engine.caching import identifier
from tether.engine.spec import GraphSpec, NodeSpec, Write
from tether.graph.nodes import NodeDef, inspect_callable
from tether.types import RetryPolicy, TimeoutPolicy

Pluck = Callable[[Any], Any]


class EntrypointBuilder:
    """What an entrypoint's compiled graph is built from (its `builder`).

    Args:
        func: the entrypoint function.
        retry: its retry policies.
        timeout: seconds per attempt, or a `TimeoutPolicy`.
        context_schema: the type of `invoke(..., context=...)`.
        value, save: what the caller gets, and what `previous` gets, from a return value.
        cache_policy: caches the entrypoint's result by its input (and is the policy of its
            tasks that have none), as LangGraph's.
    """

    def __init__(self, func: Callable[..., Any], *, retry: tuple[RetryPolicy, ...],
                 timeout: float | TimeoutPolicy | Any, context_schema: type[Any] | None,
                 value: Pluck, save: Pluck, cache_policy: Any = None) -> None:
        self.func = func
        self.name: str = getattr(func, "__name__", None) or type(func).__name__
        self.info = inspect_callable(func)
        self.wants_previous = "previous" in inspect.signature(func).parameters
        self.retry = retry
        run_limit, idle_limit = ((timeout.run_timeout, timeout.idle_timeout)
                                 if isinstance(timeout, TimeoutPolicy) else (timeout, None))
        self.timeout = coerce_timeout(run_limit, f"timeout of entrypoint '{self.name}'")
        self.idle_timeout = coerce_timeout(idle_limit, f"idle timeout of '{self.name}'")
        self.context_schema = context_schema
        self.value, self.save = value, save
        self.cache_policy = cache_policy
        # What drawing (`get_graph`) reads of a builder.
        self.nodes = {self.name: NodeDef(self.name, self.info)}
        self.edges = [(START, self.name)]
        self.waiting_edges: list[tuple[tuple[str, ...], str]] = []
        self.branches: dict[str, dict[str, Any]] = {}

    def compile_spec(self, interrupt_before: tuple[str, ...], interrupt_after: tuple[str, ...],
                     name: str, *, strict: bool = False) -> GraphSpec:
        """The one-node graph the engine runs.

        Its channels: the input (`__start__`, for one step), the return value (`__end__`, the
        state) and what the next run on the thread gets as `previous` (`__previous__`).
        """
        del strict  # nothing to check: the graph is always the same shape
        node = NodeSpec(
            name=self.name, func=self._node_func(), is_async=self.info.is_async,
            kwargs=self.info.kwargs, reader=_read_input, updates=self._writes,
            retry=self.retry, timeout=self.timeout, idle_timeout=self.idle_timeout,
            # A sync entrypoint waits for its tasks on a thread of its own, so that tasks run
            # side by side on others.
            isolation=None if self.info.is_async else "thread",
            shows=_returned, cache=self.cache_policy,
            cache_ns=(identifier(self.func), self.name),
        )
        channels: dict[str, Callable[[], BaseChannel]] = {
            START: lambda: EphemeralValue(START),
            END: lambda: LastValue(END),
            PREVIOUS: lambda: LastValue(PREVIOUS),
        }
        return GraphSpec(
            name=name, nodes={self.name: node}, channels=channels,
            state_keys=(START, END, PREVIOUS), output_keys=(END,), input_keys=(START,),
            input_writes=_input_writes, start=None, triggers={START: (self.name,)},
            output=_returned_value, values=_returned_value,
            interrupt_before=frozenset(interrupt_before),
            interrupt_after=frozenset(interrupt_after), order={self.name: 0}, root=END,
        )

    def _node_func(self) -> Callable[..., Any]:
        func, wants_previous = self.func, self.wants_previous
        if self.info.is_async:
            async def arun(given: tuple[Any, Any], **engine: Any) -> Any:
                value, previous = given
                if wants_previous:
                    engine["previous"] = previous
                return await func(value, **engine)

            return arun

        def run(given: tuple[Any, Any], **engine: Any) -> Any:
            value, previous = given
            if wants_previous:
                engine["previous"] = previous
            return func(value, **engine)

        return run

    def _writes(self, returned: Any) -> list[Write]:
        return [(END, self.value(returned)), (PREVIOUS, self.save(returned))]


def _read_input(values: dict[str, Any]) -> tuple[Any, Any]:
    return values.get(START), values.get(PREVIOUS)


def _input_writes(value: Any) -> list[Write]:
    return [(START, value)]


def _returned_value(values: dict[str, Any]) -> Any:
    return values.get(END)


def _returned(writes: list[Write]) -> Any:
    return next((value for channel, value in writes if channel == END), None)


__all__ = ["EntrypointBuilder"]
