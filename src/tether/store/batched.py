"""What tether's stores share: `batch` and `abatch` written once (plan the batch, embed its
texts with sync or async calls, then execute it on the backend), and the TTL sweeper.

A backend implements `_execute` (and `_aexecute` when its async callers must not run it inline:
real async I/O for Postgres, a writer thread for SQLite; the in-memory store runs `_execute`
inline, as its calls take microseconds and never wait) and `_sweep`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from abc import abstractmethod
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import anyio.to_thread

from tether.store.base.ops import Op, Result
from tether.store.base.settings import IndexConfig, TTLConfig
from tether.store.base.store import BaseStore
from tether.store.clock import Clock, now_micros
from tether.store.embedding import Embedded, aembed, embed
from tether.store.index import Index
from tether.store.plan import Plan
from tether.store.sweeper import DEFAULT_INTERVAL_MINUTES, Sweeper


class BatchedStore(BaseStore):
    """A tether store: TTLs supported, semantic search when given an `index`.

    Args:
        index: semantic search (`IndexConfig`), or None.
        ttl: time-to-live settings (`TTLConfig`), or None.
        clock: seconds since the epoch (default `time.time`); tests pass a fake one.
    """

    supports_ttl = True
    batch_checks_namespaces = True  # `Plan.of` checks every op

    def __init__(self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None,
                 clock: Clock | None = None) -> None:
        self._index = Index.of(index)
        self.index_config = dict(index) if index else None
        self.embeddings = self._index.embeddings if self._index is not None else None
        self.ttl_config = ttl
        self._clock: Clock = clock or time.time
        self._sweeper = Sweeper(self._sweep_now, type(self).__name__)

    # -- batches ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute `ops` together: reads first (they do not see the batch's writes), then the
        writes, in one transaction.

        Raises:
            InvalidNamespaceError, TypeError, ValueError: a malformed op (nothing is done).
            SerializationError: a value has no JSON form (SQL stores; nothing is written).
        """
        plan = Plan.of(ops, self._index)
        embedded = embed(plan, self._index)
        return self._execute(plan, embedded, now_micros(self._clock))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """As `batch`, embedding with the async calls of the index's embeddings.

        Cancellation:
            Cancelled while embedding, nothing is done. The batch's transaction is committed
            whole or not at all (one handed to a thread or a server finishes first, and the
            cancel lands after it). Safe to retry.
        """
        plan = Plan.of(ops, self._index)
        embedded = await aembed(plan, self._index)
        return await self._aexecute(plan, embedded, now_micros(self._clock))

    @abstractmethod
    def _execute(self, plan: Plan, embedded: Embedded, now: int) -> list[Result]:
        """Run `plan` at time `now` (microseconds) with its vectors; one result per op."""

    async def _aexecute(self, plan: Plan, embedded: Embedded, now: int) -> list[Result]:
        return self._execute(plan, embedded, now)

    # -- time to live -------------------------------------------------------------------------

    def sweep_ttl(self) -> int:
        """Delete the expired items now; how many were deleted."""
        return self._sweep_now()

    def _sweep_now(self) -> int:
        return self._sweep(now_micros(self._clock))

    @abstractmethod
    def _sweep(self, now: int) -> int:
        """Delete the items expired at `now`; how many."""

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None
                          ) -> concurrent.futures.Future[None]:
        """Delete expired items every `sweep_interval_minutes` (default: the ttl config's
        `sweep_interval_minutes`, else 5) in a background thread.

        Returns:
            A future that resolves when the sweeper stops; cancelling it stops the sweeper.
        """
        interval = (sweep_interval_minutes
                    or (self.ttl_config or {}).get("sweep_interval_minutes")
                    or DEFAULT_INTERVAL_MINUTES)
        return self._sweeper.start(float(interval))

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper; False if it is still in a sweep after `timeout` seconds."""
        return self._sweeper.stop(timeout)

    # -- life ---------------------------------------------------------------------------------

    def setup(self) -> None:
        """Make the store's tables if missing (tether's stores do it when opened; kept for
        LangGraph's callers)."""

    def close(self) -> None:
        """Stop the sweeper and release the store's resources (idempotent)."""
        self._sweeper.stop(timeout=0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


class AsyncFace(BatchedStore):
    """LangGraph's async store classes (`AsyncSqliteStore`, `AsyncPostgresStore`) await
    `setup()` and the sweeper's methods: here they run the sync ones in a worker thread.

    Listed before the backend in an async class's bases, so `super()` reaches the backend.
    """

    async def setup(self) -> None:  # type: ignore[override]
        """Make the store's tables if missing.

        Cancellation:
            Not interrupted midway (it runs in a thread, waited for); safe to retry.
        """
        await anyio.to_thread.run_sync(super().setup)

    async def sweep_ttl(self) -> int:  # type: ignore[override]
        """Delete the expired items now; how many.

        Cancellation:
            The sweep runs in a thread and completes; safe to retry.
        """
        return await anyio.to_thread.run_sync(super().sweep_ttl)

    async def start_ttl_sweeper(  # type: ignore[override]
            self, sweep_interval_minutes: float | None = None) -> asyncio.Future[None]:
        """Start the sweeper thread; an awaitable that ends when it stops (cancel it to stop).

        Cancellation:
            Safe: starting does not wait.
        """
        return asyncio.wrap_future(super().start_ttl_sweeper(sweep_interval_minutes))

    async def stop_ttl_sweeper(  # type: ignore[override]
            self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - LangGraph's name
        """Stop the sweeper, waiting up to `timeout` seconds in a worker thread.

        Cancellation:
            The stop is requested at once; only the wait is cancelled.
        """
        stop: Any = super().stop_ttl_sweeper
        return bool(await anyio.to_thread.run_sync(stop, timeout))


__all__ = ["AsyncFace", "BatchedStore"]
