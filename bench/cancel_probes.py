"""The cancellation scenarios of `bench/cancel.py`, each written for both libraries.

A probe builds a graph, starts a run, waits (untimed) until the run is inside its node, then
times the cancel until the run has stopped. tether's way: `run = graph.astream(...)` (or
`graph.start(...)`) and `await run.cancel()`, which returns once the run is terminal and its final
checkpoint is committed. LangGraph's way: consume `graph.astream(...)` in an asyncio task, then
`task.cancel()` and await the task.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from bench.cancel_nodes import SpinState, spin
from bench.libs import Lib

LONG_SLEEP = 3600.0
"""What an async node awaits: longer than any benchmark, so only a cancel ends it."""
FAST_STEPS = 3
"""Supersteps the looping node completes (each checkpointed) before it starts its long await."""
CHUNK = 0.001
"""A sync node works in chunks of this many seconds, and looks for a cancel between chunks."""


class Counter(TypedDict):
    count: int


class Gate:
    """Lets nodes tell the benchmark that `expected` runs have entered them; thread-safe."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._count = 0
        self._expected = 1

    def arm(self, expected: int = 1) -> None:
        """Get ready for the next `expected` entries (call on the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._count, self._expected = 0, expected

    def enter(self) -> None:
        """A node has started (call on the event loop)."""
        self._count += 1
        if self._count >= self._expected and self._event is not None:
            self._event.set()

    def enter_from_thread(self) -> None:
        """A node has started (call from a worker thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.enter)

    async def wait(self) -> None:
        assert self._event is not None, "arm() the gate first"
        await self._event.wait()


@dataclass
class Stopwatch:
    """When a node returned (`time.perf_counter()`), stamped from whatever thread ran it."""

    at: float | None = None

    def mark(self) -> None:
        self.at = time.perf_counter()

    async def wait(self, limit: float) -> float:
        """The stamp, polling until the node has returned (the poll does not skew the stamp)."""
        deadline = time.perf_counter() + limit
        while self.at is None:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the node did not return within {limit:g} s")
            await asyncio.sleep(CHUNK)
        return self.at


# --- stopping a run, each library's way -----------------------------------------------------


