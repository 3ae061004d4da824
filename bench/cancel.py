"""Cancellation, side by side (DESIGN.md §7, lines 3 to 6): from a cancel to a stopped run.

Each scenario cancels many runs on each library in the same process, the libraries taking turns
(`cancel_series`); each row shows one percentile of the samples (the `mode` column: p50, p99),
the ratio tether/LangGraph, and ✓ or ✗ for tether against the **absolute** goal of §7 — which
is why the JSON `goal` of these rows is that target divided by LangGraph's number: the ratio
meets it exactly when tether's own number meets the target.

- `async-node[+memory|+sqlite]`: a looping graph whose node awaits a long sleep; tether
  `await run.cancel()` (returns when the run is terminal and its final checkpoint committed) vs
  LangGraph `task.cancel()` on the task consuming `astream` and awaiting it. Target p99 ≤ 1 ms
  (≤ 5 ms with SQLite: the final checkpoint durable).
- `sync-node[+cpu]`: a sync node working in 1 ms chunks (sleeps, or a busy loop); on tether it
  polls `tether.cancelled()`. LangGraph gives it no way to notice: the time is until its node
  returns on its own (its whole duration). Target ≤ 10 ms.
- `process-node`: a CPU loop deaf to cancellation, `isolation="process"` with a grace: killed.
  LangGraph has no isolation: its column is the same loop as an ordinary node, which runs on to
  its end (1 s here; forever if it had none). Target ≤ grace + 50 ms.
- `start1000`, `cancel1000`: 1000 runs each parked in an async node, started, then all
  cancelled at once; per run. Targets: all started ≤ 100 ms, all cancelled ≤ 50 ms. The memory
  per run in flight (`tracemalloc`, target ≤ 10 KB) is printed as a `mem1000` line: the table
  can only show times.

`--quick`: 5 samples, a 0.25 s node instead of 1 s, 50 runs instead of 1000.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from bench import cancel_series as series
from bench.harness import _COLUMNS
from bench.libs import Lib, SaverKind
from bench.timing import Measurement, Outcome, Plan
from bench.workload import Workload

ORDER = 30
FAMILY = "cancel"

GRACE = 0.2
"""`cancel_grace` of the process-isolated node: the kill comes after it."""


@dataclass(frozen=True)
class Sizes:
    samples: int
    """Cancels kept per library (p99 is the 198th of 200)."""
    slow: int
    """LangGraph's samples where its number is its node's whole duration."""
    process: int
    """tether's samples of the process node (each starts a worker process)."""
    runs: int
    """Runs in flight at once."""
    node_seconds: float
    """How long a sync node works when nothing stops it."""


def sizes(plan: Plan) -> Sizes:
    if plan.quick:
        return Sizes(samples=5, slow=2, process=2, runs=50, node_seconds=0.25)
    return Sizes(samples=200, slow=5, process=20, runs=1000, node_seconds=1.0)


@dataclass
class Percentile(Measurement):
    """Samples of one cancel each; the table's number is their `quantile` (nearest rank)."""

    quantile: float = 0.5

    @property
    def per_unit(self) -> float:
        ranked = sorted(self.seconds)
        return ranked[max(math.ceil(self.quantile * len(ranked)), 1) - 1]


Runner = Callable[[Sequence[Lib], Plan], Coroutine[Any, Any, series.Results]]


class Series:
    """A scenario run once per plan; the rows that read it (p50, p99...) share its samples."""

    def __init__(self, run: Runner) -> None:
        self._run = run
        self._cache: dict[tuple[Plan, tuple[str, ...]], series.Results] = {}

    def results(self, libs: Sequence[Lib], plan: Plan) -> tuple[series.Results, bool]:
        """The samples, and whether they were taken just now (not from the cache)."""
        key = (plan, tuple(lib.name for lib in libs))
        if key in self._cache:
            return self._cache[key], False
        with series.frozen_heap():
            found = asyncio.run(self._run(libs, plan))
        self._cache[key] = found
        return found, True


