"""Graphs that `tether worker` processes serve in the tests, and the ledger their nodes keep.

Every node execution is recorded in the table `ledger` of the test's schema (which worker
process ran which node of which run, from when to when), so tests can check that a task that
finished before a crash is not run again, and that no run is ever driven by two workers at once.
The schema comes from `$TETHER_TEST_SCHEMA`, the server from `$TETHER_TEST_PG_DSN`.

The pipeline's `slow` node sleeps `context["slow"]` seconds on its first attempt in a run only:
after a crash, its second attempt (on another worker) finishes at once, and the run's state is
the same as that of a run that was never interrupted.
"""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, Any, TypedDict

import psycopg

import tether
from tether.graph import END, START, StateGraph
from tether.runtime import get_runtime

SCHEMA_ENV = "TETHER_TEST_SCHEMA"
DSN_ENV = "TETHER_TEST_PG_DSN"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"

LEDGER = """CREATE TABLE IF NOT EXISTS ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL, node text NOT NULL, pid integer NOT NULL,
    started_at double precision NOT NULL, ended_at double precision)"""
"""Times are `time.time()` of the worker (one machine: comparable across processes)."""


def connect(schema: str | None = None) -> psycopg.Connection[Any]:
    """A connection to the test schema (autocommit)."""
    schema = schema or os.environ[SCHEMA_ENV]
    return psycopg.connect(os.environ.get(DSN_ENV, DEFAULT_DSN), autocommit=True,
                           options=f"-c search_path={schema}")


async def _enter(config: dict[str, Any], node: str) -> tuple[int, int]:
    """Record an execution of `node`: (its ledger id, how many came before it in this run)."""
    run_id = str(get_runtime().run_id)
    async with await psycopg.AsyncConnection.connect(
            os.environ.get(DSN_ENV, DEFAULT_DSN), autocommit=True,
            options=f"-c search_path={os.environ[SCHEMA_ENV]}") as conn:
        cur = await conn.execute(
            "INSERT INTO ledger (run_id, node, pid, started_at) VALUES (%s, %s, %s, %s) "
            "RETURNING id, (SELECT count(*) FROM ledger WHERE run_id = %s AND node = %s)",
            (run_id, node, os.getpid(), time.time(), run_id, node))
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


async def _leave(entry: int) -> None:
    async with await psycopg.AsyncConnection.connect(
            os.environ.get(DSN_ENV, DEFAULT_DSN), autocommit=True,
            options=f"-c search_path={os.environ[SCHEMA_ENV]}") as conn:
        await conn.execute("UPDATE ledger SET ended_at = %s WHERE id = %s", (time.time(), entry))


class Pipeline(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def _recorded(name: str, *, sleeps: bool = False) -> Any:
    async def node(state: Pipeline, config: dict[str, Any]) -> dict[str, Any]:
        entry, before = await _enter(config, name)
        context = get_runtime().context or {}
        if sleeps and before == 0:
            await tether.sleep(float(context.get("slow", 0.0)))
        await _leave(entry)
        return {"log": [name]}

    node.__name__ = name
    return node


def _pipeline() -> Any:
    """prep → (fast, slow in one step) → done; see the module docstring for `slow`."""
    builder = StateGraph(Pipeline)
    builder.add_node("prep", _recorded("prep"))
    builder.add_node("fast", _recorded("fast"))
    builder.add_node("slow", _recorded("slow", sleeps=True))
    builder.add_node("done", _recorded("done"))
    builder.add_edge(START, "prep")
    builder.add_edge("prep", "fast")
    builder.add_edge("prep", "slow")
    builder.add_edge(["fast", "slow"], "done")
    builder.add_edge("done", END)
    return builder.compile()


PIPELINE_END = {"log": ["prep", "fast", "slow", "done"]}
"""The final state of an uninterrupted pipeline run from `{"log": []}`."""


class Ticks(TypedDict, total=False):
    n: int
    until: int
    pause: float


async def _tick(state: Ticks, config: dict[str, Any]) -> dict[str, Any]:
    entry, _before = await _enter(config, "tick")
    await tether.sleep(float(state.get("pause") or 0.0))
    await _leave(entry)
    return {"n": state.get("n", 0) + 1}


def _counter() -> Any:
    """`tick` `until` times, each pausing `pause` seconds (cooperatively)."""
    builder = StateGraph(Ticks)
    builder.add_node("tick", _tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges(
        "tick", lambda s: END if s.get("n", 0) >= s.get("until", 1) else "tick")
    return builder.compile()


class Nap(TypedDict, total=False):
    seconds: float
    log: Annotated[list[str], operator.add]


async def _nap(state: Nap) -> dict[str, Any]:
    await tether.sleep(float(state.get("seconds") or 0.0))
    return {"log": ["nap"]}


def _sleeper() -> Any:
    """One node that sleeps `seconds` (waking at once when its run is cancelled)."""
    builder = StateGraph(Nap)
    builder.add_node("nap", _nap)
    builder.add_edge(START, "nap")
    builder.add_edge("nap", END)
    return builder.compile()


pipeline = _pipeline()
counter = _counter()
sleeper = _sleeper()
