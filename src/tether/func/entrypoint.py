"""`@entrypoint`: a function turned into a one-node graph whose state is its return value
(LangGraph's `entrypoint`), run by tether like any compiled graph."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from tether.func.graph import EntrypointBuilder
from tether.graph.compiled import CompiledStateGraph
from tether.types import CachePolicy, RetryPolicy, TimeoutPolicy

ContextT = TypeVar("ContextT")
R = TypeVar("R")
S = TypeVar("S")


class entrypoint(Generic[ContextT]):
    """Turn a function into a workflow (LangGraph's `@entrypoint(...)`).

    The function takes one input (use a dict for several) and may ask for `previous` (what
    the last run on the thread saved), `config`, `runtime`, `writer` and `store` by keyword.
    It may call `@task`s and `interrupt()`.

    Args:
        checkpointer: keeps each thread's state, `previous` and finished tasks.
        store: the long-term store its nodes reach (`runtime.store`, `get_store()`).
        cache: where `cache_policy` results live.
        context_schema: the type of `invoke(..., context=...)`.
        cache_policy: cache the entrypoint's result by its input.
        retry_policy: retry the entrypoint function itself.
        timeout: seconds one attempt of the entrypoint may take, or a `TimeoutPolicy`.
    """

    def __init__(self, checkpointer: Any = None, store: Any = None, cache: Any = None,  # noqa: PLR0917 - LangGraph's signature
                 context_schema: type[ContextT] | None = None,
                 cache_policy: CachePolicy | None = None,
                 retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
                 timeout: float | timedelta | TimeoutPolicy | None = None,
                 **kwargs: Any) -> None:
        if "config_schema" in kwargs and context_schema is None:
            context_schema = kwargs.pop("config_schema")
        if "retry" in kwargs and retry_policy is None:
            retry_policy = kwargs.pop("retry")
        if kwargs:
            raise TypeError(f"entrypoint() got unexpected arguments {sorted(kwargs)}")
        self.checkpointer = checkpointer
        self.store = store
        self.cache = cache
        self.context_schema = context_schema
        self.cache_policy = cache_policy
        self.retry_policy: tuple[RetryPolicy, ...] = (
            () if retry_policy is None
            else (retry_policy,) if isinstance(retry_policy, RetryPolicy) else tuple(retry_policy)
        )
        self.timeout = timeout

    @dataclass(frozen=True, slots=True)
    class final(Generic[R, S]):
        """Return `value` to the caller and save `save` for the thread's next run
        (`previous`)."""

        value: R
        save: S

    def __call__(self, func: Callable[..., Any]) -> CompiledStateGraph:
        """The workflow graph of `func`: a compiled graph like any other (`invoke`, `stream`,
        `start`, `cancel`, `resume`, `get_state`...), whose state is what `func` returns.

        Raises:
            NotImplementedError: `func` is a generator.
            ValueError: `func` takes no parameter.
        """
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise NotImplementedError("Generators are not supported in the Functional API.")
        params = list(inspect.signature(func).parameters)
        if not params:
            raise ValueError("Entrypoint function must have at least one parameter")
        builder = EntrypointBuilder(func, retry=self.retry_policy, timeout=self.timeout,
                                    context_schema=self.context_schema, value=pluck_return,
                                    save=pluck_save, cache_policy=self.cache_policy)
        return CompiledStateGraph(builder, checkpointer=self.checkpointer, store=self.store,
                                  interrupt_before=(), interrupt_after=(), name="LangGraph",
                                  cache=self.cache, cache_policy=self.cache_policy)


def pluck_return(value: Any) -> Any:
    """What the caller gets from a return value (`final.value`, or the value itself)."""
    return value.value if isinstance(value, entrypoint.final) else value


def pluck_save(value: Any) -> Any:
    """What `previous` will be on the thread's next run (`final.save`, or the value)."""
    return value.save if isinstance(value, entrypoint.final) else value


__all__ = ["entrypoint", "pluck_return", "pluck_save"]