async def _consume(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass


def launch(lib: Lib, graph: Any, graph_input: Any, config: dict[str, Any] | None) -> Any:
    """Start a run in the background: tether's handle, or LangGraph's consuming task."""
    if lib.name == "tether":
        return graph.astream(graph_input, config)
    return asyncio.create_task(_consume(graph.astream(graph_input, config)))


async def stop(lib: Lib, handle: Any) -> str | None:
    """Cancel a run from `launch` and return when it has ended; tether's run id, if any.

    Raises:
        RuntimeError: the run ended some other way than cancelled.
    """
    if lib.name == "tether":
        info = await handle.cancel()
        if info.status.value != "cancelled":
            raise RuntimeError(f"tether's run ended {info.status.value}, not cancelled")
        return str(info.run_id)
    task: asyncio.Task[None] = handle
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the benchmark itself is being cancelled (a timeout), not just the run
    if not task.cancelled():
        raise RuntimeError("LangGraph's run ended before the cancel reached it")
    return None


# --- 1. an async node, cancelled at its await ----------------------------------------------


def build_sleeper(lib: Lib, checkpointer: Any, gate: Gate) -> Any:
    """One node looping through a conditional edge; after `FAST_STEPS` steps it awaits a long
    sleep, where the cancel finds it."""

    async def work(state: Counter) -> dict[str, int]:
        if state["count"] >= FAST_STEPS:
            gate.enter()
            await asyncio.sleep(LONG_SLEEP)
        return {"count": state["count"] + 1}

    def again(state: Counter) -> str:
        return "work"

    graph = lib.StateGraph(Counter)
    graph.add_node("work", work)
    graph.add_edge(lib.START, "work")
    graph.add_conditional_edges("work", again)
    return graph.compile(checkpointer=checkpointer)


async def cancel_sleeper(
    lib: Lib, graph: Any, gate: Gate, config: dict[str, Any] | None
) -> tuple[float, str | None]:
    """Seconds from the cancel until the run has ended, and tether's run id."""
    gate.arm()
    handle = launch(lib, graph, {"count": 0}, config)
    await gate.wait()
    started = time.perf_counter()
    run_id = await stop(lib, handle)
    return time.perf_counter() - started, run_id


def check_durable(path: Path, run_id: str) -> None:
    """Read, through a connection of its own, that tether's run is `cancelled` with a final
    checkpoint: committed, so durable, by the time `cancel()` returned.

    Raises:
        RuntimeError: it is not.
    """
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(
            "SELECT status, checkpoint_id FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        stored = (
            found is not None
            and found[1] is not None
            and conn.execute(
                "SELECT 1 FROM checkpoints WHERE checkpoint_id = ?", (found[1],)
            ).fetchone()
            is not None
        )
    finally:
        conn.close()
    if found is None or found[0] != "cancelled" or not stored:
        raise RuntimeError(f"after cancel() returned, the file has {found} for the run")


# --- 2. a sync node in a worker thread --------------------------------------------------------


def _burn(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def build_worker(lib: Lib, gate: Gate, stopped: Stopwatch, *, seconds: float, cpu: bool) -> Any:
    """START -> work -> END, `work` a sync node doing `seconds` of work in 1 ms chunks (sleeps,
    like blocking I/O, or a busy loop holding the GIL with `cpu`).

    On tether it calls `tether.cancelled()` between chunks; LangGraph gives a sync node nothing to
    call, so there it works on to its end whatever happens to the run.
    """
    polls: Callable[[], bool] = lambda: False  # noqa: E731 - LangGraph: nothing to ask
    if lib.name == "tether":
        from tether import cancelled

        polls = cancelled
    chunk: Callable[[float], None] = _burn if cpu else time.sleep

    def work(state: Counter) -> dict[str, int]:
        gate.enter_from_thread()
        until = time.monotonic() + seconds
        while time.monotonic() < until and not polls():
            chunk(CHUNK)
        stopped.mark()
        return {"count": state["count"] + 1}

    graph = lib.StateGraph(Counter)
    graph.add_node("work", work)
    graph.add_edge(lib.START, "work")
    graph.add_edge("work", lib.END)
    return graph.compile()


async def stop_worker(
    lib: Lib, graph: Any, gate: Gate, stopped: Stopwatch, seconds: float
) -> float:
    """Seconds from the cancel until the run has ended *and* its node has returned."""
    gate.arm()
    stopped.at = None
    handle = launch(lib, graph, {"count": 0}, None)
    await gate.wait()
    started = time.perf_counter()
    await stop(lib, handle)
    ended = time.perf_counter()
    node_returned = await stopped.wait(seconds + 5.0)
    return max(ended, node_returned) - started


# --- 3. a CPU loop that only a kill stops -------------------------------------------------------


@dataclass
class Spinner:
    """The deaf CPU-loop node (`cancel_nodes.spin`) as each library can run it."""

    graph: Any
    stopped: Stopwatch = field(default_factory=Stopwatch)


def build_spinner(lib: Lib, grace: float) -> Spinner:
    """tether: `spin` in a worker process (`isolation="process"`, `cancel_grace=grace`).
    LangGraph has no isolation: `spin` is an ordinary sync node, in a thread."""
    stopped = Stopwatch()
    graph = lib.StateGraph(SpinState)
    if lib.name == "tether":
        graph.add_node("spin", spin, isolation="process", cancel_grace=grace)
    else:

        def spin_here(state: SpinState) -> dict[str, Any]:
            try:
                return spin(state)
            finally:
                stopped.mark()

        graph.add_node("spin", spin_here)
    graph.add_edge(lib.START, "spin")
    graph.add_edge("spin", lib.END)
    return Spinner(graph.compile(), stopped)


async def kill_spinner(lib: Lib, spinner: Spinner, flag: Path, seconds: float) -> float:
    """Seconds from the cancel until the run has ended and its node no longer runs (tether:
    the worker process is dead; LangGraph: the thread's call has returned)."""
    spinner.stopped.at = None
    state = {"count": 0, "flag": str(flag), "seconds": seconds}
    handle = launch(lib, spinner.graph, state, None)
    # The node is running once the flag exists: a worker process (tether) can only say so
    # through the file system, and a stat every 2 ms is nothing to the loop.
    while not flag.exists():  # noqa: ASYNC110, ASYNC240
        await asyncio.sleep(0.002)
    started = time.perf_counter()
    await stop(lib, handle)
    ended = time.perf_counter()
    if lib.name == "tether":
        return ended - started  # the worker was killed (and joined) before cancel() returned
    return max(ended, await spinner.stopped.wait(seconds + 5.0)) - started


# --- 4. many runs at once -----------------------------------------------------------------------


def build_parked(lib: Lib, gate: Gate) -> Any:
    """START -> wait -> END, `wait` an async node that awaits a long sleep."""

    async def wait(state: Counter) -> dict[str, int]:
        gate.enter()
        await asyncio.sleep(LONG_SLEEP)
        return {"count": state["count"] + 1}

    graph = lib.StateGraph(Counter)
    graph.add_node("wait", wait)
    graph.add_edge(lib.START, "wait")
    graph.add_edge("wait", lib.END)
    return graph.compile()


def start_many(lib: Lib, graph: Any, n: int) -> list[Any]:
    """Start `n` runs: tether `graph.start(...)` each; LangGraph a consuming task each."""
    if lib.name == "tether":
        return [graph.start({"count": 0}) for _ in range(n)]
    return [asyncio.create_task(_consume(graph.astream({"count": 0}))) for _ in range(n)]


async def cancel_many(lib: Lib, handles: list[Any]) -> None:
    """Cancel every run and return when all have ended.

    Raises:
        RuntimeError: a run ended some other way than cancelled.
    """
    if lib.name == "tether":
        infos = await asyncio.gather(*(run.cancel() for run in handles))
        bad = sum(1 for info in infos if info.status.value != "cancelled")
    else:
        for task in handles:
            task.cancel()
        await asyncio.gather(*handles, return_exceptions=True)
        bad = sum(1 for task in handles if not task.cancelled())
    if bad:
        raise RuntimeError(f"{bad} of {len(handles)} runs were not cancelled")
