"""A run's stream across processes (issue 15), each library's server driven by the official
`langgraph-sdk` client with the same code.

tether: one `tether worker` process drives the runs and one `tether serve` process answers the
client, on Postgres, the chunks crossing from the one to the other on the bus (`redis` rows:
Redis Streams; `pg` rows: Postgres LISTEN/NOTIFY). LangGraph: its in-memory Agent Server
(`langgraph dev`), which runs the graph in the server's own process — no second hop.

- `chunk-delay[1x1000/s]` p50 / p99: one run streams custom chunks at 1,000 a second for two
  seconds, each stamped with the wall clock when the node wrote it; the delay is its arrival at
  the client (one machine, one clock). The JSON's result has the share delivered.
- `chunk-delay[100x10/s]` p50 / p99: 100 runs streaming at once, 10 chunks a second each.
- `join-after-end` p50: `runs.join` waiting on a run that ends 50 ms after it was created, from
  the node's last instruction to the join's answer.
- `created-to-first-node` p50: a run's `created_at` (its record) to its node's first
  instruction, on a worker (tether) or in the server (LangGraph).

Targets (issue 15, not DESIGN.md §7's ratios): delay p50 ≤ 2 ms and p99 ≤ 10 ms, join ≤ 5 ms,
first node ≤ 5 ms; ✓ compares tether to the target. Redis comes from `$TETHER_BENCH_REDIS_URL`
(else `$TETHER_TEST_REDIS_URL`, else the local server); Postgres as in `bench.workers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.libs import Lib
from bench.server import ServerProcess, langgraph_cli
from bench.timing import Measurement, Outcome, Plan, one_line, within
from bench.workers import REDIS, ROOT, dsn, schema

ORDER = 41
FAMILY = "server"
GRAPH = "streams"

GRAPH_SOURCE = '''
import asyncio
import time
from typing import TypedDict

from {lib}.config import get_stream_writer
from {lib}.graph import END, START, StateGraph


class Emit(TypedDict, total=False):
    count: int
    rate: float
    hold: float
    first_at: float
    done_at: float


async def emit(state: Emit) -> dict:
    first_at = time.time()
    write = get_stream_writer()
    began = time.monotonic()
    for i in range(state["count"]):
        await asyncio.sleep(max(0.0, began + i / state["rate"] - time.monotonic()))
        write({{"i": i, "t": time.time()}})
    if state.get("hold"):
        await asyncio.sleep(state["hold"])
    return {{"first_at": first_at, "done_at": time.time()}}


builder = StateGraph(Emit)
builder.add_node("emit", emit)
builder.add_edge(START, "emit")
builder.add_edge("emit", END)
streams = builder.compile()
'''

TETHER_SERVER = '''
import sys
from tether.server import ServerLimits, serve
from bench_streams_tether import streams
serve({"streams": streams}, db=sys.argv[1], port=int(sys.argv[2]), no_auth=True,
      log_level="warning", redis=sys.argv[3] or None,
      limits=ServerLimits(max_streams_per_key=1_000_000))
'''


# -- the deployments ----------------------------------------------------------------------------


def _env(workdir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(workdir), str(ROOT / "src")])}


@contextlib.contextmanager
def tether_deployment(workdir: Path, bus: str) -> Iterator[str]:
    """A worker and a server on a fresh schema, with the `bus` named; the server's URL."""
    (workdir / "bench_streams_tether.py").write_text(GRAPH_SOURCE.format(lib="tether"))
    redis = REDIS if bus == "redis" else ""
    with schema("streams") as name:
        worker = [sys.executable, "-m", "tether", "worker", f"bench_streams_tether:{GRAPH}",
                  "--db", dsn(), "--schema", name, "--concurrency", "120", "--poll", "0.05",
                  "--lease", "10", *(["--redis", redis] if redis else [])]
        server = ServerProcess("tether", workdir)
        url = f"{dsn()}{'&' if '?' in dsn() else '?'}options=-csearch_path%3D{name}"
        server.command = [sys.executable, "-c", TETHER_SERVER, url, str(server.port), redis]
        server.env = _env(workdir)
        log = workdir / f"worker-{bus}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(worker, env=_env(workdir), cwd=workdir, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "ready" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start: {log.read_text()[-500:]}")
                time.sleep(0.05)
            with server:
                yield server.url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def langgraph_deployment(workdir: Path) -> Iterator[str]:
    """LangGraph's in-memory Agent Server serving the same graph; its URL."""
    home = workdir / "langgraph-streams"
    home.mkdir(exist_ok=True)
    (home / "bench_streams_langgraph.py").write_text(GRAPH_SOURCE.format(lib="langgraph"))
    if langgraph_cli() is None:
        raise RuntimeError("LangGraph's Agent Server is not installed (see bench.server)")
    server = ServerProcess("langgraph", home)
    (home / "langgraph.json").write_text(  # ServerProcess wrote its own graph's
        '{"dependencies": ["."], "graphs": {"streams": "./bench_streams_langgraph.py:streams"}}')
    with server:
        yield server.url


# -- the client side (the same for both) --------------------------------------------------------


async def _stream(client: Any, rate: float, count: int) -> list[float]:
    thread = (await client.threads.create())["thread_id"]
    delays = []
    async for part in client.runs.stream(thread, GRAPH, stream_mode="custom", input={
            "count": count, "rate": rate}):
        if part.event == "custom":
            delays.append(time.time() - part.data["t"])
    return delays


