"""Scale-out on Postgres (DESIGN.md §6): workers and the store per step (cross-process cancels:
`bench.xproc`).

- `short-runs[1|2|4 workers]`: many 3-step runs queued at once, each worker driving 4 at a time,
  until all ended; time per run. LangGraph's column: the same runs in one process with the same
  concurrency in total, on its `AsyncPostgresSaver`. Goal: not slower than that (ratio ≤ 1).
- `loop200+postgres`: the engine's looping graph, a checkpoint per superstep, tether's
  `PostgresSaver` against LangGraph's, in one run, both with durability `sync` (each checkpoint
  written before the next step), sync and async; and `+default` with each library's default
  durability (LangGraph `async`, tether `sync`). Goal ≤ 1/2, not §7's 1/5 for SQLite: a
  durable superstep cannot cost less than one round trip and one commit, which both pay; tether
  pays nothing more (one statement), LangGraph several statements.

Postgres comes from `$TETHER_BENCH_PG_DSN` (else `$TETHER_TEST_PG_DSN`, else the local test
server); each measurement gets fresh schemas, dropped after. `--quick` takes a few samples and
runs, and never asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from bench.engine import build_loop
from bench.libs import Lib, load
from bench.timing import Contest, Outcome, Plan, within
from bench.workload import Case, GraphWorkload, Mode

ORDER = 40
FAMILY = "workers"

ROOT = Path(__file__).resolve().parent.parent
LEASE = 1.5
"""Seconds of a worker's lease here: renewals (and cancel polls) every 0.5 s."""
CONCURRENCY = 4
"""Runs each worker drives at once."""


REDIS = (os.environ.get("TETHER_BENCH_REDIS_URL") or os.environ.get("TETHER_TEST_REDIS_URL")
         or "redis://127.0.0.1:6379/0")
"""The Redis of the `+bus` rows."""


