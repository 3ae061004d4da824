"""The long-term store: the same calls on LangGraph's InMemoryStore / SqliteStore /
PostgresStore and on tether's, compared.

Where LangGraph's own stores disagree with each other, tether follows one rule on every backend
and the comparison is made where the rules meet (docs/store.md lists the differences):
search order without a query (tether: creation order, as LangGraph's InMemoryStore within a
namespace; LangGraph's SQL stores: most recently updated first) is compared as a set on the SQL
backends and across namespaces, and filters are compared where LangGraph's three stores agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.conftest import drop_schema, new_schema, postgres_dsn

from ._support import Raised, outcome

VOCABULARY = ("cat", "dog", "fish", "tea", "coffee", "python", "rust", "sql")
DIMS = len(VOCABULARY) + 1


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A deterministic embedding: word counts over `VOCABULARY`, plus a constant."""
    return [[float(text.lower().count(word)) for word in VOCABULARY] + [0.1] for text in texts]


@dataclass
class Pair:
    """A LangGraph store and a tether store of one backend, opened alike."""

    backend: str
    ordered: bool  # does LangGraph's store return creation order without a query?
    open: Callable[[str, dict[str, Any]], Any]  # (library, store options) -> store


def _memory(lib: str, options: dict[str, Any]) -> Any:
    return importlib.import_module(f"{lib}.store.memory").InMemoryStore(**options)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """Each backend, opened in both libraries (and closed after the test)."""
    closers: list[Callable[[], Any]] = []
    schemas: list[str] = []

    def sqlite(lib: str, options: dict[str, Any]) -> Any:
        module = importlib.import_module(f"{lib}.store.sqlite")
        opening = module.SqliteStore.from_conn_string(str(tmp_path / f"{lib}.db"), **options)
        store = opening.__enter__()
        closers.append(lambda: opening.__exit__(None, None, None))
        store.setup()
        return store

    def postgres(lib: str, options: dict[str, Any]) -> Any:
        dsn, schema = postgres_dsn(), new_schema()
        schemas.append(schema)
        module = importlib.import_module(f"{lib}.store.postgres")
        if lib == "langgraph":
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
            opening = module.PostgresStore.from_conn_string(
                f"{dsn}?options=-csearch_path%3D{schema}", **options)
        else:
            opening = module.PostgresStore.from_conn_string(dsn, schema=schema, **options)
        store = opening.__enter__()
        closers.append(lambda: opening.__exit__(None, None, None))
        store.setup()
        return store

    openers = {"memory": (_memory, True), "sqlite": (sqlite, False),
               "postgres": (postgres, False)}
    opener, ordered = openers[request.param]
    if request.param == "postgres":
        postgres_dsn()
    yield Pair(request.param, ordered, opener)
    for close in reversed(closers):
        close()
    for schema in schemas:
        drop_schema(postgres_dsn(), schema)


def both(pair: Pair, options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """(LangGraph's store, tether's store)."""
    return pair.open("langgraph", options or {}), pair.open("tether", options or {})


def found(items: list[Any], *, ordered: bool) -> Any:
    """Search results as (namespace, key, value), in order or as a sorted list."""
    rows = [(tuple(i.namespace), i.key, i.value) for i in items]
    return rows if ordered else sorted(rows, key=repr)


def item(got: Any) -> Any:
    return None if got is None else (tuple(got.namespace), got.key, got.value)


def test_put_get_delete_and_overwrite_agree(pair: Pair) -> None:
    for_each = []
    for store in both(pair):
        store.put(("users", "u1"), "prefs", {"theme": "dark", "n": [1, 2, {"x": None}]})
        store.put(("users", "u1"), "other", {"v": 1})
        store.put(("users", "u1"), "other", {"v": 2})
        store.put(("users", "u2"), "prefs", {"theme": "light"})
        store.delete(("users", "u2"), "prefs")
        store.delete(("users", "nobody"), "prefs")
        for_each.append([item(store.get(("users", "u1"), "prefs")),
                         item(store.get(("users", "u1"), "other")),
                         item(store.get(("users", "u2"), "prefs")),
                         item(store.get(("users",), "prefs"))])
    assert for_each[1] == for_each[0]


def test_search_by_prefix_and_pages_agree(pair: Pair) -> None:
    results = []
    for store in both(pair):
        for i in range(5):
            store.put(("docs", "a" if i % 2 else "b"), f"k{i}", {"i": i})
        store.put(("docsx",), "sibling", {"i": 9})
        # Several namespaces: LangGraph's InMemoryStore groups them (first used first),
        # tether interleaves by creation: compared as sets. One namespace: in order.
        results.append([found(store.search(("docs",)), ordered=False),
                        found(store.search(("docs", "a")), ordered=pair.ordered),
                        len(store.search(("docs",), limit=2)),
                        len(store.search(("docs",), limit=2, offset=4)),
                        found(store.search(()), ordered=False)])
    assert results[1] == results[0]


@pytest.mark.parametrize("filter", [
    {"kind": "book"},
    {"kind": "book", "n": 3},
    {"kind": {"$eq": "film"}},
    {"kind": {"$ne": "film"}},
    {"n": {"$gt": 5}},
    {"n": {"$gte": 7}},
    {"n": {"$lt": 7}},
    {"n": {"$lte": 3}},
    {"kind": "nothing"},
])
def test_filters_agree(pair: Pair, filter: dict[str, Any]) -> None:
    results = []
    for store in both(pair):
        for key, value in [("a", {"kind": "book", "n": 3, "title": "alpha"}),
                           ("b", {"kind": "book", "n": 7, "title": "beta"}),
                           ("c", {"kind": "film", "n": 9, "title": "gamma"})]:
            store.put(("shop",), key, value)
        results.append(found(store.search(("shop",), filter=filter), ordered=pair.ordered))
    assert results[1] == results[0]


def test_list_namespaces_agree(pair: Pair) -> None:
    spaces = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"),
              ("a", "c", "f"), ("x", "y")]
    results = []
    for store in both(pair):
        for ns in spaces:
            store.put(ns, "k", {"v": 1})
        results.append([
            store.list_namespaces(),
            store.list_namespaces(prefix=("a", "b"), max_depth=3),
            store.list_namespaces(prefix=("a", "*", "f")),
            store.list_namespaces(suffix=("f",)),
            store.list_namespaces(max_depth=1),
            store.list_namespaces(limit=2, offset=1),
        ])
    assert results[1] == results[0]


