"""Does the server's event loop stay free while runs checkpoint? `server-blocking`: the latency of
`GET /threads/{tid}/runs/{run_id}` while `RUNS` runs checkpoint every superstep, on tether's
server (SQLite file) and LangGraph's in-memory Agent Server (`langgraph dev`), driven by the same
client code (the servers of `bench/server.py`).

Each repeat starts the runs (untimed), waits until all are running, then times `SAMPLES` reads
one after the other, a few milliseconds apart, and cancels the runs (untimed). The row is a
quantile of every timed read of every repeat; ✓ means tether's is within the absolute target of
issue 16 (5 ms at p99), whatever LangGraph's is, as in the cancel family (the JSON `goal` is the
target divided by LangGraph's number).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.libs import Lib
from bench.server import FAMILY, servers, turn
from bench.timing import Contest, Measurement, Outcome, Plan, within

ORDER = 41
RUNS = 50
STEP_DELAY = 0.1
"""Each run's node sleeps this long, then the superstep checkpoints: 50 runs write about 500
checkpoints a second between them (a load the server can carry on 2 shared cores, so the row
shows what the reads wait for, not a saturated CPU)."""
SAMPLES = 200
PAUSE = 0.005
"""Seconds between two timed reads (so the reads sample the runs' work, not each other)."""
TARGET = 0.005
"""Issue 16's target for tether's p99."""


async def _read_while_checkpointing(url: str, runs: int, samples: int) -> list[float]:
    limits = httpx.Limits(max_connections=runs + 10, max_keepalive_connections=runs + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        graph_input = {"count": 0, "limit": 10_000_000, "delay": STEP_DELAY}

        async def start() -> tuple[str, str]:
            tid = (await http.post("/threads", json={})).json()["thread_id"]
            answer = await http.post(f"/threads/{tid}/runs",
                                     json={"assistant_id": "counter", "input": graph_input})
            answer.raise_for_status()
            return tid, answer.json()["run_id"]

        started = await asyncio.gather(*(start() for _ in range(runs)))
        try:
            for tid, run_id in started:
                for _ in range(2000):
                    run = (await http.get(f"/threads/{tid}/runs/{run_id}")).json()
                    if run["status"] == "running":
                        break
                    await asyncio.sleep(0.005)
                else:
                    raise RuntimeError(f"run {run_id} did not start")
            latencies: list[float] = []
            # The reads go through a client of their own, on one connection, as a caller
            # polling its run would: through the client that started the runs, each read would
            # also pay for its pool of `runs` idle connections (httpx checks each one for
            # readability before it sends a request: about 3 ms a read with 50, measured),
            # which is the client's cost, not the server's.
            async with httpx.AsyncClient(base_url=url, timeout=60) as reader:
                for n in range(samples):
                    tid, run_id = started[n % len(started)]
                    begun = time.perf_counter()
                    answer = await reader.get(f"/threads/{tid}/runs/{run_id}")
                    latencies.append(time.perf_counter() - begun)
                    answer.raise_for_status()
                    await asyncio.sleep(PAUSE)
            return latencies
        finally:
            await asyncio.gather(*(http.post(f"/threads/{tid}/runs/{run_id}/cancel",
                                             params={"wait": 1})
                                   for tid, run_id in started), return_exceptions=True)


@dataclass
class ServerBlocking:
    """p99 (or p50) of a run read over HTTP while `RUNS` runs checkpoint every superstep."""

    name: str
    quantile: float
    mode: str
    family: str = FAMILY
    unit: str = "request"
    _goal: float = field(default=TARGET / 0.005)

    @property
    def goal(self) -> float:
        return self._goal

    @property
    def doc(self) -> str:
        return (f"p{round(self.quantile * 100)} of GET /threads/{{tid}}/runs/{{id}} while {RUNS} "
                f"runs checkpoint every {STEP_DELAY * 1000:g} ms (tether: SQLite)")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        results = _measure(libs, plan)
        found: dict[str, Outcome] = {}
        for name, (outcome, samples) in results.items():
            if outcome.measurement is None or not samples:
                found[name] = outcome
                continue
            value = _nearest_rank(samples, self.quantile)
            found[name] = Outcome(Measurement([value], 1, outcome.measurement.result))
        theirs = found.get("langgraph")
        if theirs is not None and theirs.measurement is not None:
            self._goal = TARGET / max(theirs.measurement.per_unit, 1e-9)
        return found


_CACHE: dict[tuple[int, tuple[str, ...]], dict[str, tuple[Outcome, list[float]]]] = {}


def _measure(libs: Sequence[Lib], plan: Plan) -> dict[str, tuple[Outcome, list[float]]]:
    key = (id(plan), tuple(lib.name for lib in libs))
    if key in _CACHE:
        return _CACHE[key]
    runs, samples = (5, 20) if plan.quick else (RUNS, SAMPLES)
    contest = Contest(plan, [lib.name for lib in libs])
    found: dict[str, list[float]] = {lib.name: [] for lib in libs}
    with servers(libs, plan, contest) as running:
        for index, name in contest.turns():
            latencies: list[float] = []
            with turn(running, name) as server, contest.lap(name):
                latencies = asyncio.run(within(
                    _read_while_checkpointing(server.url, runs, samples), plan.timeout))
                contest.results[name] = {"reads": len(latencies)}
            if index >= plan.warmup:
                found[name].extend(latencies)
    outcomes = contest.outcomes(per=samples)
    _CACHE[key] = {name: (outcome, found.get(name, [])) for name, outcome in outcomes.items()}
    return _CACHE[key]


def _nearest_rank(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]


WORKLOADS: list[Any] = [
    ServerBlocking(name="server-blocking", quantile=0.50, mode="p50"),
    ServerBlocking(name="server-blocking", quantile=0.99, mode="p99"),
]
