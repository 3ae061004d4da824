"""The module paths a LangGraph program imports, where tether has the feature: each name
resolves in both libraries, and the savers' LangGraph idioms (`setup()`, `from_conn_string`,
`SqliteSaver(sqlite3.connect(...))`, the async savers) run a graph alike."""

from __future__ import annotations

import importlib
import operator
import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from conformance.conftest import fresh_schema

from ._support import LIBRARIES, thread

PATHS: dict[str, tuple[str, ...]] = {
    "checkpoint.base": ("BaseCheckpointSaver",),
    "checkpoint.memory": ("InMemorySaver", "MemorySaver"),
    "checkpoint.sqlite": ("SqliteSaver",),
    "checkpoint.sqlite.aio": ("AsyncSqliteSaver",),
    "checkpoint.postgres": ("PostgresSaver",),
    "checkpoint.postgres.aio": ("AsyncPostgresSaver",),
    "store.base": ("BaseStore", "Item", "SearchItem", "GetOp", "PutOp", "SearchOp",
                   "ListNamespacesOp", "MatchCondition", "IndexConfig", "TTLConfig",
                   "InvalidNamespaceError", "ensure_embeddings", "get_text_at_path",
                   "tokenize_path", "NamespacePath", "Op", "Result"),
    "store.base.embed": ("ensure_embeddings", "EmbeddingsFunc", "AEmbeddingsFunc"),
    "store.memory": ("InMemoryStore",),
    "store.sqlite": ("SqliteStore", "AsyncSqliteStore"),
    "store.sqlite.base": ("SqliteStore",),
    "store.sqlite.aio": ("AsyncSqliteStore",),
    "store.postgres": ("PostgresStore", "AsyncPostgresStore", "PoolConfig"),
    "store.postgres.base": ("PostgresStore", "PoolConfig"),
    "store.postgres.aio": ("AsyncPostgresStore",),
    "cache.base": ("BaseCache",),
    "cache.memory": ("InMemoryCache",),
    "cache.sqlite": ("SqliteCache",),
    "types": ("CachePolicy", "RetryPolicy", "Command", "Send", "interrupt", "StreamWriter",
              "Durability", "All", "Interrupt", "StateSnapshot"),
    "graph.state": ("StateGraph", "CompiledStateGraph"),
    "typing": ("StateT", "ContextT", "InputT", "OutputT", "NodeInputT", "StateLike"),
}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("module", sorted(PATHS))
def test_the_name_resolves(library: str, module: str) -> None:
    imported = importlib.import_module(f"{library}.{module}")
    missing = [name for name in PATHS[module] if not hasattr(imported, name)]
    assert missing == []


class Count(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def build(library: str) -> Any:
    graph = importlib.import_module(f"{library}.graph")
    builder = graph.StateGraph(Count)
    builder.add_node("inc", lambda s: {"n": s["n"] + 1, "log": ["inc"]})
    builder.add_edge(graph.START, "inc")
    builder.add_edge("inc", graph.END)
    return builder


@pytest.mark.parametrize("library", LIBRARIES)
def test_sqlite_saver_on_a_sqlite3_connection(library: str, tmp_path: Path) -> None:
    sqlite = importlib.import_module(f"{library}.checkpoint.sqlite")
    conn = sqlite3.connect(tmp_path / "cp.sqlite", check_same_thread=False)
    saver = sqlite.SqliteSaver(conn)
    saver.setup()
    app = build(library).compile(checkpointer=saver)
    app.invoke({"n": 0, "log": []}, thread("t"))
    assert app.invoke({"n": 10, "log": []}, thread("t")) == {"n": 11, "log": ["inc", "inc"]}
    assert app.get_state(thread("t")).values == {"n": 11, "log": ["inc", "inc"]}
    if library == "tether":
        saver.close()
    conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("library", LIBRARIES)
async def test_async_sqlite_saver_from_conn_string_and_setup(library: str,
                                                             tmp_path: Path) -> None:
    aio = importlib.import_module(f"{library}.checkpoint.sqlite.aio")
    async with aio.AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
        await saver.setup()
        app = build(library).compile(checkpointer=saver)
        assert await app.ainvoke({"n": 5, "log": []}, thread("t")) == {"n": 6, "log": ["inc"]}
        assert (await app.aget_state(thread("t"))).values["n"] == 6


@pytest.mark.postgres
@pytest.mark.parametrize("library", LIBRARIES)
def test_postgres_saver_from_conn_string_and_setup(library: str) -> None:
    postgres = importlib.import_module(f"{library}.checkpoint.postgres")
    with fresh_schema() as (dsn, schema):
        url = f"{dsn}?options=-csearch_path%3D{schema}"
        _create(dsn, schema)
        with postgres.PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            app = build(library).compile(checkpointer=saver)
            assert app.invoke({"n": 1, "log": []}, thread("t")) == {"n": 2, "log": ["inc"]}


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.parametrize("library", LIBRARIES)
async def test_async_postgres_saver_from_conn_string_and_setup(library: str) -> None:
    aio = importlib.import_module(f"{library}.checkpoint.postgres.aio")
    with fresh_schema() as (dsn, schema):
        url = f"{dsn}?options=-csearch_path%3D{schema}"
        _create(dsn, schema)
        async with aio.AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            app = build(library).compile(checkpointer=saver)
            got = await app.ainvoke({"n": 1, "log": []}, thread("t"))
            assert got == {"n": 2, "log": ["inc"]}


def _create(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]


def test_an_aiosqlite_connection_is_refused_with_the_way_out() -> None:
    from tether.checkpoint.sqlite.aio import AsyncSqliteSaver

    with pytest.raises(TypeError, match="from_conn_string"):
        AsyncSqliteSaver(object())  # type: ignore[arg-type]
