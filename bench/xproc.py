"""Cross-process cancels on Postgres workers (DESIGN.md §6), family `workers`.

- `cancel-xproc[+listen|+poll]` (p50, p99): a run looping through 5 ms async steps on a
  `tether worker` process is cancelled from the API process (`store.request_cancel`, as the
  server's `QueueLauncher` does); the time is from the durable request to the run's terminal
  status committed by the worker with its final checkpoint (`ended_at - requested_at`, one
  machine's clock). `+listen`: the worker hears `NOTIFY tether_cancel`; `+poll`: `--no-listen`,
  the cancel arrives by the lease renewal (every 0.5 s here) or the run's next step boundary.
  LangGraph has no cross-process cancel: its column is the closest it has, `task.cancel()` of
  an `ainvoke` on its `AsyncPostgresSaver` in the same process. Targets (tether's own, not
  §7's): p50 ≤ 10 ms and p99 ≤ 25 ms with NOTIFY, p50 ≤ 300 ms and p99 ≤ 525 ms by polling;
  the ✓ compares tether to them. `+bus`: the API process also sends the cancel on the Redis bus
  (as the server does), which the worker listens to. `cancel-reach`: from the durable request to
  the run's scope cancelled on the worker (its `propagate` event): the cross-process delivery
  alone, target p50 ≤ 2 ms (issue 15).
Postgres and Redis as in `bench.workers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.libs import Lib
from bench.timing import Contest, Measurement, Outcome, Plan, within
from bench.workers import REDIS, build_spin, conninfo, dsn, order, schema, settled, workers

ORDER = 39
FAMILY = "workers"


async def _tether_cancels(store: Any, count: int,
                          redis: str | None) -> list[tuple[float, float]]:
    """(request → run terminated, durable request → the run's scope cancelled on the worker)
    of each of `count` cancels."""
    from tether.bus import bus_for
    from tether.types import CancelReason, utcnow

    bus = bus_for(store, redis) if redis else None
    samples = []
    for _ in range(count):
        run_id = (await store.queue.aenqueue(order("spin", 10**9))).run_id
        while True:  # a few steps in, with a checkpoint to end on
            info = await store.aget_run(run_id)
            if info.status.value == "running" and info.checkpoint_id is not None:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)
        reason = CancelReason("user", "bench", "bench")
        await store.arequest_cancel(run_id, reason)
        durable = utcnow()
        if bus is not None:  # as the server's QueueLauncher does, after the durable request
            await bus.cancel(run_id, store.serde.dumps(reason))
        await settled(store, [run_id])
        ended = await store.aget_run(run_id)
        reached = next(e.at for e in await store.aevents(run_id) if e.phase == "propagate")
        samples.append(((ended.ended_at - ended.reason.requested_at).total_seconds(),
                        (reached - durable).total_seconds()))
    if bus is not None:
        await bus.aclose()
    return samples


async def _langgraph_cancels(lib: Lib, name: str, count: int) -> list[tuple[float, float]]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    samples = []
    async with AsyncPostgresSaver.from_conn_string(conninfo(name)) as saver:
        await saver.setup()
        graph = build_spin(lib).compile(checkpointer=saver)
        for _ in range(count):
            config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 10**9}
            task = asyncio.ensure_future(graph.ainvoke({"n": 0, "until": 10**9}, config))
            await asyncio.sleep(0.05)
            begun = time.perf_counter()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            took = time.perf_counter() - begun
            samples.append((took, took))
    return samples


@dataclass
class _Samples:
    outcomes: dict[str, Outcome]
    samples: dict[str, list[tuple[float, float]]]


_SERIES: dict[tuple[int, bool, str | None, tuple[str, ...]], _Samples] = {}


def _cancel_series(libs: Sequence[Lib], plan: Plan, listen: bool,
                   redis: str | None) -> _Samples:
    key = (id(plan), listen, redis, tuple(lib.name for lib in libs))
    if key in _SERIES:
        return _SERIES[key]
    count = 3 if plan.quick else 25
    contest = Contest(plan, [lib.name for lib in libs])
    samples: dict[str, list[tuple[float, float]]] = {lib.name: [] for lib in libs}
    by_name = {lib.name: lib for lib in libs}
    with contextlib.ExitStack() as stack:
        with contest.guard("tether"):
            from tether.checkpoint.postgres import PostgresSaver

            ours = stack.enter_context(schema("xproc"))
            stack.enter_context(workers(1, ours, listen=listen, redis=redis))
            store = PostgresSaver(dsn(), schema=ours)
            stack.callback(store.close)
        theirs = stack.enter_context(schema("xproc_lg"))
        for index, lib_name in contest.turns():
            with contest.lap(lib_name):
                run = (_tether_cancels(store, count, redis) if lib_name == "tether"
                       else _langgraph_cancels(by_name[lib_name], theirs, count))
                found = asyncio.run(within(run, plan.timeout))
                contest.results[lib_name] = {"cancelled": len(found)}
            if index >= plan.warmup:
                samples[lib_name] += found
    _SERIES[key] = _Samples(contest.outcomes(per=count), samples)
    return _SERIES[key]


@dataclass
class XprocCancel:
    """p`quantile` of API cancel → run terminated on a worker (see the module docstring).

    `goal` is `target` over LangGraph's number once measured, so that ✓ means tether met its
    target (as in `bench/cancel.py`)."""

    name: str
    quantile: float
    listen: bool
    target: float
    redis: str | None = None
    reach: bool = False
    """Measure from the durable request to the run's scope cancelled on the worker (its
    `propagate` event), not to the run's terminal status."""
    family: str = FAMILY
    unit: str = "cancel"
    goal: float = math.inf

    @property
    def mode(self) -> str:
        return f"p{round(self.quantile * 100)}"

    @property
    def doc(self) -> str:
        how = ("the Redis bus" if self.redis else "NOTIFY" if self.listen
               else "polling (--no-listen)")
        return (f"p{round(self.quantile * 100)} of a cancel from another process reaching a run "
                f"on a worker by {how}; LangGraph: in-process task.cancel()")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        found = _cancel_series(libs, plan, self.listen, self.redis)
        out: dict[str, Outcome] = {}
        for lib_name, outcome in found.outcomes.items():
            samples = found.samples.get(lib_name) or []
            if outcome.measurement is None or not samples:
                out[lib_name] = outcome
                continue
            ranked = sorted(sample[1 if self.reach else 0] for sample in samples)
            value = ranked[max(math.ceil(self.quantile * len(ranked)), 1) - 1]
            out[lib_name] = Outcome(Measurement([value], 1, outcome.measurement.result))
        theirs = out.get("langgraph")
        if theirs is not None and theirs.measurement is not None:
            self.goal = self.target / max(theirs.measurement.per_unit, 1e-9)
        return out



WORKLOADS: list[Any] = [
    XprocCancel("cancel-xproc+listen", 0.5, True, 0.010),
    XprocCancel("cancel-xproc+listen", 0.99, True, 0.025),
    XprocCancel("cancel-xproc+poll", 0.5, False, 0.300),
    XprocCancel("cancel-xproc+poll", 0.99, False, 0.525),
    XprocCancel("cancel-xproc+bus", 0.5, True, 0.010, redis=REDIS),
    XprocCancel("cancel-xproc+bus", 0.99, True, 0.025, redis=REDIS),
    XprocCancel("cancel-reach+bus", 0.5, True, 0.002, redis=REDIS, reach=True),
    XprocCancel("cancel-reach+listen", 0.5, True, 0.002, reach=True),
]
