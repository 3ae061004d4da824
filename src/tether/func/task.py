"""`@task`: a function whose calls, made while a run is going, are the run's own units of work
(`tether.engine.calls`): started at once, each returning a future, kept when finished."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from tether.cache.base import BaseCache
from tether.cancel.deadlines import coerce_timeout
from tether.engine.caching import CACHE_NS_WRITES, identifier
from tether.engine.calls import TaskFuture, call_spec, launch
from tether.engine.spec import NODE_KWARGS
from tether.graph.nodes import inspect_callable
from tether.types import CachePolicy, RetryPolicy, TimeoutPolicy

P = ParamSpec("P")
T = TypeVar("T")


class TaskFunction(Generic[P, T]):
    """A function decorated with `@task`.

    Calling it inside a run (an entrypoint, another task, a node) launches a call and returns
    its future; it runs on the run's runtime: its own cancel scope, its retry and cache
    policies, its result kept with the run's step until the step completes.
    """

    def __init__(self, func: Callable[P, Awaitable[T]] | Callable[P, T], *,
                 retry_policy: Sequence[RetryPolicy], cache_policy: CachePolicy | None,
                 timeout: float | timedelta | TimeoutPolicy | None,
                 name: str | None) -> None:
        label: str = name or getattr(func, "__name__", None) or type(func).__name__
        run_limit, idle_limit = ((timeout.run_timeout, timeout.idle_timeout)
                                 if isinstance(timeout, TimeoutPolicy) else (timeout, None))
        info = inspect_callable(func)
        self.func = func
        self.name = label
        self.retry_policy = tuple(retry_policy)
        self.cache_policy = cache_policy
        self.spec = call_spec(
            label, func, is_async=info.is_async, kwargs=_engine_kwargs(func),
            retry=self.retry_policy, cache=cache_policy, cache_ns=identifier(func),
            timeout=coerce_timeout(run_limit, f"timeout of task '{label}'"),
            idle_timeout=coerce_timeout(idle_limit, f"idle timeout of task '{label}'"),
        )
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> TaskFuture:
        """Launch the task; its future.

        Raises:
            RuntimeError: called outside a running node, or an async task called from sync
                code.
        """
        return launch(self.spec, args, kwargs)

    def clear_cache(self, cache: BaseCache[Any]) -> None:
        """Forget this task's cached results in `cache`."""
        if self.cache_policy is not None:
            cache.clear([cache_namespace(self.spec.cache_ns)])

    async def aclear_cache(self, cache: BaseCache[Any]) -> None:
        """Async `clear_cache`.

        Cancellation:
            As the cache's `aclear`: safe to retry.
        """
        if self.cache_policy is not None:
            await cache.aclear([cache_namespace(self.spec.cache_ns)])


def _engine_kwargs(func: Any) -> frozenset[str]:
    """The engine objects a task takes by keyword that its caller does not pass: those of its
    parameters named `config`, `writer`, `runtime` or `store` that have a default or are
    keyword-only (LangGraph fills them in)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(p.name for p in params if p.name in NODE_KWARGS and (
        p.kind == p.KEYWORD_ONLY or p.default is not p.empty))


def cache_namespace(ns: str) -> tuple[str, ...]:
    """The cache namespace of a task's results."""
    return (CACHE_NS_WRITES, ns)


@overload
def task(__func_or_none__: None = None, *, name: str | None = None,
         retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
         cache_policy: CachePolicy | None = None,
         timeout: float | timedelta | TimeoutPolicy | None = None,
         ) -> Callable[[Callable[P, Any]], TaskFunction[P, Any]]: ...


@overload
def task(__func_or_none__: Callable[P, Awaitable[T]]) -> TaskFunction[P, T]: ...


@overload
def task(__func_or_none__: Callable[P, T]) -> TaskFunction[P, T]: ...


def task(__func_or_none__: Any = None, *, name: str | None = None,
         retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
         cache_policy: CachePolicy | None = None,
         timeout: float | timedelta | TimeoutPolicy | None = None, **kwargs: Any) -> Any:
    """Make a function a task (LangGraph's `@task`), with or without arguments.

    Args:
        name: the task's name in streams and ids (default: the function's name).
        retry_policy: retried like a node, first matching policy wins (`retry` is an alias).
        cache_policy: reuse results for equal arguments (needs a cache on the entrypoint or
            `compile(cache=...)`).
        timeout: seconds one attempt may take, or a `TimeoutPolicy`.
    """
    if "retry" in kwargs and retry_policy is None:
        retry_policy = kwargs.pop("retry")
    if kwargs:
        raise TypeError(f"task() got unexpected arguments {sorted(kwargs)}")
    policies: Sequence[RetryPolicy] = (
        () if retry_policy is None
        else (retry_policy,) if isinstance(retry_policy, RetryPolicy) else retry_policy
    )

    def decorate(func: Callable[..., Any]) -> TaskFunction[Any, Any]:
        return TaskFunction(func, retry_policy=policies, cache_policy=cache_policy,
                            timeout=timeout, name=name)

    if __func_or_none__ is not None:
        return decorate(__func_or_none__)
    return decorate


__all__ = ["TaskFunction", "cache_namespace", "task"]
