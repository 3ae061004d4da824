"""The two libraries under test behind one small adapter, so each workload is written once.

`load("tether")` and `load("langgraph")` give the same names (`StateGraph`, `START`, `END`, `Send`)
plus openers for the checkpointers; an import that fails raises here and becomes an error row.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

LibName = Literal["tether", "langgraph"]
SaverKind = Literal["memory", "sqlite"]
Synchronous = Literal["normal", "full"]

LIBRARIES: tuple[LibName, ...] = ("tether", "langgraph")

_REPO_SRC = Path(__file__).resolve().parent.parent / "src"


@dataclass(frozen=True)
class Lib:
    """The graph API of one library: the names a workload builds its graph from."""

    name: LibName
    StateGraph: Any
    START: str
    END: str
    Send: Any
    version: str
    origin: str

    @contextmanager
    def saver(
        self, kind: SaverKind | None, path: Path, synchronous: Synchronous | None = None
    ) -> Iterator[Any]:
        """Open a checkpointer for sync use (`None` gives no checkpointer); close it on exit.

        `synchronous` sets SQLite's `PRAGMA synchronous` for either library; `None` keeps each
        library's default (LangGraph's connection: SQLite's FULL; tether: NORMAL).
        """
        if kind is None:
            yield None
        elif kind == "memory":
            yield _import(f"{self.name}.checkpoint.memory").InMemorySaver()
        elif self.name == "langgraph":
            module = _import("langgraph.checkpoint.sqlite")
            conn = sqlite3.connect(path, check_same_thread=False)
            try:
                if synchronous is not None:
                    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
                yield module.SqliteSaver(conn)
            finally:
                conn.close()
        else:
            options = {} if synchronous is None else {"synchronous": synchronous}
            store = _import("tether.checkpoint.sqlite").SqliteSaver(str(path), **options)
            try:
                yield store
            finally:
                store.close()

    @asynccontextmanager
    async def asaver(
        self, kind: SaverKind | None, path: Path, synchronous: Synchronous | None = None
    ) -> AsyncIterator[Any]:
        """Open a checkpointer for async use, inside the running event loop; close it on exit."""
        if kind == "sqlite" and self.name == "langgraph":
            aiosqlite = _import("aiosqlite")
            module = _import("langgraph.checkpoint.sqlite.aio")
            async with aiosqlite.connect(path) as conn:
                if synchronous is not None:
                    await conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
                yield module.AsyncSqliteSaver(conn)
        else:
            # tether's SqliteSaver serves sync and async code alike (DESIGN.md §2).
            with self.saver(kind, path, synchronous) as store:
                yield store


def load(name: LibName) -> Lib:
    """Import one library's graph API; raises `ImportError` (or whatever the import raised)."""
    if name == "tether":
        _make_tether_importable()
    graph = _import(f"{name}.graph")
    types = _import(f"{name}.types")
    return Lib(
        name=name,
        StateGraph=graph.StateGraph,
        START=graph.START,
        END=graph.END,
        Send=types.Send,
        version=_version(name),
        origin=str(Path(graph.__file__ or "?").parent.parent),
    )


def _make_tether_importable() -> None:
    """Let `python -m bench` in a checkout import tether from `src/` when it is not installed."""
    if importlib.util.find_spec("tether") is None and (_REPO_SRC / "tether").is_dir():
        sys.path.insert(0, str(_REPO_SRC))


def _import(module: str) -> Any:
    return importlib.import_module(module)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        module = sys.modules.get(name)
        return str(getattr(module, "__version__", "unknown (not installed)"))
