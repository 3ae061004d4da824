"""`InMemoryStore`: a long-term store in a dict, for tests and single-process programs."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator
from operator import attrgetter

from tether.store import ranking
from tether.store.base.items import Item, SearchItem
from tether.store.base.ops import GetOp, PutOp, Result, SearchOp
from tether.store.base.settings import IndexConfig, TTLConfig
from tether.store.batched import BatchedStore
from tether.store.clock import Clock, expiry, live
from tether.store.embedding import Embedded
from tether.store.namespaces import listed
from tether.store.plan import ItemKey, Plan
from tether.store.records import Stored
from tether.store.values import copied
from tether.store.vectors import Vector

_seq = attrgetter("seq")


class InMemoryStore(BatchedStore):
    """LangGraph's `InMemoryStore`, with the TTLs and filters of tether's other stores.

    Values are copied in and out: changing a dict after `put`, or one that `get` returned,
    does not change the store (as with the SQL stores). Values need not be JSON (nothing is
    serialised). Everything is lost with the process; `SqliteStore` keeps it in a file.

    Cancellation:
        Every call is synchronous under a lock (the async methods run it inline, after any
        embedding): a batch is applied whole or not at all.

    Args:
        index: semantic search: `{"dims": ..., "embed": ..., "fields": [...]}`.
        ttl: time-to-live settings (`TTLConfig`).
        clock: seconds since the epoch (default `time.time`).
    """

    def __init__(self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None,
                 clock: Clock | None = None) -> None:
        super().__init__(index=index, ttl=ttl, clock=clock)
        self._lock = threading.Lock()
        # Invariants (under _lock): each namespace's dict is in `seq` order (a new item is
        # appended with the next seq; a put over a live item keeps its place); no dict is
        # empty; _vectors holds entries only for items in _items.
        self._items: dict[tuple[str, ...], dict[str, Stored]] = {}
        self._vectors: dict[ItemKey, tuple[Vector, ...]] = {}
        self._seq = 0

    def __repr__(self) -> str:
        return f"InMemoryStore({sum(map(len, self._items.values()))} items)"

    def _execute(self, plan: Plan, embedded: Embedded, now: int) -> list[Result]:
        results: list[Result] = [None] * plan.size
        with self._lock:
            for i, get in plan.gets:
                results[i] = self._get(get, now)
            for i, search in plan.searches:
                results[i] = self._search(search, embedded, now)
            for i, listing in plan.listings:
                results[i] = listed(self._live_namespaces(now), listing)
            for put in plan.writes:
                self._write(put, embedded, now)
        return results

    def _get(self, op: GetOp, now: int) -> Item | None:
        row = self._items.get(op.namespace, {}).get(op.key)
        if row is None or not live(row.expires_at, now):
            return None
        if op.refresh_ttl:
            row.expires_at = expiry(now, row.ttl) if row.ttl is not None else None
        return _private(row).item()

    def _search(self, op: SearchOp, embedded: Embedded, now: int) -> list[SearchItem]:
        rows = self._rows_under(op.namespace_prefix, now)
        query = embedded.queries.get(op.query) if op.query else None
        if query is None:
            found: list[tuple[Stored, float | None]] = [(r, None) for r in ranking.page(op, rows)]
        else:
            pairs = ((row, self._vectors.get((row.namespace, row.key), ())) for row in rows)
            found = ranking.ranked(op, pairs, query)
        for row, _ in found:
            if op.refresh_ttl and row.ttl is not None:
                row.expires_at = expiry(now, row.ttl)
        return ranking.results((_private(row), score) for row, score in found)

    def _rows_under(self, prefix: tuple[str, ...], now: int) -> Iterator[Stored]:
        """The live items under `prefix`, in creation order."""
        n = len(prefix)
        spaces = [rows.values() for ns, rows in self._items.items() if ns[:n] == prefix]
        merged = spaces[0] if len(spaces) == 1 else heapq.merge(*spaces, key=_seq)
        return (row for row in merged if live(row.expires_at, now))

    def _live_namespaces(self, now: int) -> Iterator[tuple[str, ...]]:
        return (ns for ns, rows in self._items.items()
                if any(live(row.expires_at, now) for row in rows.values()))

    def _write(self, op: PutOp, embedded: Embedded, now: int) -> None:
        where = (op.namespace, op.key)
        rows = self._items.setdefault(op.namespace, {})
        old = rows.get(op.key)
        if op.value is None or (old is not None and not live(old.expires_at, now)):
            rows.pop(op.key, None)
            self._vectors.pop(where, None)
        if op.value is None:
            if not rows:
                del self._items[op.namespace]
            return
        row = rows.get(op.key)
        value = copied(dict(op.value))
        if row is None:
            self._seq += 1
            rows[op.key] = Stored(op.namespace, op.key, value, now, now, expiry(now, op.ttl),
                                  op.ttl, self._seq)
        else:
            row.value, row.updated_at = value, now
            row.ttl, row.expires_at = op.ttl, expiry(now, op.ttl)
        vectors = tuple(vector for _field, vector in embedded.docs.get(where, ()))
        if vectors:
            self._vectors[where] = vectors
        else:
            self._vectors.pop(where, None)

    def _sweep(self, now: int) -> int:
        swept = 0
        with self._lock:
            for ns in list(self._items):
                rows = self._items[ns]
                for key in [k for k, row in rows.items() if not live(row.expires_at, now)]:
                    del rows[key]
                    self._vectors.pop((ns, key), None)
                    swept += 1
                if not rows:
                    del self._items[ns]
        return swept


def _private(row: Stored) -> Stored:
    """`row` with its own copy of the value, to hand out."""
    return Stored(row.namespace, row.key, copied(row.value), row.created_at, row.updated_at,
                  row.expires_at, row.ttl, row.seq)


__all__ = ["InMemoryStore"]
