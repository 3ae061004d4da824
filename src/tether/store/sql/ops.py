"""The SQL stores' operations, written once as generators of `Query` (see
`tether.checkpoint.query`): SQLite runs them on `sqlite3`, Postgres on psycopg, sync or async.

A batch (`batch`) is a sequence of steps, each an operation (a function that makes it, so that a
driver may run it again from its start) and whether it needs a write transaction: `read` (its
gets, searches and listings, which do not see the batch's writes; it returns the results and
the ttl refreshes the reads owe) and `write` (the refreshes, then the batch's puts and deletes).
A batch with writes runs both in one transaction; a read-only batch reads in a snapshot and
writes only when something needs refreshing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tether.checkpoint.query import Op, Query
from tether.store import ranking
from tether.store.base.items import Item, SearchItem
from tether.store.base.ops import GetOp, ListNamespacesOp, PutOp, Result, SearchOp
from tether.store.clock import expiry
from tether.store.embedding import Embedded
from tether.store.namespaces import fixed_prefix, listed
from tether.store.plan import Plan
from tether.store.records import Stored, joined, split
from tether.store.sql.statements import Statements
from tether.store.values import dumps
from tether.store.vectors import Vector

Loads = Callable[[str], dict[str, Any]]

Step = tuple[Callable[[], Op[Any]], bool]
"""What makes an operation, and whether it runs in a write transaction."""
Steps = Generator[Step, Any, list[Result]]


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch being run: the dialect's statements, how values load, the batch's vectors,
    and its time (microseconds)."""

    s: Statements
    loads: Loads
    embedded: Embedded
    now: int

    @property
    def stamp(self) -> Any:
        """`now` in the dialect's timestamp type."""
        return self.s.dialect.stamp(self.now)