def dsn() -> str:
    return (os.environ.get("TETHER_BENCH_PG_DSN") or os.environ.get("TETHER_TEST_PG_DSN")
            or "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def schema(tag: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards."""
    import psycopg

    name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")  # type: ignore[arg-type]
    try:
        yield name
    finally:
        with psycopg.connect(dsn(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")  # type: ignore[arg-type]


def conninfo(name: str) -> str:
    """The bench server's address, on schema `name`."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn(), options=f"-c search_path={name}")


# -- graphs -------------------------------------------------------------------------------------


class Count(TypedDict):
    n: int
    until: int


def build_spin(lib: Lib, *, pause: float = 0.05) -> Any:
    """`tick` loops until `until` (a large number: until cancelled), sleeping `pause` each step."""

    async def tick(state: Count) -> dict[str, int]:
        await asyncio.sleep(pause)
        return {"n": state["n"] + 1}

    def again(state: Count) -> str:
        return "tick" if state["n"] < state["until"] else lib.END

    graph = lib.StateGraph(Count)
    graph.add_node("tick", tick)
    graph.add_edge(lib.START, "tick")
    graph.add_conditional_edges("tick", again)
    return graph


def __getattr__(name: str) -> Any:
    # The graphs `tether worker bench.workers:spin` and `:short` serve, built on demand.
    if name == "spin":
        return build_spin(load("tether")).compile()
    if name == "short":
        return build_spin(load("tether"), pause=0.0).compile()
    raise AttributeError(name)


# -- worker processes ---------------------------------------------------------------------------


@contextlib.contextmanager
def workers(count: int, name: str, *, listen: bool = True,
            redis: str | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes serving `spin` and `short` on schema `name`, once all are ready
    (on the Redis bus at `redis`, else the Postgres one)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    command = [sys.executable, "-m", "tether", "worker", "bench.workers:spin",
               "bench.workers:short", "--db", dsn(), "--schema", name, "--lease", str(LEASE),
               "--poll", "0.05", "--concurrency", str(CONCURRENCY),
               *(["--redis", redis] if redis else [])]
    if not listen:
        command.append("--no-listen")
    logs: list[Path] = []
    started = []
    try:
        for index in range(count):
            log = Path(tempfile.gettempdir()) / f"{name}-{index}.log"
            logs.append(log)
            with log.open("wb") as out:
                started.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=out,
                                                stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        for process, log in zip(started, logs, strict=True):
            while "ready" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start: {log.read_text()[-500:]}")
                time.sleep(0.05)
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.unlink(missing_ok=True)


async def settled(store: Any, run_ids: Sequence[str], *, poll: float = 0.005) -> None:
    waiting = set(run_ids)
    while waiting:
        for run_id, status, _c, _e in await store.queue.awatch(list(waiting)):
            if status.terminal:
                waiting.discard(run_id)
        if waiting:
            await asyncio.sleep(poll)


def order(graph: str, until: int) -> Any:
    from tether.checkpoint.postgres.queue import Order

    thread = uuid.uuid4().hex
    return Order(graph=graph, thread_id=thread, input={"n": 0, "until": until},
                 config={"configurable": {"thread_id": thread}, "recursion_limit": 10**9},
                 multitask="enqueue")


# -- throughput ---------------------------------------------------------------------------------


async def _tether_batch(store: Any, runs: int) -> int:
    queued = [(await store.queue.aenqueue(order("short", 3))).run_id for _ in range(runs)]
    await settled(store, queued, poll=0.01)
    return len(queued)


async def _langgraph_batch(graph: Any, runs: int, concurrency: int) -> int:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            config = {"configurable": {"thread_id": uuid.uuid4().hex}}
            await graph.ainvoke({"n": 0, "until": 3}, config)

    await asyncio.gather(*(one() for _ in range(runs)))
    return runs


@contextlib.asynccontextmanager
async def _langgraph_graph(lib: Lib, name: str) -> AsyncIterator[Any]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(conninfo(name)) as saver:
        await saver.setup()
        yield build_spin(lib, pause=0.0).compile(checkpointer=saver)


@dataclass
class Throughput:
    """Short runs with `count` workers (see the module docstring); time per run."""

    count: int
    family: str = FAMILY
    mode: str = "async"
    unit: str = "run"
    goal: float = 1.0
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"short-runs[{self.count}w]"

    @property
    def doc(self) -> str:
        return (f"3-step runs queued at once, {self.count} worker(s) x {CONCURRENCY}; LangGraph: "
                f"one process, {self.count * CONCURRENCY} at a time")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        runs = 8 if plan.quick else 40 * self.count
        contest = Contest(plan, [lib.name for lib in libs])
        by_name = {lib.name: lib for lib in libs}
        with contextlib.ExitStack() as stack:
            with contest.guard("tether"):
                from tether.checkpoint.postgres import PostgresSaver

                ours = stack.enter_context(schema("runs"))
                stack.enter_context(workers(self.count, ours))
                store = PostgresSaver(dsn(), schema=ours)
                stack.callback(store.close)
            theirs = stack.enter_context(schema("runs_lg"))
            for _index, lib_name in contest.turns():
                with contest.lap(lib_name):
                    if lib_name == "tether":
                        done = asyncio.run(within(_tether_batch(store, runs), plan.timeout))
                    else:
                        done = asyncio.run(within(self._theirs(by_name[lib_name], theirs, runs),
                                                  plan.timeout))
                    contest.results[lib_name] = {"runs": done}
        return contest.outcomes(per=runs)

    async def _theirs(self, lib: Lib, name: str, runs: int) -> int:
        async with _langgraph_graph(lib, name) as graph:
            return await _langgraph_batch(graph, runs, self.count * CONCURRENCY)


# -- per superstep --------------------------------------------------------------------------------


@contextlib.contextmanager
def _saver(lib: Lib, name: str) -> Iterator[Any]:
    """Each library's Postgres saver on schema `name`, for `invoke` (tether's serves both)."""
    if lib.name == "tether":
        from tether.checkpoint.postgres import PostgresSaver

        store = PostgresSaver(dsn(), schema=name)
        try:
            yield store
        finally:
            store.close()
        return
    from langgraph.checkpoint.postgres import PostgresSaver as LangGraphSaver

    with LangGraphSaver.from_conn_string(conninfo(name)) as saver:
        saver.setup()
        yield saver


@contextlib.asynccontextmanager
async def _asaver(lib: Lib, name: str) -> AsyncIterator[Any]:
    """Each library's Postgres saver on schema `name`, for `ainvoke`, in the running loop."""
    if lib.name == "tether":
        with _saver(lib, name) as store:
            try:
                yield store
            finally:
                await store.aclose()
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(conninfo(name)) as saver:
        await saver.setup()
        yield saver


@dataclass(frozen=True)
class PostgresSteps(GraphWorkload):
    """`GraphWorkload` on each library's Postgres saver, on fresh schemas."""

    durability: str | None = None

    def _config(self, case: Case, index: int) -> dict[str, Any]:
        return {"recursion_limit": case.steps + 10,
                "configurable": {"thread_id": f"{self.name}-{self.mode}-{index}"}}

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        contest = Contest(plan, [lib.name for lib in libs])
        if self.mode == "async":
            cases = asyncio.run(self._ameasure(libs, plan, contest))
        else:
            cases = self._measure(libs, plan, contest)
        return contest.outcomes({name: case.steps for name, case in cases.items()})

    def _extra(self) -> dict[str, Any]:
        return {} if self.durability is None else {"durability": self.durability}

    def _measure(self, libs: Sequence[Lib], plan: Plan, contest: Contest) -> dict[str, Case]:
        cases: dict[str, Case] = {}
        with contextlib.ExitStack() as stack:
            for lib in libs:
                with contest.guard(lib.name):
                    saver = stack.enter_context(_saver(lib, stack.enter_context(
                        schema(f"steps_{lib.name}"))))
                    cases[lib.name] = self.build(self._env(lib, plan, saver))
            for index, lib_name in contest.turns():
                case = cases[lib_name]
                with contest.lap(lib_name):
                    contest.results[lib_name] = case.graph.invoke(
                        case.input, self._config(case, index), **self._extra())
        return cases

    async def _ameasure(self, libs: Sequence[Lib], plan: Plan,
                        contest: Contest) -> dict[str, Case]:
        cases: dict[str, Case] = {}
        async with contextlib.AsyncExitStack() as stack:
            for lib in libs:
                with contest.guard(lib.name):
                    name = stack.enter_context(schema(f"steps_{lib.name}"))
                    saver = await stack.enter_async_context(_asaver(lib, name))
                    cases[lib.name] = self.build(self._env(lib, plan, saver))
            for index, lib_name in contest.turns():
                case = cases[lib_name]
                with contest.lap(lib_name):
                    run = case.graph.ainvoke(case.input, self._config(case, index),
                                             **self._extra())
                    contest.results[lib_name] = await within(run, plan.timeout)
        return cases


def _steps(mode: Mode, durability: str | None, suffix: str) -> PostgresSteps:
    return PostgresSteps(
        name=f"loop200+postgres{suffix}", family=FAMILY, mode=mode, build=build_loop,
        size=200, quick_size=10, goal=0.5, durability=durability,
        doc=("One node looping through a conditional edge, a checkpoint saved every step "
             f"(Postgres; durability {durability or 'each default'})."))


WORKLOADS: list[Any] = [
    *(Throughput(count) for count in (1, 2, 4)),
    *(_steps(mode, "sync", "") for mode in ("sync", "async")),
    *(_steps(mode, None, "+default") for mode in ("sync", "async")),
]
