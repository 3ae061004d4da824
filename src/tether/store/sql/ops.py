"""The SQL stores' operations, written once as generators of `Query` (see
`tether.checkpoint.query`): SQLite runs them on `sqlite3`, Postgres on psycopg, sync or async.

A batch (`batch`) is a sequence of steps, each an operation and whether it needs a write
transaction: `read` (its gets, searches and listings, which do not see the batch's writes; it
returns the results and the ttl refreshes the reads owe) and `write` (the refreshes, then the
batch's puts and deletes). A batch with writes runs both in one transaction; a read-only batch
reads in a snapshot and writes only when something needs refreshing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Generator, Iterable
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

Step = tuple[Op[Any], bool]
"""An operation, and whether it runs in a write transaction."""
Steps = Generator[Step, Any, list[Result]]


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


def batch(s: Statements, loads: Loads, plan: Plan, embedded: Embedded, now: int) -> Steps:
    """The steps of `plan` at `now`; returns one result per op.

    Raises:
        SerializationError: a value has no JSON form (before any step runs).
    """
    if plan.writes:
        writes = encode(plan)
        reading: Reading = yield _both(s, loads, plan, embedded, now, writes), True
        return reading.results
    reading = yield read(s, loads, plan, embedded, now), False
    if reading.refresh:
        yield write(s, (), embedded, now, reading.refresh), True
    return reading.results


def _both(s: Statements, loads: Loads, plan: Plan, embedded: Embedded, now: int,
          writes: list[Encoded]) -> Op[Reading]:
    reading = yield from read(s, loads, plan, embedded, now)
    yield from write(s, writes, embedded, now, reading.refresh)
    return reading


def read(s: Statements, loads: Loads, plan: Plan, embedded: Embedded, now: int
         ) -> Op[Reading]:
    """The reads of `plan` at `now`."""
    reading = Reading([None] * plan.size)
    for i, get in plan.gets:
        reading.results[i] = yield from _get(s, loads, get, now, reading)
    for i, search in plan.searches:
        reading.results[i] = yield from _search(s, loads, search, embedded, now, reading)
    for i, listing in plan.listings:
        reading.results[i] = yield from _namespaces(s, listing, now)
    return reading


def write(s: Statements, writes: Iterable[Encoded], embedded: Embedded, now: int,
          refresh: Iterable[tuple[int, int]]) -> Op[None]:
    """The refreshes owed, then the writes, at `now`."""
    stamp = s.dialect.stamp
    for expires_at, seq in refresh:
        yield Query(s.refresh, (stamp(expires_at), seq), "none")
    for encoded in writes:
        yield from _write(s, encoded, embedded, now)


def sweep(s: Statements, now: int) -> Op[int]:
    """Delete the items expired at `now` (their vectors go with them); how many."""
    gone = yield Query(s.sweep, (s.dialect.stamp(now),), "all")
    return len(gone)


def _get(s: Statements, loads: Loads, op: GetOp, now: int, reading: Reading
         ) -> Op[Item | None]:
    row = yield Query(s.get, (joined(op.namespace), op.key, s.dialect.stamp(now)))
    if row is None:
        return None
    stored = _stored(s, loads, row)
    _refreshed(stored, op.refresh_ttl, now, reading)
    return stored.item()


def _search(s: Statements, loads: Loads, op: SearchOp, embedded: Embedded, now: int,
            reading: Reading) -> Op[list[SearchItem]]:
    prefix, stamp = joined(op.namespace_prefix), s.dialect.stamp(now)
    query = embedded.queries.get(op.query) if op.query else None
    paged = query is None and not op.filter
    sql, params = s.search(prefix, paged=paged)
    rows = yield Query(sql, (*params, stamp, *((op.limit, op.offset) if paged else ())), "all")
    stored = (_stored(s, loads, row) for row in rows)
    found: list[tuple[Stored, float | None]]
    if query is not None:
        sql, params = s.vectors_under(prefix)
        vectors: dict[int, list[Vector]] = defaultdict(list)
        for seq, data in (yield Query(sql, (*params, stamp), "all")):
            vectors[seq].append(s.dialect.unpack(data))
        found = ranking.ranked(op, ((row, vectors.get(row.seq, ())) for row in stored), query)
    else:
        found = [(row, None) for row in ranking.page(op, stored)]
    for row, _ in found:
        _refreshed(row, op.refresh_ttl, now, reading)
    return ranking.results(found)


def _namespaces(s: Statements, op: ListNamespacesOp, now: int) -> Op[list[tuple[str, ...]]]:
    sql, params = s.namespaces(joined(fixed_prefix(op)))
    rows = yield Query(sql, (*params, s.dialect.stamp(now)), "all")
    return listed((split(prefix) for (prefix,) in rows), op)


def _write(s: Statements, encoded: Encoded, embedded: Embedded, now: int) -> Op[None]:
    op, stamp = encoded.op, s.dialect.stamp
    prefix = joined(op.namespace)
    if encoded.text is None:
        yield Query(s.delete, (prefix, op.key), "none")
        return
    # An expired item that was not swept yet is gone: the put makes a new one.
    yield Query(s.delete_if_expired, (prefix, op.key, stamp(now)), "none")
    expires_at = expiry(now, op.ttl)
    (seq,) = yield Query(s.upsert, (prefix, op.key, encoded.text, stamp(now), stamp(now),
                                    None if expires_at is None else stamp(expires_at), op.ttl))
    yield Query(s.delete_vectors, (seq,), "none")
    for name, vector in embedded.docs.get((op.namespace, op.key), ()):
        yield Query(s.insert_vector, (seq, name, s.dialect.pack(vector)), "none")


def _stored(s: Statements, loads: Loads, row: Any) -> Stored:
    prefix, key, value, created, updated, expires, ttl, seq = row
    micros = s.dialect.micros
    return Stored(split(prefix), key, loads(value), micros(created), micros(updated),
                  None if expires is None else micros(expires), ttl, seq)


def _refreshed(stored: Stored, asked: bool, now: int, reading: Reading) -> None:
    if asked and stored.ttl is not None:
        stored.expires_at = expiry(now, stored.ttl)
        reading.refresh.append((stored.expires_at, stored.seq))


__all__ = ["Encoded", "Loads", "Reading", "Step", "Steps", "batch", "encode", "read", "sweep",
           "write"]