@dataclass(frozen=True)
class Target:
    """DESIGN.md §7 for one row, per unit: tether's bound and LangGraph's number there."""

    bound: float
    langgraph: float


class CancelRow:
    """One metric of a series, one percentile (or the median of repeats), as a table row."""

    family = FAMILY

    def __init__(
        self,
        name: str,
        mode: str,
        doc: str,
        *,
        source: Series,
        metric: str,
        target: Target,
        quantile: float | None = None,
        unit: str = "cancel",
        after: Callable[[series.Results, Plan], None] | None = None,
    ) -> None:
        self.name, self.mode, self.doc, self.unit = name, mode, doc, unit
        self.source, self.metric, self.target = source, metric, target
        self.quantile, self.after = quantile, after
        self._goal = target.bound / target.langgraph

    @property
    def goal(self) -> float:
        """The ratio that means `tether <= target.bound`: with LangGraph's number of this run
        once measured (§7's before)."""
        return self._goal

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        results, fresh = self.source.results(libs, plan)
        if fresh and self.after is not None:
            self.after(results, plan)
        sides = results[self.metric]
        outcomes: dict[str, Outcome] = {
            lib.name: self._outcome(sides[lib.name], plan) for lib in libs
        }
        theirs = outcomes.get("langgraph")
        if (
            theirs is not None
            and theirs.measurement is not None
            and theirs.measurement.per_unit > 0
        ):
            self._goal = self.target.bound / theirs.measurement.per_unit
        return outcomes

    def _outcome(self, side: series.Side, plan: Plan) -> Outcome:
        if side.error is not None:
            return Outcome(error=side.error, trace=side.trace, timed_out=side.timed_out)
        if not side.samples:
            return Outcome(error="no timed sample ran")
        if self.quantile is None:  # one sample per repeat, for `runs` runs: the median per run
            measurement = Measurement(side.samples, sizes(plan).runs, None, side.peak_rss_kib)
            return Outcome(measurement)
        return Outcome(
            Percentile(side.samples, len(side.samples), None, side.peak_rss_kib, self.quantile)
        )


def _rows(name: str, doc: str, source: Series, target: Target) -> list[Workload]:
    return [
        CancelRow(
            name,
            f"p{round(q * 100)}",
            doc,
            source=source,
            metric="latency",
            target=target,
            quantile=q,
        )
        for q in (0.5, 0.99)
    ]


# --- the scenarios ---------------------------------------------------------------------------


def _async_node(saver: SaverKind | None) -> Series:
    async def run(libs: Sequence[Lib], plan: Plan) -> series.Results:
        return await series.async_node(libs, plan, saver, sizes(plan).samples)

    return Series(run)


def _sync_node(cpu: bool) -> Series:
    async def run(libs: Sequence[Lib], plan: Plan) -> series.Results:
        size = sizes(plan)
        return await series.sync_node(
            libs,
            plan,
            cpu=cpu,
            samples=size.samples,
            slow=size.slow,
            node_seconds=size.node_seconds,
        )

    return Series(run)


async def _process_node(libs: Sequence[Lib], plan: Plan) -> series.Results:
    size = sizes(plan)
    return await series.process_node(
        libs,
        plan,
        grace=GRACE,
        samples=size.process,
        slow=size.slow,
        node_seconds=size.node_seconds,
    )


async def _crowd(libs: Sequence[Lib], plan: Plan) -> series.Results:
    return await series.crowd(libs, plan, sizes(plan).runs)


# --- memory: a line of its own (the harness formats every number as a time) ------------------

MEMORY_BOUND = 10_000
"""Bytes per run in flight (§7: ≤ 10 KB; LangGraph ~37 KB)."""


