"""The long-term stores every test in this folder runs against, each through its sync and its
async methods, with a fake clock.

Adding a backend is one entry in `BACKENDS`. The Postgres one opens each store on a fresh schema
(dropped after the test) and skips without a server, or fails with `TETHER_REQUIRE_PG=1`
(`conformance.conftest.postgres_dsn`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.conftest import drop_schema, new_schema, postgres_dsn
from tether.store.batched import BatchedStore

Opener = Callable[..., BatchedStore]
"""(tmp dir, **store options) -> a store; the same tmp dir reopens the same data."""


class FakeClock:
    """A clock for stores: starts at a fixed time and moves only when told."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Backend:
    """How to open a store of one kind (`durable`: a second handle sees the same data)."""

    name: str
    open: Opener
    durable: bool = False
    sql: bool = False
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


def _memory(_tmp: Path, **options: Any) -> BatchedStore:
    from tether.store.memory import InMemoryStore

    return InMemoryStore(**options)


def _sqlite(tmp: Path, **options: Any) -> BatchedStore:
    from tether.store.sqlite import SqliteStore

    return SqliteStore(tmp / "store.db", **options)


_schemas: dict[Path, str] = {}


def _postgres(tmp: Path, **options: Any) -> BatchedStore:
    from tether.store.postgres import PostgresStore

    dsn = postgres_dsn()
    schema = _schemas.setdefault(tmp, new_schema())
    return PostgresStore(dsn, schema=schema, **options)


BACKENDS = [
    Backend("memory", _memory),
    Backend("sqlite", _sqlite, durable=True, sql=True),
    Backend("postgres", _postgres, durable=True, sql=True, marks=(pytest.mark.postgres,)),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `durable_only` exist only for backends whose data outlives a handle."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        chosen = callspec.params.get("backend") if callspec is not None else None
        if (isinstance(chosen, Backend) and not chosen.durable
                and item.get_closest_marker("durable_only")):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend in turn."""
    yield request.param
    while _schemas:
        _tmp, schema = _schemas.popitem()
        drop_schema(postgres_dsn(), schema)


@pytest.fixture
def clock() -> FakeClock:
    """The time every store of the test reads."""
    return FakeClock()


class Api:
    """A store called through its sync methods, or through its async ones on one event loop
    (kept for the test, so pooled connections are reused): tests are written once."""

    def __init__(self, store: BatchedStore, runner: asyncio.Runner | None) -> None:
        self.store = store
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        if self._runner is None:
            return getattr(self.store, name)
        method = getattr(self.store, "a" + name)
        runner = self._runner
        return lambda *args, **kwargs: runner.run(method(*args, **kwargs))


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Iterator[asyncio.Runner | None]:
    """None for the sync methods, an event loop for the async ones."""
    if request.param == "sync":
        yield None
        return
    with asyncio.Runner() as runner:
        yield runner


@dataclass
class Stores:
    """Opens stores of the backend under test (closed after the test) and wraps them in `Api`."""

    backend: Backend
    tmp: Path
    clock: FakeClock
    runner: asyncio.Runner | None
    opened: list[BatchedStore] = field(default_factory=list)

    def open(self, **options: Any) -> Api:
        """A store of the backend on the test's data, with the fake clock."""
        options.setdefault("clock", self.clock)
        store = self.backend.open(self.tmp, **options)
        self.opened.append(store)
        return Api(store, self.runner)

    def close(self) -> None:
        for store in reversed(self.opened):
            close = getattr(store, "aclose", None)
            if close is not None and self.runner is not None:
                self.runner.run(close())
            else:
                store.close()


@pytest.fixture
def stores(backend: Backend, tmp_path: Path, clock: FakeClock,
           mode: asyncio.Runner | None) -> Iterator[Stores]:
    """Opens stores of each backend, called sync or async."""
    made = Stores(backend, tmp_path, clock, mode)
    yield made
    made.close()


@pytest.fixture
def api(stores: Stores) -> Api:
    """A store of each backend, called sync or async."""
    return stores.open()


VOCABULARY = ("cat", "dog", "fish", "tea", "coffee", "python", "rust", "sql")


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A deterministic embedding: how often each word of `VOCABULARY` occurs, plus a small
    constant so that no vector is zero."""
    return [[float(text.lower().count(word)) for word in VOCABULARY] + [0.1] for text in texts]


async def aembed(texts: Sequence[str]) -> list[list[float]]:
    """`embed`, as an async function."""
    await asyncio.sleep(0)
    return embed(texts)


DIMS = len(VOCABULARY) + 1
