"""`PostgresStore`: the long-term store in PostgreSQL, beside PostgresSaver's tables."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

from psycopg.conninfo import make_conninfo

from tether.checkpoint.opening import Opening
from tether.checkpoint.postgres.connection import Database, connection_kwargs, redacted
from tether.checkpoint.query import Op
from tether.store.base.settings import IndexConfig, TTLConfig
from tether.store.clock import Clock
from tether.store.postgres import schema as tables
from tether.store.sql.dialect import POSTGRES
from tether.store.sql.ops import Loads
from tether.store.sql.store import SqlStore

T = TypeVar("T")


class PoolConfig(TypedDict, total=False):
    """LangGraph's pool settings: `min_size` and `max_size` size the sync pool (other keys
    are ignored: tether sets its own connection options)."""

    min_size: int
    max_size: int | None
    kwargs: dict[str, Any]


class PostgresStore(SqlStore):
    """LangGraph's `PostgresStore`: items (as `jsonb`) and their vectors in PostgreSQL, for many
    processes and machines.

    Give it the connection string and `schema` of your `PostgresSaver` to keep memories beside
    the runs. Sync calls use a `psycopg_pool.ConnectionPool`; the async ones real async I/O on a
    pool of the calling event loop. Vectors are `real[]` columns and similarity is computed in
    Python over the items under the searched prefix (pgvector is not needed), which suits some
    tens of thousands of items per prefix.

    Cancellation:
        An async call cancelled mid-statement is rolled back by the server: a batch with writes
        is one transaction, committed whole or not at all, and safe to retry.

    Args:
        conn: a libpq connection string or URL (a psycopg connection or pool is accepted for
            LangGraph's sake: the store opens its own pool to the same database).
        schema: the schema holding the tables (made when missing); None: the `search_path`.
        index: semantic search: `{"dims": ..., "embed": ..., "fields": [...]}`.
        ttl: time-to-live settings (`TTLConfig`).
        deserializer: turns a stored JSON text into the value (default `json.loads`).
        min_size, max_size, async_size, connect_timeout, prepare_threshold, application_name:
            as for `PostgresSaver`.
        clock: seconds since the epoch (default `time.time`).

    Raises:
        StoreError: the server cannot be reached.
        SchemaVersionError: the tables were made by a newer tether.
    """

    def __init__(self, conn: Any, *, schema: str | None = None, index: IndexConfig | None = None,
                 ttl: TTLConfig | None = None, deserializer: Loads | None = None,
                 min_size: int = 1, max_size: int = 10, async_size: int = 4,
                 connect_timeout: float = 10.0, prepare_threshold: int | None = 5,
                 application_name: str = "tether-store", clock: Clock | None = None) -> None:
        super().__init__(POSTGRES, index=index, ttl=ttl, deserializer=deserializer, clock=clock)
        self.conninfo = conninfo_of(conn)
        self.schema = schema
        kwargs = connection_kwargs(self.conninfo, schema=schema,
                                   application_name=application_name,
                                   prepare_threshold=prepare_threshold)
        self._db = Database(self.conninfo, kwargs, min_size=min_size, max_size=max_size,
                            async_size=async_size, connect_timeout=connect_timeout)
        self._where = f"{redacted(self.conninfo)} schema {schema or '(search_path)'}"
        weakref.finalize(self, self._db.close)
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def from_conn_string(cls, conn_string: str, *, pipeline: bool = False,
                         pool_config: PoolConfig | None = None,
                         index: IndexConfig | None = None, ttl: TTLConfig | None = None,
                         **options: Any) -> Opening[Any]:
        """A `with` (or `async with`) block that opens the store and closes it at the end.

        `pipeline` is accepted for LangGraph's sake (tether pipelines its transactions
        anyway); `pool_config`'s `min_size` and `max_size` size the sync pool.
        """
        del pipeline
        pool = pool_config or {}
        for size in ("min_size", "max_size"):
            if pool.get(size) is not None:
                options.setdefault(size, pool.get(size))
        return Opening(lambda: cls(conn_string, index=index, ttl=ttl, **options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r})"

    def setup(self) -> None:
        """Make the store's tables if missing (done when the store is opened)."""
        self._migrate()

    def _migrate(self) -> None:
        self._db.run(tables.migrate(self.schema, self._where), transaction=True,
                     pipeline=False)

    def close(self) -> None:
        """Stop the sweeper and close the pools (idempotent)."""
        super().close()
        self._db.close()

    async def aclose(self) -> None:
        """Stop the sweeper and close the pools, awaiting this loop's.

        Cancellation:
            Safe to retry; a pool left open is closed with its loop.
        """
        super().close()
        await self._db.aclose()

    def _run(self, make: Callable[[], Op[T]], transaction: bool) -> T:
        return self._db.run(make(), transaction=transaction)

    async def _arun(self, make: Callable[[], Op[T]], transaction: bool) -> T:
        """Run the operation `make()` makes on this loop's pool.

        Cancellation:
            Cancelled mid-statement, the statement is cancelled on the server and the
            transaction rolled back.
        """
        return await self._db.arun(make(), transaction=transaction)


def conninfo_of(conn: Any) -> str:
    """The connection string of `conn`: itself, or that of a psycopg connection or pool.

    Raises:
        TypeError: `conn` is none of these.
    """
    if isinstance(conn, str):
        return conn
    info = getattr(conn, "info", None)
    if info is not None and hasattr(info, "dsn"):
        return make_conninfo(info.dsn, password=info.password)
    conninfo = getattr(conn, "conninfo", None)
    if isinstance(conninfo, str):
        return conninfo
    raise TypeError(f"PostgresStore takes a connection string (or a psycopg connection or "
                    f"pool), not {type(conn).__module__}.{type(conn).__name__}")


__all__ = ["PoolConfig", "PostgresStore", "conninfo_of"]
