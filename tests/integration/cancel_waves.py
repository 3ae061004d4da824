"""A program the memory-wave test runs in a process of its own: waves of concurrent runs on a
SQLite store, each cancelled at a random moment, with what the process holds after each wave
printed as one JSON line.

usage: python cancel_waves.py DB WAVES RUNS
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import sys
import threading
import time
from typing import Any, TypedDict

import tether
from tether.checkpoint.sqlite import SqliteSaver
from tether.graph import END, StateGraph


class State(TypedDict, total=False):
    count: int
    delay: float


async def async_step(state: State) -> dict[str, int]:
    await asyncio.sleep(state["delay"])
    return {"count": state.get("count", 0) + 1}


def sync_step(state: State) -> dict[str, int]:
    tether.sleep_sync(60)  # until the cancel: every wave holds all of tether's threads
    return {"count": state.get("count", 0) + 1}


def stubborn_step(state: State) -> dict[str, int]:
    time.sleep(state["delay"] * 3)  # ignores the cancel: abandoned after its grace
    return {"count": state.get("count", 0) + 1}


def graph_of(step: Any, store: SqliteSaver) -> Any:
    builder = StateGraph(State).add_node("step", step).set_entry_point("step")
    builder.add_conditional_edges("step", lambda s: END if s.get("count", 0) >= 30 else "step")
    return builder.compile(checkpointer=store)


def snapshot() -> dict[str, int]:
    """What the process holds: resident memory, live tasks, OS threads (the sync-node pool's
    apart), open descriptors."""
    gc.collect()
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    # The sync nodes' pool keeps the threads of nodes that stopped within their grace, idle,
    # for the next sync node (at most `max_threads`); the others are counted on their own.
    pool = sum(t.name == "tether-thread" for t in threading.enumerate())
    return {"rss_kb": rss, "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count() - pool, "pool_threads": pool,
            "fds": len(os.listdir("/proc/self/fd"))}


async def one(graph: Any, thread_id: str, rnd: random.Random) -> str:
    run = graph.astream({"delay": rnd.uniform(0.005, 0.02)},
                        {"configurable": {"thread_id": thread_id}, "cancel_grace": 0.05})

    async def consume() -> str:
        try:
            async for _ in run:
                pass
        except tether.RunCancelled:
            return "cancelled"
        return "completed"

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(rnd.uniform(0, 0.3))
    await run.cancel("wave")
    return await consumer


async def main(db: str, waves: int, runs: int) -> None:
    store = SqliteSaver(db)
    graphs = [graph_of(async_step, store)] * 7 + [graph_of(sync_step, store)] * 2 \
        + [graph_of(stubborn_step, store)]
    rnd = random.Random(7)
    for wave in range(waves):
        ends = await asyncio.gather(*[one(graphs[i % 10], f"w{wave}-{i}", rnd)
                                      for i in range(runs)])
        await asyncio.sleep(0.5)  # abandoned threads return from their sleep and exit
        print(json.dumps({"wave": wave + 1, "cancelled": ends.count("cancelled"),
                          **snapshot()}), flush=True)
    store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