@dataclass(slots=True)
class Reading:
    """What `read` found: one result per op, and the refreshes it owes (expires_at, seq)."""

    results: list[Result]
    refresh: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A write with its value as JSON (None: a delete), made before any transaction opens."""

    op: PutOp
    text: str | None


def encode(plan: Plan) -> list[Encoded]:
    """The writes of `plan`, their values as JSON.

    Raises:
        SerializationError: a value has no JSON form (naming its namespace and key).
    """
    return [Encoded(op, None if op.value is None else
                    dumps(op.value, f"{op.namespace!r}/{op.key!r}")) for op in plan.writes]


def batch(b: Batch, plan: Plan) -> Steps:
    """The steps of `plan`; returns one result per op.

    Raises:
        SerializationError: a value has no JSON form (before any step runs).
    """
    if plan.writes:
        writes = encode(plan)
        reading: Reading = yield (lambda: _both(b, plan, writes)), True
        return reading.results
    reading = yield (lambda: read(b, plan)), False
    if reading.refresh:
        refresh = reading.refresh
        yield (lambda: write(b, (), refresh)), True
    return reading.results


def _both(b: Batch, plan: Plan, writes: list[Encoded]) -> Op[Reading]:
    reading = yield from read(b, plan)
    yield from write(b, writes, reading.refresh)
    return reading


def read(b: Batch, plan: Plan) -> Op[Reading]:
    """The reads of `plan`."""
    reading = Reading([None] * plan.size)
    for i, get in plan.gets:
        reading.results[i] = yield from _get(b, get, reading)
    for i, search in plan.searches:
        reading.results[i] = yield from _search(b, search, reading)
    for i, listing in plan.listings:
        reading.results[i] = yield from _namespaces(b, listing)
    return reading


def write(b: Batch, writes: Iterable[Encoded], refresh: Iterable[tuple[int, int]]) -> Op[None]:
    """The refreshes owed, then the writes."""
    stamp = b.s.dialect.stamp
    for expires_at, seq in refresh:
        yield Query(b.s.refresh, (stamp(expires_at), seq), "none")
    for encoded in writes:
        yield from _write(b, encoded)


def sweep(s: Statements, now: int) -> Op[int]:
    """Delete the items expired at `now` (their vectors go with them); how many."""
    gone = yield Query(s.sweep, (s.dialect.stamp(now),), "all")
    return len(gone)


def get_query(b: Batch, op: GetOp) -> Query:
    """The statement of a get (its row is the item, or None); `got` reads its row."""
    return Query(b.s.get, (joined(op.namespace), op.key, b.stamp))


def got(b: Batch, op: GetOp, row: Any, reading: Reading) -> Item | None:
    """The item of a get whose statement (`get_query`) returned `row`; any refresh of its
    time to live goes to `reading`."""
    if row is None:
        return None
    _, key, value, created, updated, _, ttl, seq = row
    if op.refresh_ttl and ttl is not None:
        _refresh(b, ttl, seq, reading)
    micros = b.s.dialect.micros
    return Item(value=b.loads(value), key=key, namespace=op.namespace,
                created_at=micros(created), updated_at=micros(updated))


def fetch(query: Query) -> Op[Any]:
    """An operation of one statement: its result (for a driver that runs operations only)."""
    return (yield query)


def _get(b: Batch, op: GetOp, reading: Reading) -> Op[Item | None]:
    return got(b, op, (yield get_query(b, op)), reading)


def _search(b: Batch, op: SearchOp, reading: Reading) -> Op[list[SearchItem]]:
    prefix = joined(op.namespace_prefix)
    query = b.embedded.queries.get(op.query) if op.query else None
    found: list[tuple[Stored, float | None]]
    if query is None:
        found = [(row, None) for row in (yield from _page(b, op, prefix))]
    else:
        sql, params = b.s.search(prefix, paged=False,
                                 narrowing=b.s.dialect.narrowing(op.filter))
        rows = yield Query(sql, (*params, b.stamp), "all")
        sql, params = b.s.vectors_under(prefix)
        vectors: dict[int, list[Vector]] = defaultdict(list)
        for seq, data in (yield Query(sql, (*params, b.stamp), "all")):
            vectors[seq].append(b.s.dialect.unpack(data))
        found = ranking.ranked(op, ((row, vectors.get(row.seq, ()))
                                    for row in _each_stored(b, rows)), query)
    for row, _ in found:
        _refreshed(b, row, op.refresh_ttl, reading)
    return ranking.results(found)


def _page(b: Batch, op: SearchOp, prefix: str) -> Op[list[Stored]]:
    """The page of a search without a query. The database applies the limit when its
    conditions decide the whole filter (`Narrowing.whole`), so only the page's rows are read;
    should the filter, re-checked here, drop one of them (a case SQL's JSON functions see
    otherwise, such as a nested object's text), the page is read again from every row."""
    narrowing = b.s.dialect.narrowing(op.filter)
    if not op.filter or narrowing.whole:
        sql, params = b.s.search(prefix, paged=True, narrowing=narrowing)
        page = (op.limit, op.offset) if not op.filter else (op.offset + op.limit, 0)
        rows = yield Query(sql, (*params, b.stamp, *page), "all")
        first = list(_each_stored(b, rows))
        if not op.filter:
            return first
        found = ranking.page_of_first(op, first)
        if found is not None:
            return found
    sql, params = b.s.search(prefix, paged=False, narrowing=narrowing)
    rows = yield Query(sql, (*params, b.stamp), "all")
    return ranking.page(op, _each_stored(b, rows))


def _namespaces(b: Batch, op: ListNamespacesOp) -> Op[list[tuple[str, ...]]]:
    sql, params = b.s.namespaces(joined(fixed_prefix(op)))
    rows = yield Query(sql, (*params, b.stamp), "all")
    return listed((split(prefix) for (prefix,) in rows), op)


def _write(b: Batch, encoded: Encoded) -> Op[None]:
    op, s, stamp = encoded.op, b.s, b.s.dialect.stamp
    prefix = joined(op.namespace)
    if encoded.text is None:
        yield Query(s.delete, (prefix, op.key), "none")
        return
    # An expired item that was not swept yet is gone: the put makes a new one.
    yield Query(s.delete_if_expired, (prefix, op.key, b.stamp), "none")
    expires_at = expiry(b.now, op.ttl)
    (seq,) = yield Query(s.upsert, (prefix, op.key, encoded.text, b.stamp, b.stamp,
                                    None if expires_at is None else stamp(expires_at), op.ttl))
    yield Query(s.delete_vectors, (seq,), "none")
    for name, vector in b.embedded.docs.get((op.namespace, op.key), ()):
        yield Query(s.insert_vector, (seq, name, s.dialect.pack(vector)), "none")


def _each_stored(b: Batch, rows: Iterable[Any]) -> Iterator[Stored]:
    """The items of `rows`, decoded as they are taken (a page may need only the first few).
    A search's rows mostly share a few namespaces, each split once."""
    micros, loads = b.s.dialect.micros, b.loads
    namespaces: dict[str, tuple[str, ...]] = {}
    for prefix, key, value, created, updated, expires, ttl, seq in rows:
        namespace = namespaces.get(prefix)
        if namespace is None:
            namespace = namespaces[prefix] = split(prefix)
        yield Stored(namespace, key, loads(value), micros(created), micros(updated),
                     None if expires is None else micros(expires), ttl, seq)


def _refreshed(b: Batch, stored: Stored, asked: bool, reading: Reading) -> None:
    if asked and stored.ttl is not None:
        stored.expires_at = _refresh(b, stored.ttl, stored.seq, reading)


def _refresh(b: Batch, ttl: float, seq: int, reading: Reading) -> int | None:
    """Owe the refresh of item `seq`'s time to live; its new expiry."""
    expires_at = expiry(b.now, ttl)
    if expires_at is not None:
        reading.refresh.append((expires_at, seq))
    return expires_at


__all__ = ["Batch", "Encoded", "Loads", "Reading", "Step", "Steps", "batch", "encode", "fetch",
           "get_query", "got", "read", "sweep", "write"]
