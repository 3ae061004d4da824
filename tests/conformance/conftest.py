"""The backends every conformance test runs against, and small builders of store records.

Adding a backend is one entry in `BACKENDS`. The Postgres one carries `pytest.mark.postgres` and
opens each store on a fresh schema, dropped after the test; `postgres_dsn()` is the one place
every Postgres test learns the server's address (and skips, or fails in CI, without one).
A backend that has a known gap lists it in `KNOWN_GAPS`: the test then runs as a strict xfail,
so fixing the gap turns it into a failure to clean up.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tether.checkpoint.base import CheckpointRecord, CheckpointStore, WriteRecord
from tether.checkpoint.ids import uuid7
from tether.checkpoint.memory import InMemorySaver
from tether.types import RunInfo, RunStatus

RawSql = Callable[[CheckpointStore, str, tuple[Any, ...]], None]


@dataclass(frozen=True)
class Backend:
    """How to get a store of one kind.

    Attributes:
        open: a new, empty store, given a fresh temporary directory.
        reopen: a second handle on the same data (durable backends), or None.
        raw_sql: run one statement on the backend's database, bypassing the store (SQL
            backends), or None.
    """

    name: str
    open: Callable[[Path], CheckpointStore]
    reopen: Callable[[CheckpointStore, Path], CheckpointStore] | None = None
    raw_sql: RawSql | None = None
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


def _sqlite(tmp: Path) -> CheckpointStore:
    from tether.checkpoint.sqlite import SqliteSaver

    return SqliteSaver(tmp / "store.db")


def _sqlite_reopen(_store: CheckpointStore, tmp: Path) -> CheckpointStore:
    from tether.checkpoint.sqlite import SqliteSaver

    return SqliteSaver(tmp / "store.db")


def _sqlite_raw(store: CheckpointStore, sql: str, params: tuple[Any, ...]) -> None:
    conn = sqlite3.connect(str(store.path), isolation_level=None)  # type: ignore[attr-defined]
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


# -- Postgres ----------------------------------------------------------------------------------

PG_DSN_ENV = "TETHER_TEST_PG_DSN"
PG_REQUIRED_ENV = "TETHER_REQUIRE_PG"
DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
_pg_verdict: list[str | None] = []
"""[None] once the server answered; [message] once it did not (checked once per session)."""
_schemas: list[str] = []
"""Schemas made by the current test, dropped after it."""


def postgres_dsn() -> str:
    """The test server's address (`$TETHER_TEST_PG_DSN`), once it has answered.

    Skips the calling test when no server answers, naming the address; with
    `TETHER_REQUIRE_PG=1` (CI) that is a failure instead.
    """
    dsn = os.environ.get(PG_DSN_ENV, DEFAULT_PG_DSN)
    if not _pg_verdict:
        import psycopg

        try:
            psycopg.connect(dsn, connect_timeout=3).close()
            _pg_verdict.append(None)
        except psycopg.Error as exc:
            _pg_verdict.append(f"no PostgreSQL server answers at {dsn} (set {PG_DSN_ENV}): "
                               f"{str(exc).strip()}")
    problem = _pg_verdict[0]
    if problem is not None:
        if os.environ.get(PG_REQUIRED_ENV) == "1":
            pytest.fail(f"{problem} — and {PG_REQUIRED_ENV}=1 forbids skipping", pytrace=False)
        pytest.skip(problem)
    return dsn


def new_schema() -> str:
    """A fresh schema name (nothing is made yet)."""
    return f"tether_test_{uuid.uuid4().hex[:12]}"


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    """(dsn, schema): a schema of its own for one test, dropped at the end (skips without a
    server; see `postgres_dsn`)."""
    dsn, name = postgres_dsn(), new_schema()
    try:
        yield dsn, name
    finally:
        drop_schema(dsn, name)


def drop_schema(dsn: str, name: str) -> None:
    """Drop a test schema and everything in it."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")  # type: ignore[arg-type]


def make_old_schema(dsn: str, schema: str, version: int) -> None:
    """Make `schema` as a tether of Postgres schema `version` left it (its first `version`
    migrations applied and recorded), for tests of the upgrade from it."""
    import psycopg

    from tether.checkpoint.postgres import _migrations

    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(_migrations.create_schema(schema))  # type: ignore[arg-type]
        conn.execute(f"SET LOCAL search_path = {schema}")  # type: ignore[arg-type]
        conn.execute(_migrations.CREATE_VERSION_TABLE)  # type: ignore[arg-type]
        for number, (description, statements) in enumerate(
                _migrations.MIGRATIONS[:version], start=1):
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute(_migrations.RECORD_VERSION, (number, description))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _drop_schemas() -> Iterator[None]:
    # Autouse, so set up before (and torn down after) the `store` fixture that closes the store.
    yield
    while _schemas:
        drop_schema(os.environ.get(PG_DSN_ENV, DEFAULT_PG_DSN), _schemas.pop())


def _postgres(_tmp: Path) -> CheckpointStore:
    from tether.checkpoint.postgres import PostgresSaver

    dsn, schema = postgres_dsn(), new_schema()
    _schemas.append(schema)  # dropped after the test by `_drop_schemas`
    return PostgresSaver(dsn, schema=schema)


def _postgres_reopen(store: CheckpointStore, _tmp: Path) -> CheckpointStore:
    from tether.checkpoint.postgres import PostgresSaver

    return PostgresSaver(postgres_dsn(), schema=store.schema)  # type: ignore[attr-defined]


def _postgres_raw(store: CheckpointStore, sql: str, params: tuple[Any, ...]) -> None:
    import psycopg

    schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(postgres_dsn(), autocommit=True,
                         options=f"-c search_path={schema}") as conn:
        conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]


