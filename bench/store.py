"""The long-term store (SQLite): `put`, `get` and a filtered `search`, per call, on LangGraph's
`SqliteStore` (`AsyncSqliteStore` for async rows) and tether's.

Each library gets its own file, opened once per row with its defaults (LangGraph's
`from_conn_string`: SQLite's rollback journal and `synchronous=FULL`; tether: WAL and
`synchronous=NORMAL`) unless `--sqlite-sync` sets `PRAGMA synchronous` for both. A repeat makes
`calls` calls on a store that already holds `ITEMS` items; the row compares what the calls
returned (a search finds 5 of the 200 items, whole, compared as a set: LangGraph's SQL stores
order by last update, tether by creation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.libs import Lib, Synchronous
from bench.timing import Contest, Outcome, Plan
from bench.workload import GOAL, MODES, Mode

ORDER = 60
ITEMS = 200
NS = ("users", "u1", "memories")


def _value(i: int) -> dict[str, Any]:
    return {"text": f"memory number {i}", "kind": "a" if i % 40 == 0 else "b", "n": i,
            "tags": ["x", "y"], "meta": {"source": "chat", "turn": i}}


@dataclass(frozen=True)
class StoreCall:
    """One store operation timed per call on each library."""

    name: str
    mode: Mode
    calls: int
    quick_calls: int
    run: Callable[[Any, int], Any]
    """(store, call index) -> what the call returns (sync methods)."""
    arun: Callable[[Any, int], Awaitable[Any]]
    """(store, call index) -> what the call returns (async methods)."""
    family: str = "store"
    unit: str = "call"
    goal: float = GOAL

    @property
    def doc(self) -> str:
        return f"store {self.name} on SQLite, per call ({ITEMS} items stored)"

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        calls = self.quick_calls if plan.quick else self.calls
        contest = Contest(plan, [lib.name for lib in libs])
        with ExitStack() as stack:
            stores: dict[str, Any] = {}
            runners: dict[str, asyncio.Runner] = {}
            for lib in libs:
                with contest.guard(lib.name):
                    runner = stack.enter_context(asyncio.Runner())
                    runners[lib.name] = runner
                    path = plan.tmpdir / f"store-{self.name}-{self.mode}-{lib.name}.db"
                    stores[lib.name] = self._open(lib.name, path, plan.sqlite_synchronous,
                                                  runner, stack)
            for index, name in contest.turns():
                store, runner = stores[name], runners[name]
                with contest.lap(name):
                    if self.mode == "sync":
                        found = [self.run(store, index * calls + i) for i in range(calls)]
                    else:
                        found = runner.run(self._arun_all(store, index * calls, calls))
                contest.results[name] = found
        return contest.outcomes(per=calls)

    async def _arun_all(self, store: Any, start: int, calls: int) -> list[Any]:
        return [await self.arun(store, start + i) for i in range(calls)]

    def _open(self, lib: str, path: Path, synchronous: Synchronous | None,
              runner: asyncio.Runner, stack: ExitStack) -> Any:
        if self.mode == "sync":
            module = __import__(f"{lib}.store.sqlite", fromlist=["SqliteStore"])
            store = stack.enter_context(module.SqliteStore.from_conn_string(
                str(path), **_tether_options(lib, synchronous)))
            _lg_pragma(lib, store, synchronous, runner)
            store.setup()
            for i in range(ITEMS):
                store.put(NS, f"k{i}", _value(i))
            return store
        module = __import__(f"{lib}.store.sqlite.aio", fromlist=["AsyncSqliteStore"])
        opening = module.AsyncSqliteStore.from_conn_string(
            str(path), **_tether_options(lib, synchronous))
        store = runner.run(opening.__aenter__())
        stack.callback(lambda: runner.run(opening.__aexit__(None, None, None)))
        _lg_pragma(lib, store, synchronous, runner)

        async def fill() -> None:
            await store.setup()
            for i in range(ITEMS):
                await store.aput(NS, f"k{i}", _value(i))

        runner.run(fill())
        return store


def _tether_options(lib: str, synchronous: Synchronous | None) -> dict[str, Any]:
    return {"synchronous": synchronous} if lib == "tether" and synchronous else {}


def _lg_pragma(lib: str, store: Any, synchronous: Synchronous | None,
               runner: asyncio.Runner) -> None:
    if lib != "langgraph" or synchronous is None:
        return
    statement = f"PRAGMA synchronous = {synchronous.upper()}"
    result = store.conn.execute(statement)
    if asyncio.iscoroutine(result) or hasattr(result, "__await__"):
        runner.run(_awaited(result))


async def _awaited(awaitable: Any) -> None:
    await awaitable


def _put(store: Any, i: int) -> None:
    store.put(NS, f"new{i}", _value(i))


async def _aput(store: Any, i: int) -> None:
    await store.aput(NS, f"new{i}", _value(i))


def _get(store: Any, i: int) -> Any:
    return store.get(NS, f"k{i % ITEMS}").value


async def _aget(store: Any, i: int) -> Any:
    return (await store.aget(NS, f"k{i % ITEMS}")).value


def _search(store: Any, i: int) -> Any:
    return sorted(item.key for item in store.search(NS[:2], filter={"kind": "a"}, limit=10))


async def _asearch(store: Any, i: int) -> Any:
    return sorted(item.key for item in await store.asearch(NS[:2], filter={"kind": "a"},
                                                           limit=10))


def _rows() -> list[StoreCall]:
    calls = {"put": (_put, _aput, 200, 10), "get": (_get, _aget, 500, 20),
             "search": (_search, _asearch, 100, 10)}
    return [StoreCall(f"store_{name}", mode, n, quick, run, arun)
            for name, (run, arun, n, quick) in calls.items() for mode in MODES]


WORKLOADS = _rows()
