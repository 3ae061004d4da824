"""LangChain's batch calls on a compiled graph (`batch`, `abatch`, `batch_as_completed`,
`abatch_as_completed`): one run per input, as many at once as the first config's
`max_concurrency` allows (all, without one).

A LangGraph program calls them on its graph as on any LangChain runnable, with the same
arguments and answers. Where LangChain leaves work behind, tether does not: a batch returns or
raises only once every run of it has ended, and cancelling an async batch cancels each of its
runs (recorded, its final checkpoint written, as any cancelled run).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, Protocol

import anyio

Configs = Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None
"""One config for every input, or one per input (LangChain's `config` of a batch)."""


def configs_for(config: Configs, count: int) -> list[dict[str, Any] | None]:
    """One config per input: the one given for each, or the list given.

    Raises:
        ValueError: a list of configs whose length is not the number of inputs.
    """
    if config is None or isinstance(config, Mapping):
        return [None if config is None else dict(config)] * count
    given = list(config)
    if len(given) != count:
        raise ValueError(f"a batch of {count} inputs was given {len(given)} configs: give one "
                         "config for all of them, or one per input")
    return [None if one is None else dict(one) for one in given]


def _limit(configs: Sequence[Mapping[str, Any] | None], count: int) -> int:
    """How many runs of the batch go at once: the first config's `max_concurrency`, else all.

    Raises:
        ValueError: a `max_concurrency` that is not a positive integer.
    """
    first = configs[0] if configs else None
    limit = None if first is None else first.get("max_concurrency")
    if limit is None:
        return max(count, 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_concurrency must be a positive integer, not {limit!r}")
    return limit


class _Runnable(Protocol):
    def invoke(self, input: Any, config: dict[str, Any] | None = None,
               **kwargs: Any) -> Any: ...

    async def ainvoke(self, input: Any, config: dict[str, Any] | None = None,
                      **kwargs: Any) -> Any: ...


class GraphBatches:
    """The batch half of a compiled graph (a mixin of `CompiledStateGraph`)."""

    def batch(self: _Runnable, inputs: Sequence[Any], config: Configs = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """Run the graph on each input (each run as `invoke` would, on threads of its own);
        the outputs in the inputs' order.

        Args:
            return_exceptions: an input whose run raised gets its exception in the list;
                otherwise the first such exception (in the inputs' order) is raised, once
                every run has ended.

        Raises:
            ValueError: a list of configs of another length than the inputs.
        """
        configs = configs_for(config, len(inputs))
        if not inputs:
            return []
        if len(inputs) == 1:
            return [_outcome(lambda: self.invoke(inputs[0], configs[0], **kwargs),
                             return_exceptions)]
        with ThreadPoolExecutor(max_workers=_limit(configs, len(inputs)),
                                thread_name_prefix="tether-batch") as pool:
            futures = [pool.submit(self.invoke, one, conf, **kwargs)
                       for one, conf in zip(inputs, configs, strict=True)]
        return _gathered(futures, return_exceptions)

    def batch_as_completed(self: _Runnable, inputs: Sequence[Any], config: Configs = None, *,
                           return_exceptions: bool = False,
                           **kwargs: Any) -> Iterator[tuple[int, Any]]:
        """`batch`, answered as each run ends: `(index of its input, output)`.

        Raises:
            The exception of a run as it ends (unless `return_exceptions`: then it is the
            output); the runs still going finish before it reaches the caller.
        """
        configs = configs_for(config, len(inputs))
        if not inputs:
            return
        with ThreadPoolExecutor(max_workers=_limit(configs, len(inputs)),
                                thread_name_prefix="tether-batch") as pool:
            index = {pool.submit(self.invoke, one, conf, **kwargs): at
                     for at, (one, conf) in enumerate(zip(inputs, configs, strict=True))}
            for done in as_completed(index):
                error = done.exception()
                if error is not None and not return_exceptions:
                    raise error
                yield index[done], error if error is not None else done.result()

    async def abatch(self: _Runnable, inputs: Sequence[Any], config: Configs = None, *,
                     return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """Run the graph on each input (each run as `ainvoke` would, all on this loop); the
        outputs in the inputs' order. `return_exceptions` as in `batch`.

        Cancellation:
            Cancelling the caller cancels every run of the batch still going (each recorded
            as cancelled, its final checkpoint written) and re-raises once they have stopped.
        """
        configs = configs_for(config, len(inputs))
        limiter = anyio.CapacityLimiter(_limit(configs, len(inputs)))
        outcomes: list[Any] = [None] * len(inputs)

        async def run(at: int) -> None:
            async with limiter:
                try:
                    outcomes[at] = await self.ainvoke(inputs[at], configs[at], **kwargs)
                except Exception as exc:  # noqa: BLE001 - each run's failure is its outcome
                    outcomes[at] = _Failed(exc)

        async with anyio.create_task_group() as group:
            for at in range(len(inputs)):
                group.start_soon(run, at)
        return _unwrapped(outcomes, return_exceptions)

    async def abatch_as_completed(self: _Runnable, inputs: Sequence[Any],
                                  config: Configs = None, *, return_exceptions: bool = False,
                                  **kwargs: Any) -> AsyncIterator[tuple[int, Any]]:
        """`abatch`, answered as each run ends: `(index of its input, output)`.

        Raises:
            The exception of a run as it ends (unless `return_exceptions`).

        Cancellation:
            Leaving the loop early, cancelling the caller or a run's exception cancels the
            runs still going (each recorded, its final checkpoint written); the iterator ends
            once they have stopped.
        """
        configs = configs_for(config, len(inputs))
        limiter = asyncio.Semaphore(_limit(configs, len(inputs)))

        async def run(at: int) -> tuple[int, Any]:
            async with limiter:
                try:
                    return at, await self.ainvoke(inputs[at], configs[at], **kwargs)
                except Exception as exc:  # noqa: BLE001 - each run's failure is its outcome
                    return at, _Failed(exc)

        tasks = [asyncio.ensure_future(run(at)) for at in range(len(inputs))]
        try:
            for next_done in asyncio.as_completed(tasks):
                at, outcome = await next_done
                if isinstance(outcome, _Failed):
                    if not return_exceptions:
                        raise outcome.error
                    outcome = outcome.error
                yield at, outcome
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class _Failed:
    """A run's exception, kept apart from outputs (an output may be an exception object)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _outcome(call: Any, return_exceptions: bool) -> Any:
    try:
        return call()
    except Exception as exc:
        if return_exceptions:
            return exc
        raise


def _gathered(futures: Sequence[Future[Any]], return_exceptions: bool) -> list[Any]:
    """The futures' results in order (all have ended): an exception in its place, or the
    first one raised."""
    return _unwrapped([_Failed(error) if isinstance(error := future.exception(), Exception)
                       else future.result() for future in futures], return_exceptions)


def _unwrapped(outcomes: list[Any], return_exceptions: bool) -> list[Any]:
    for outcome in outcomes:
        if isinstance(outcome, _Failed) and not return_exceptions:
            raise outcome.error
    return [o.error if isinstance(o, _Failed) else o for o in outcomes]


__all__ = ["Configs", "GraphBatches", "configs_for"]