def print_memory(results: series.Results, plan: Plan) -> None:
    """Print the memory per run in flight as a row of the table would look."""
    peak = results["memory"]
    cells = ["mem1000", "peak", str(sizes(plan).runs)]
    for name in ("tether", "langgraph"):
        side = peak.get(name)
        cells.append(
            "error" if side is None or not side.samples else f"{side.samples[0] / 1000:.1f} KB/run"
        )
    ours, theirs = peak.get("tether"), peak.get("langgraph")
    ratio, mark = "", ""
    if ours is not None and ours.samples:
        mark = "✓" if ours.samples[0] <= MEMORY_BOUND else "✗"
        if theirs is not None and theirs.samples:
            ratio = f"{ours.samples[0] / theirs.samples[0]:.2f}"
    cells += [ratio, mark, "(tracemalloc; printed by bench/cancel.py, not in --json)"]
    widths = [width for _, width in _COLUMNS] + [0]
    line = "  ".join(
        cell.rjust(width) if i >= 2 and width else cell.ljust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )
    print(line.rstrip(), flush=True)


_ASYNC_DOC = (
    "Cancel -> run terminated: an async node awaiting a long sleep, in a loop graph{}.\n\n"
    "tether: `await run.cancel()` (returns once the run is terminal and its final checkpoint "
    "committed); LangGraph: `task.cancel()` on the task consuming `astream`, awaited. "
    "Goal: p99 <= {}."
)
_SYNC_DOC = (
    "Cancel -> sync node stopped and run terminated: {}, in 1 ms chunks.\n\n"
    "tether: the node polls `tether.cancelled()` between chunks; LangGraph gives it nothing to "
    "poll, so the time is until it returns on its own (1 s; never, for a node that does not "
    "end). Goal: <= 10 ms."
)
_PROCESS_DOC = (
    "Cancel -> run terminated: a CPU loop deaf to cancellation, in a worker process: killed.\n\n"
    f"tether: `isolation='process', cancel_grace={GRACE:g}`, so the kill comes after the grace. "
    "LangGraph has no equivalent: its column is the same loop as an ordinary node, which runs "
    "on to its end (1 s; forever, for a loop with no end). Goal: <= grace + 50 ms."
)
_MS = 1e-3
_US = 1e-6

WORKLOADS: list[Workload] = [
    *_rows(
        "async-node", _ASYNC_DOC.format("", "1 ms"), _async_node(None), Target(1 * _MS, 0.3 * _MS)
    ),
    *_rows(
        "async-node+memory",
        _ASYNC_DOC.format(" (InMemorySaver)", "1 ms"),
        _async_node("memory"),
        Target(1 * _MS, 0.3 * _MS),
    ),
    *_rows(
        "async-node+sqlite",
        _ASYNC_DOC.format(" (SQLite file)", "5 ms, the final checkpoint durable"),
        _async_node("sqlite"),
        Target(5 * _MS, 20 * _MS),
    ),
    *_rows(
        "sync-node",
        _SYNC_DOC.format("a sync node sleeping, like blocking I/O"),
        _sync_node(cpu=False),
        Target(10 * _MS, 1.0),
    ),
    *_rows(
        "sync-node+cpu",
        _SYNC_DOC.format("a sync node busy-looping, holding the GIL"),
        _sync_node(cpu=True),
        Target(10 * _MS, 1.0),
    ),
    *_rows("process-node", _PROCESS_DOC, Series(_process_node), Target(GRACE + 50 * _MS, 1.0)),
]
_CROWD = Series(_crowd)
WORKLOADS += [
    CancelRow(
        "start1000",
        "p50",
        "1000 runs started at once, until each is inside its node: time per run.\n\n"
        "tether: `graph.start(...)` each; LangGraph: a task consuming `astream` each. The median "
        "of the repeats. Goal: all started <= 100 ms. Also prints the memory per run in flight "
        "(the mem1000 line).",
        source=_CROWD,
        metric="start",
        target=Target(100 * _US, 600 * _US),
        unit="run",
        after=print_memory,
    ),
    CancelRow(
        "cancel1000",
        "p50",
        "1000 runs in flight cancelled at once, until all have ended: time per run.\n\n"
        "tether: `gather(*(run.cancel() ...))`; LangGraph: cancel every task, then gather. The "
        "median of the repeats. Goal: all cancelled <= 50 ms.",
        source=_CROWD,
        metric="cancel",
        target=Target(50 * _US, 160 * _US),
        unit="run",
        after=print_memory,
    ),
]
