"""Sampling for the cancel family: many cancels per library, the libraries taking turns.

A *series* runs one scenario of `cancel_probes` on both libraries, sample by sample, and keeps
every sample; the rows of `bench/cancel.py` read percentiles off it. The p50 and the p99 row of a
scenario share one series (it runs once per plan).

Fairness, as in `bench.timing.Contest`: the libraries alternate sample by sample and the first to
go alternates too; warm-up samples are not kept; garbage is collected before each sample, outside
the timed part, with the heap that was there before the series frozen (`gc.freeze`), so a
collection is cheap and never lands on one library because of the other's garbage.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
import traceback
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cancel_probes as probes
from bench.libs import Lib, SaverKind
from bench.timing import Plan, WorkloadTimeout, _max, _reset_peak_rss, _rss_rise, one_line, within

_files = itertools.count()


@dataclass
class Side:
    """One library's kept samples of one metric (seconds, or bytes), or what stopped it."""

    samples: list[float] = field(default_factory=list)
    error: str | None = None
    trace: str | None = None
    timed_out: bool = False
    peak_rss_kib: int | None = None
    """Rise of the process's peak RSS while the runs of one sample were in flight (Linux)."""


Results = dict[str, dict[str, Side]]
"""metric -> library -> samples."""


@dataclass(frozen=True)
class Quota:
    """How many samples a library takes in a series: untimed warm-ups, then kept ones."""

    warmup: int
    samples: int


class Sampler:
    """Turns for each library until its quota is met; an exception ends that library's turns."""

    def __init__(self, quotas: dict[str, Quota]) -> None:
        self.quotas = quotas
        self.sides = {name: Side() for name in quotas}

    def turns(self) -> Iterator[tuple[int, str, bool]]:
        """`(index, library, kept)`: one turn per library per index, the first to go alternating."""
        names = list(self.quotas)
        for index in itertools.count():
            order = names if index % 2 == 0 else names[::-1]
            due = [name for name in order if index < self._total(name)]
            if not due:
                return
            for name in due:
                if self.sides[name].error is None:
                    yield index, name, index >= self.quotas[name].warmup

    def _total(self, name: str) -> int:
        quota = self.quotas[name]
        return quota.warmup + quota.samples if self.sides[name].error is None else 0

    @contextmanager
    def guard(self, name: str) -> Iterator[None]:
        """Record an exception in the body as `name`'s error (tether's cancels subclass
        `CancelledError`, so that counts too)."""
        try:
            yield
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - the library's error
            side = self.sides[name]
            side.error, side.trace = one_line(exc), traceback.format_exc()
            side.timed_out = isinstance(exc, WorkloadTimeout)

    async def run(self, sample: Callable[[str, int], Awaitable[float]], limit: float) -> None:
        """Take every turn: `sample(library, index)` returns the seconds to keep."""
        for index, name, kept in self.turns():
            with self.guard(name):
                gc.collect()
                seconds = await within(sample(name, index), limit)
                if kept:
                    self.sides[name].samples.append(seconds)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Move what exists now out of the collector's way for the series; undo it after."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _latency_quotas(libs: Sequence[Lib], plan: Plan, samples: int, slow: int) -> dict[str, Quota]:
    """tether takes `samples`; LangGraph too, or `slow` when its number is its node's duration."""
    warm = plan.warmup * (2 if plan.quick else 10)
    return {
        lib.name: Quota(warm, samples) if lib.name == "tether" or not slow else Quota(0, slow)
        for lib in libs
    }


# --- 1. async node ------------------------------------------------------------------------------


async def async_node(
    libs: Sequence[Lib], plan: Plan, saver: SaverKind | None, samples: int
) -> Results:
    """Cancel the looping async node during its long await (see `probes.build_sleeper`)."""
    gate = probes.Gate()
    sampler = Sampler(_latency_quotas(libs, plan, samples, 0))
    graphs: dict[str, tuple[Lib, Any, Path]] = {}
    async with AsyncExitStack() as stack:
        for lib in libs:
            stack.enter_context(sampler.guard(lib.name))  # an error closing the saver
            with sampler.guard(lib.name):
                path = plan.tmpdir / f"{lib.name}-cancel-{next(_files)}.sqlite"
                opened = lib.asaver(saver, path, plan.sqlite_synchronous)
                checkpointer = await stack.enter_async_context(opened)
                graphs[lib.name] = (lib, probes.build_sleeper(lib, checkpointer, gate), path)

        async def sample(name: str, index: int) -> float:
            lib, graph, path = graphs[name]
            config = None if saver is None else {"configurable": {"thread_id": f"t{index}"}}
            seconds, run_id = await probes.cancel_sleeper(lib, graph, gate, config)
            if saver == "sqlite" and run_id is not None:
                probes.check_durable(path, run_id)
            return seconds

        await sampler.run(sample, plan.timeout)
    return {"latency": sampler.sides}


# --- 2. sync node -------------------------------------------------------------------------------