def test_batches_agree(pair: Pair) -> None:
    results = []
    for store in both(pair):
        base = importlib.import_module(f"{type(store).__module__.split('.')[0]}.store.base")
        store.put(("ns",), "old", {"v": 0})
        got = store.batch([base.PutOp(("ns",), "new", {"v": 1}), base.GetOp(("ns",), "new"),
                           base.GetOp(("ns",), "old"), base.SearchOp(("ns",)),
                           base.ListNamespacesOp(), base.PutOp(("ns",), "old", None)])
        results.append([got[0], item(got[1]), item(got[2]),
                        found(got[3], ordered=pair.ordered), got[4], got[5],
                        item(store.get(("ns",), "old")), item(store.get(("ns",), "new"))])
    assert results[1] == results[0]


@pytest.mark.parametrize("namespace", [(), ("langgraph", "x"), ("a.b",), ("a", "")])
def test_bad_namespaces_are_refused_alike(pair: Pair, namespace: tuple[str, ...]) -> None:
    lg, tether = both(pair)
    expected = outcome(lambda: lg.put(namespace, "k", {"v": 1}))
    got = outcome(lambda: tether.put(namespace, "k", {"v": 1}))
    assert got[0] == expected[0] == "raised"
    assert got[1] == expected[1] and got[1] == "ValueError"
    assert isinstance(expected[1], Raised)


def test_semantic_search_ranks_and_scores_as_langgraphs_memory_store(pair: Pair) -> None:
    # LangGraph's SQL stores cannot index on this machine (pgvector is not installed on the
    # server, and this Python's sqlite3 cannot load sqlite-vec); tether's need neither. Every
    # tether backend is compared with LangGraph's InMemoryStore.
    index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
    reference = _memory("langgraph", {"index": index})
    results = []
    for store in (reference, pair.open("tether", {"index": index})):
        store.put(("docs",), "pets", {"text": "a cat and a dog"})
        store.put(("docs",), "drinks", {"text": "tea or coffee, coffee"})
        store.put(("docs",), "code", {"text": "python and rust and sql"})
        store.put(("docs",), "fish", {"text": "fish"})
        store.put(("docs",), "mixed", {"title": "x", "text": "cat cat tea"})
        runs = []
        for query in ("cat", "coffee", "rust and sql", "dog fish"):
            hits = store.search(("docs",), query=query, limit=3)
            runs.append([(h.key, h.score) for h in hits])
        runs.append([(h.key, h.score) for h in store.search(("docs",), query="cat",
                                                            filter={"text": "fish"})])
        results.append(runs)
    expected, got = results
    assert [[key for key, _ in run] for run in got] == [[key for key, _ in run]
                                                        for run in expected]
    assert [[score for _, score in run] for run in got] == [
        pytest.approx([score for _, score in run], abs=1e-4) for run in expected]


def test_ttl_puts_are_accepted_and_readable_alike(pair: Pair) -> None:
    if pair.backend == "memory":
        lg, tether = both(pair)
        assert outcome(lambda: lg.put(("ns",), "k", {"v": 1}, ttl=5)) == (
            "raised", Raised(NotImplementedError()))
        tether.put(("ns",), "k", {"v": 1}, ttl=5)  # tether's memory store supports TTLs
        assert tether.get(("ns",), "k").value == {"v": 1}
        return
    results = []
    for store in both(pair, {"ttl": {"default_ttl": 10, "refresh_on_read": True}}):
        store.put(("ns",), "k", {"v": 1}, ttl=5)
        store.put(("ns",), "d", {"v": 2})
        results.append([item(store.get(("ns",), "k")), item(store.get(("ns",), "d")),
                        store.sweep_ttl()])
    assert results[1] == results[0]


VALUE = {"title": "Tides", "n": 3, "ok": True, "none": None, "tags": ["sea", "moon"],
         "meta": {"lang": "en", "pages": [1, 2]}, "chunks": [{"t": "a"}, {"t": "b"}, {"x": 1}],
         "unicode": "é"}


@pytest.mark.parametrize("path", [
    "$", "", "title", "n", "ok", "none", "missing", "tags", "tags[0]", "tags[-1]", "tags[5]",
    "tags[*]", "meta", "meta.lang", "meta.pages[1]", "chunks[*].t", "chunks[1].t", "*",
    "meta.*", "{title,meta.lang}", "{title,missing,n}", "chunks[*]", "unicode",
])
def test_the_text_of_an_index_path_agrees(path: str) -> None:
    texts = [importlib.import_module(f"{lib}.store.base").get_text_at_path(VALUE, path)
             for lib in ("langgraph", "tether")]
    assert texts[1] == texts[0]
    tokens = [importlib.import_module(f"{lib}.store.base").tokenize_path(path)
              for lib in ("langgraph", "tether")]
    assert tokens[1] == tokens[0]