async def _delays(client: Any, runs: int, rate: float, seconds: float) -> tuple[list[float],
                                                                                 float]:
    count = max(1, round(rate * seconds))
    found = await asyncio.gather(*(_stream(client, rate, count) for _ in range(runs)))
    delays = [d for one in found for d in one]
    return delays, len(delays) / (runs * count)


async def _joins(client: Any, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        thread = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread, GRAPH, input={"count": 0, "rate": 1, "hold": 0.05})
        values = await client.runs.join(thread, run["run_id"])
        samples.append(time.time() - values["done_at"])
    return samples


async def _first_nodes(client: Any, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        thread = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread, GRAPH, input={"count": 0, "rate": 1})
        values = await client.runs.join(thread, run["run_id"])
        created = datetime.fromisoformat(run["created_at"]).timestamp()
        samples.append(values["first_at"] - created)
    return samples


def _quantile(samples: Sequence[float], q: float) -> float:
    ranked = sorted(samples)
    return ranked[max(math.ceil(q * len(ranked)), 1) - 1] if ranked else math.nan


async def _scenarios(url: str, quick: bool) -> dict[str, float]:
    from langgraph_sdk import get_client

    async with get_client(url=url, api_key=None, timeout=120) as client:
        found: dict[str, float] = {}
        await _joins(client, 2)  # warm up both ends
        one, share_one = await _delays(client, 1, 1000, 0.2 if quick else 2.0)
        many, share_many = await _delays(client, 10 if quick else 100, 10, 0.5 if quick else 3)
        joins = await _joins(client, 3 if quick else 25)
        firsts = await _first_nodes(client, 3 if quick else 25)
    for name, samples in (("1x1000", one), ("100x10", many)):
        found[f"{name}:p50"], found[f"{name}:p99"] = (_quantile(samples, 0.5),
                                                      _quantile(samples, 0.99))
    found["1x1000:delivered"], found["100x10:delivered"] = share_one, share_many
    found["join:p50"], found["first:p50"] = _quantile(joins, 0.5), _quantile(firsts, 0.5)
    return found


# -- rows -------------------------------------------------------------------------------------


_SIDES: dict[tuple[int, str, str], tuple[Outcome, dict[str, float]]] = {}


def _side(plan: Plan, name: str, bus: str) -> tuple[Outcome, dict[str, float]]:
    """One library's deployment measured once per bench run (LangGraph's has no bus); an
    error is that side's row note."""
    key = (id(plan), name, bus if name == "tether" else "")
    if key not in _SIDES:
        values: dict[str, float] = {}
        try:
            deploy = (tether_deployment(plan.tmpdir, bus) if name == "tether"
                      else langgraph_deployment(plan.tmpdir))
            with deploy as url:
                values = asyncio.run(within(_scenarios(url, plan.quick),
                                            max(plan.timeout, 300)))
            # Compared across libraries: every chunk delivered on both sides.
            delivered = {k: round(v, 3) for k, v in values.items() if k.endswith("delivered")}
            outcome = Outcome(Measurement([0.0], 1, delivered))
        except Exception as exc:  # noqa: BLE001 - a failed side is its row's error
            outcome = Outcome(error=one_line(exc), trace=traceback.format_exc())
        _SIDES[key] = (outcome, values)
    return _SIDES[key]


@dataclass
class StreamRow:
    """One number of the scenarios (see the module docstring); `goal` is the target over
    LangGraph's number once measured, so that ✓ means tether met the target."""

    name: str
    metric: str
    bus: str
    target: float
    family: str = FAMILY
    unit: str = "sample"
    goal: float = math.inf
    mode: str = field(init=False)

    def __post_init__(self) -> None:
        self.mode = self.metric.rpartition(":")[2]

    @property
    def doc(self) -> str:
        return (f"{self.name} ({self.mode}) through a tether worker and server on the "
                f"{self.bus} bus; LangGraph: its in-memory Agent Server")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}
        for lib in libs:
            outcome, values = _side(plan, lib.name, self.bus)
            value = values.get(self.metric)
            if outcome.measurement is None or value is None or math.isnan(value):
                out[lib.name] = outcome if outcome.error else Outcome(error="no samples")
                continue
            out[lib.name] = Outcome(Measurement([value], 1, outcome.measurement.result))
        theirs = out.get("langgraph")
        if theirs is not None and theirs.measurement is not None:
            self.goal = self.target / max(theirs.measurement.per_unit, 1e-9)
        return out


WORKLOADS: list[Any] = [
    *(StreamRow(f"chunk-delay[{shape}/s,{bus}]", f"{shape}:{q}", bus, target)
      for bus in ("redis", "pg") for shape in ("1x1000", "100x10")
      for q, target in (("p50", 0.002), ("p99", 0.010))),
    StreamRow("join-after-end[redis]", "join:p50", "redis", 0.005),
    StreamRow("created-to-first-node[redis]", "first:p50", "redis", 0.005),
    StreamRow("join-after-end[pg]", "join:p50", "pg", 0.005),
    StreamRow("created-to-first-node[pg]", "first:p50", "pg", 0.005),
]
