"""The Functional API (`@entrypoint`, `@task`): what each library adds around one task call.

The unit is a **task**: one call of a `@task` function that does nothing, its future read. An
entrypoint calls `size` of them, one after the other (`seq`: the latency of a call) or all at
once and then reads every future (`fanout`: the throughput of calls); with `InMemorySaver`
every call's result is also kept as a pending write of the step, as a resume would need.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from bench.workload import Case, Env, both_modes

ORDER = 70
FAMILY = "functional"


def _func(env: Env) -> Any:
    return importlib.import_module(f"{env.lib.name}.func")


def _checkpointer(env: Env) -> Any:
    return env.checkpointer


def build_seq(env: Env) -> Case:
    """An entrypoint calling `size` no-op tasks one after the other (each future read at once)."""
    func = _func(env)
    if env.mode == "sync":

        @func.task
        def noop(i: int) -> int:
            return i

        @func.entrypoint(checkpointer=_checkpointer(env))
        def seq(n: int) -> int:
            total = 0
            for i in range(n):
                total += noop(i).result()
            return total
    else:

        @func.task
        async def noop(i: int) -> int:  # type: ignore[misc]
            return i

        @func.entrypoint(checkpointer=_checkpointer(env))
        async def seq(n: int) -> int:
            total = 0
            for i in range(n):
                total += await noop(i)
            return total

    return Case(seq, env.size, env.size)  # type: ignore[arg-type]


def build_fanout(env: Env) -> Case:
    """An entrypoint launching `size` no-op tasks at once, then reading every future."""
    func = _func(env)
    if env.mode == "sync":

        @func.task
        def noop(i: int) -> int:
            return i

        @func.entrypoint(checkpointer=_checkpointer(env))
        def fanout(n: int) -> int:
            futures = [noop(i) for i in range(n)]
            return sum(f.result() for f in futures)
    else:

        @func.task
        async def noop(i: int) -> int:  # type: ignore[misc]
            return i

        @func.entrypoint(checkpointer=_checkpointer(env))
        async def fanout(n: int) -> int:
            return sum(await asyncio.gather(*[noop(i) for i in range(n)]))

    return Case(fanout, env.size, env.size)  # type: ignore[arg-type]


WORKLOADS = [
    *both_modes(name="task-seq", family=FAMILY, build=build_seq, size=200, quick_size=10,
                unit="task"),
    *both_modes(name="task-fanout", family=FAMILY, build=build_fanout, size=200,
                quick_size=10, unit="task"),
    *both_modes(name="task-seq-memory", family=FAMILY, build=build_seq, size=200,
                quick_size=10, saver="memory", unit="task"),
]