BACKENDS: list[Backend] = [
    Backend("memory", lambda _tmp: InMemorySaver()),
    Backend("sqlite", _sqlite, reopen=_sqlite_reopen, raw_sql=_sqlite_raw),
    Backend("postgres", _postgres, reopen=_postgres_reopen, raw_sql=_postgres_raw,
            marks=(pytest.mark.postgres,)),
]

KNOWN_GAPS: dict[tuple[str, str], str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests about a second handle or raw SQL exist only for backends that have one."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        chosen = callspec.params.get("backend") if callspec is not None else None
        if isinstance(chosen, Backend) and (
            (item.get_closest_marker("durable_only") and chosen.reopen is None)
            or (item.get_closest_marker("sql_only") and chosen.raw_sql is None)
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn."""
    chosen: Backend = request.param
    gap = KNOWN_GAPS.get((chosen.name, request.node.originalname))
    if gap is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=gap))
    return chosen


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[CheckpointStore]:
    """A new, empty store of the backend under test; closed after the test."""
    made = backend.open(tmp_path)
    yield made
    close(made)


def close(store: CheckpointStore) -> None:
    """Close a store that has a `close` (the memory store has none)."""
    closer = getattr(store, "close", None)
    if closer is not None:
        closer()


@pytest.fixture
def anyio_backend() -> str:
    """tether runs on asyncio."""
    return "asyncio"


# -- builders ---------------------------------------------------------------------------------


def new_run(store: CheckpointStore, thread_id: str | None = "t", *,
            run_id: str | None = None, **fields: Any) -> RunInfo:
    """Create a `pending` run and return its record."""
    info = RunInfo(run_id or uuid7(), thread_id, RunStatus.PENDING, **fields)
    return store.create_run(info)


class Chain:
    """Writes a thread's checkpoints the way the engine does: only changed channels are stored,
    and `refs` carry every channel forward."""

    def __init__(self, store: CheckpointStore, thread_id: str = "t", ns: str = "",
                 run_id: str | None = None) -> None:
        self.store, self.thread_id, self.ns, self.run_id = store, thread_id, ns, run_id
        self.refs: dict[str, str] = {}
        self.last: str | None = None
        self.step = -1

    @property
    def head(self) -> str:
        """The id of the last checkpoint stored (or committed)."""
        assert self.last is not None, "no checkpoint yet"
        return self.last

    def put(self, changes: dict[str, Any], *, removed: tuple[str, ...] = (),
            nxt: tuple[str, ...] = (), metadata: dict[str, Any] | None = None,
            run_id: str | None = None) -> CheckpointRecord:
        """Store a checkpoint that changes `changes` (and drops `removed`)."""
        record = self.record(changes, removed=removed, nxt=nxt, metadata=metadata,
                             run_id=run_id)
        self.store.put_checkpoint(record)
        self.commit(record)
        return record

    def record(self, changes: dict[str, Any], *, removed: tuple[str, ...] = (),
               nxt: tuple[str, ...] = (), metadata: dict[str, Any] | None = None,
               run_id: str | None = None) -> CheckpointRecord:
        """The next checkpoint, not stored (`commit` it once it is)."""
        new_id = uuid7()
        refs = {k: v for k, v in self.refs.items() if k not in removed}
        refs.update(dict.fromkeys(changes, new_id))
        return CheckpointRecord(
            thread_id=self.thread_id, ns=self.ns, id=new_id, parent_id=self.last,
            step=self.step + 1, source="loop", refs=refs, blobs=dict(changes), next=nxt,
            metadata=metadata or {"step": self.step + 1}, run_id=run_id or self.run_id,
        )

    def commit(self, record: CheckpointRecord) -> None:
        """Continue from `record`."""
        self.refs, self.last, self.step = dict(record.refs), record.id, record.step


def write(task_id: str, channel: str, value: Any, *, idx: int = 0,
          task_name: str = "node") -> WriteRecord:
    """A pending write."""
    return WriteRecord(task_id, task_name, idx, channel, value)


# -- Redis -------------------------------------------------------------------------------------

REDIS_URL_ENV = "TETHER_TEST_REDIS_URL"
REDIS_REQUIRED_ENV = "TETHER_REQUIRE_REDIS"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_redis_verdict: list[str | None] = []
"""[None] once the server answered; [message] once it did not (checked once per session)."""


def redis_url() -> str:
    """The test Redis (`$TETHER_TEST_REDIS_URL`), once it has answered a PING.

    Skips the calling test when none answers, naming the address; with
    `TETHER_REQUIRE_REDIS=1` (CI) that is a failure instead. Redis is shared: tests use keys
    under a random prefix (`redis_prefix`).
    """
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    if not _redis_verdict:
        try:
            import redis
        except ImportError:
            _redis_verdict.append("the redis package is not installed (pip install "
                                  "'tether[redis]')")
        else:
            try:
                client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
                client.ping()
                client.close()
                _redis_verdict.append(None)
            except redis.RedisError as exc:
                _redis_verdict.append(f"no Redis server answers at {url} (set "
                                      f"{REDIS_URL_ENV}): {exc}")
    problem = _redis_verdict[0]
    if problem is not None:
        if os.environ.get(REDIS_REQUIRED_ENV) == "1":
            pytest.fail(f"{problem} — and {REDIS_REQUIRED_ENV}=1 forbids skipping", pytrace=False)
        pytest.skip(problem)
    return url


def redis_prefix() -> str:
    """A fresh key prefix for one test."""
    return f"tether-test-{uuid.uuid4().hex[:12]}"


def drop_redis_keys(url: str, prefix: str) -> None:
    """Delete every key under `prefix`."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()