async def sync_node(
    libs: Sequence[Lib], plan: Plan, *, cpu: bool, samples: int, slow: int, node_seconds: float
) -> Results:
    """Cancel a sync node working in 1 ms chunks (see `probes.build_worker`)."""
    gate = probes.Gate()
    sampler = Sampler(_latency_quotas(libs, plan, samples, slow))
    built: dict[str, tuple[Lib, Any, probes.Stopwatch]] = {}
    for lib in libs:
        with sampler.guard(lib.name):
            stopped = probes.Stopwatch()
            graph = probes.build_worker(lib, gate, stopped, seconds=node_seconds, cpu=cpu)
            built[lib.name] = (lib, graph, stopped)

    async def sample(name: str, index: int) -> float:
        lib, graph, stopped = built[name]
        return await probes.stop_worker(lib, graph, gate, stopped, node_seconds)

    await sampler.run(sample, plan.timeout)
    return {"latency": sampler.sides}


# --- 3. process node ----------------------------------------------------------------------------


async def process_node(
    libs: Sequence[Lib], plan: Plan, *, grace: float, samples: int, slow: int, node_seconds: float
) -> Results:
    """Cancel the deaf CPU loop: tether kills its worker process; LangGraph cannot stop it."""
    quotas: dict[str, Quota] = {
        lib.name: Quota(plan.warmup, samples) if lib.name == "tether" else Quota(0, slow)
        for lib in libs
    }
    sampler = Sampler(quotas)
    spinners: dict[str, tuple[Lib, probes.Spinner]] = {}
    for lib in libs:
        with sampler.guard(lib.name):
            spinners[lib.name] = (lib, probes.build_spinner(lib, grace))

    async def sample(name: str, index: int) -> float:
        lib, spinner = spinners[name]
        flag = plan.tmpdir / f"{name}-spin-{next(_files)}.flag"
        # tether's node spins "forever": only the kill ends it. LangGraph's spins its while.
        seconds = 3600.0 if name == "tether" else node_seconds
        return await probes.kill_spinner(lib, spinner, flag, seconds)

    await sampler.run(sample, plan.timeout)
    return {"latency": sampler.sides}


# --- 4. many runs -------------------------------------------------------------------------------


async def crowd(libs: Sequence[Lib], plan: Plan, runs: int) -> Results:
    """Start `runs` runs, wait until every one is in its node, cancel them all; then, once per
    library and untimed, the same start under `tracemalloc` for the memory of a run in flight.

    Metrics: `start` and `cancel` (seconds for all the runs, one sample per repeat), `memory`
    (peak bytes traced per run in flight) and `memory_now` (bytes still held per run then).
    """
    gate = probes.Gate()
    sampler = Sampler({lib.name: Quota(plan.warmup, plan.repeat) for lib in libs})
    graphs: dict[str, tuple[Lib, Any]] = {}
    for lib in libs:
        with sampler.guard(lib.name):
            graphs[lib.name] = (lib, probes.build_parked(lib, gate))
    cancels: dict[str, list[float]] = {name: [] for name in graphs}
    rss: dict[str, int | None] = dict.fromkeys(graphs)

    async def sample(name: str, index: int) -> float:
        lib, graph = graphs[name]
        gate.arm(runs)
        rss_before = _reset_peak_rss()
        started = await _start_all(lib, graph, gate, runs)
        rss[name] = _max(rss[name], _rss_rise(rss_before))
        cancelled = await _cancel_all(lib, started[1])
        if index >= sampler.quotas[name].warmup:
            cancels[name].append(cancelled)
        return started[0]

    await sampler.run(sample, plan.timeout)
    results: Results = {metric: {} for metric in ("start", "cancel", "memory", "memory_now")}
    for name, side in sampler.sides.items():
        results["start"][name] = Side(
            side.samples, side.error, side.trace, side.timed_out, rss.get(name)
        )
        results["cancel"][name] = Side(
            cancels.get(name, []), side.error, side.trace, side.timed_out
        )
        results["memory"][name], results["memory_now"][name] = Side(), Side()
    for name, (lib, graph) in graphs.items():
        if sampler.sides[name].error is None:
            peak, now = results["memory"][name], results["memory_now"][name]
            try:
                traced = await within(_traced_start(lib, graph, gate, runs), plan.timeout)
            except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - its error
                peak.error = now.error = one_line(exc)
                peak.trace = now.trace = traceback.format_exc()
            else:
                peak.samples, now.samples = [traced[0]], [traced[1]]
    return results


async def _start_all(lib: Lib, graph: Any, gate: probes.Gate, runs: int) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    handles = probes.start_many(lib, graph, runs)
    try:
        await gate.wait()
    except BaseException:
        await probes.cancel_many(lib, handles)
        raise
    return time.perf_counter() - started, handles


async def _cancel_all(lib: Lib, handles: list[Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    await probes.cancel_many(lib, handles)
    return time.perf_counter() - started


async def _traced_start(lib: Lib, graph: Any, gate: probes.Gate, runs: int) -> tuple[float, float]:
    """Bytes per run in flight: the traced peak while starting them, and what they hold then."""
    gate.arm(runs)
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        handles = probes.start_many(lib, graph, runs)
        await gate.wait()
        gc.collect()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await probes.cancel_many(lib, handles)
    return (peak - baseline) / runs, (now - baseline) / runs

