"""How many runs a server carries: `http_throughput`, `RUNS` short runs started at once over
HTTP and awaited, on tether's server (SQLite file) and LangGraph's in-memory Agent Server
(`langgraph dev`), driven by the same client code: the official `langgraph-sdk` client (the
servers of `bench/server.py`).

Each run is what a client of either server does for a one-off job: create a thread, create a
run on it (3 supersteps of the counter graph, nodes that do not wait), and join it until its
output is back. All `RUNS` of them go at once (one SDK client, its default connection pool);
a repeat is timed from the first request to the last output, and the row is that time per
run (the inverse of the throughput). The outputs are compared: every run must have counted
to 3 on both sides.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.libs import Lib
from bench.server import FAMILY, servers, turn
from bench.timing import Contest, Measurement, Outcome, Plan, within

ORDER = 42
RUNS = 200
STEPS = 3


async def _runs_at_once(url: str, runs: int) -> tuple[float, int]:
    """Start `runs` runs at once and join them all: the seconds it took, and how many runs
    returned the expected output."""
    from langgraph_sdk import get_client

    async with get_client(url=url, api_key=None, timeout=120) as client:
        graph_input = {"count": 0, "limit": STEPS, "delay": 0.0}

        async def one() -> bool:
            thread = (await client.threads.create())["thread_id"]
            run = await client.runs.create(thread, "counter", input=graph_input)
            output: Any = await client.runs.join(thread, run["run_id"])
            return isinstance(output, dict) and output.get("count") == STEPS

        await one()  # one run first: connections and the graph warm on both ends
        started = time.perf_counter()
        done = await asyncio.gather(*(one() for _ in range(runs)))
        return time.perf_counter() - started, sum(done)


@dataclass(frozen=True)
class HttpThroughput:
    """`RUNS` 3-step runs at once over HTTP through the SDK: thread, run, join (time per run)."""

    name: str = "http_throughput"
    size: int = RUNS
    quick_size: int = 10
    family: str = FAMILY
    mode: str = f"{RUNS}x{STEPS}"
    unit: str = "run"
    goal: float = 1.0
    doc: str = (f"{RUNS} concurrent {STEPS}-step runs over HTTP (SDK: create thread, create "
                "run, join), time per run")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        count = self.quick_size if plan.quick else self.size
        contest = Contest(plan, [lib.name for lib in libs])
        seconds: dict[str, list[float]] = {lib.name: [] for lib in libs}
        with servers(libs, plan, contest) as running:
            for index, name in contest.turns():
                took: float | None = None
                with turn(running, name) as server, contest.lap(name):
                    took, ok = asyncio.run(within(_runs_at_once(server.url, count),
                                                  plan.timeout))
                    contest.results[name] = {"runs_with_the_expected_output": ok}
                if index >= plan.warmup and took is not None:
                    seconds[name].append(took)
        outcomes = contest.outcomes(per=count)
        for name, outcome in outcomes.items():
            if outcome.measurement is not None and seconds[name]:
                outcomes[name] = Outcome(Measurement(seconds[name], count,
                                                     outcome.measurement.result))
        return outcomes


WORKLOADS: list[Any] = [HttpThroughput()]
