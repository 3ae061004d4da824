"""Checkpoint rows: writing them (values serialized first, refs as deltas) and reading them back
(refs resolved through their chain, values through their blobs), inside the store's
transactions."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from tether.checkpoint.base import CheckpointRecord, StoredCheckpoint, WriteRecord
from tether.checkpoint.query import Op, Query
from tether.checkpoint.serde import Serializer
from tether.checkpoint.sqlite import _sql, rows
from tether.checkpoint.sqlite import refs as refcodec
from tether.errors import CheckpointNotFound

Prepared = tuple[refcodec.Encoded, list[tuple[Any, ...]]]
"""A checkpoint's encoded refs and blob rows, made before its transaction begins."""
Parts = tuple[dict[str, str], list[tuple[str, bytes]], list[tuple[Any, ...]]]
"""A stored checkpoint's refs, the raw blobs they point at, and its raw pending writes."""
DumpedWrites = list[tuple[WriteRecord, bytes]]
"""Pending writes paired with their serialized values."""
HEADS_KEPT = 1024
"""Delta bases kept, for the threads written most recently: a thread without one stores its
next checkpoint's refs whole, so the bound costs a few bytes, never a wrong read."""


class Checkpoints:
    """Reads and writes checkpoint rows for one store.

    Args:
        serde: the serializer for values, pending writes and metadata.
    """

    def __init__(self, serde: Serializer) -> None:
        self.serde = serde
        # The last checkpoint stored per (thread, ns) by this store: the base the next one's
        # refs are a delta on. Invariant: every entry names a committed checkpoint (entries are
        # added after the commit and dropped, under the store lock, when it is deleted); at most
        # HEADS_KEPT entries, the oldest written dropped first (a process that sees many threads
        # must not keep one per thread for ever).
        self._heads: OrderedDict[tuple[str, str], refcodec.Head] = OrderedDict()

    # -- writing ----------------------------------------------------------------------------

    def prepare(self, record: CheckpointRecord) -> Prepared:
        """Serialize `record` (no lock needed, so the transaction that stores it stays short).

        Raises:
            SerializationError: a value cannot be stored (the message names its channel).
        """
        return self._prepared(record, self._heads.get((record.thread_id, record.ns)))

    def prepare_chain(self, records: Sequence[CheckpointRecord]) -> list[Prepared]:
        """`prepare` each of checkpoints stored in this order in one transaction, each as if
        the ones before it were committed and remembered already (a checkpoint whose parent
        comes before it is a delta on that one, where `prepare` would make one).

        Raises:
            SerializationError: as `prepare`.
        """
        heads: dict[tuple[str, str], refcodec.Head | None] = {}
        chain: list[Prepared] = []
        for record in records:
            key = (record.thread_id, record.ns)
            ready = self._prepared(record, heads[key] if key in heads else self._heads.get(key))
            chain.append(ready)
            heads[key] = _head(record, ready[0])
        return chain

    def _prepared(self, record: CheckpointRecord, head: refcodec.Head | None) -> Prepared:
        """`record` serialized, its refs a delta on `head` where they can be."""
        encoded = refcodec.encode(record.refs, record.id, record.parent_id, record.run_id, head)
        return encoded, rows.blob_rows(record, self.serde)

    def insert(self, record: CheckpointRecord, prepared: Prepared) -> Op[None]:
        """Insert a prepared checkpoint. A root checkpoint of a run whose refs are stored whole
        (the run's first in this store, then one in `refs.MAX_DEPTH`) points the run at itself
        (`_sql.POINT_RUN`): where `_sql.LIVE_CHECKPOINT` starts looking for the run's latest.
        The others leave the run's row alone, which spares the commit a page."""
        encoded, blobs = prepared
        yield Query(_sql.INSERT_CHECKPOINT, rows.checkpoint_params(record, self.serde, encoded),
                    "none")
        if blobs:
            yield Query(_sql.INSERT_BLOB, blobs, "each")
        if encoded.base is None and record.run_id is not None and record.ns == "":
            yield Query(_sql.POINT_RUN, (record.id, record.created_at.isoformat(), record.run_id),
                        "none")

    def insert_noting(self, record: CheckpointRecord, prepared: Prepared) -> Op[str | None]:
        """`insert`, then the run's durable cancel request (its reason as stored), read in the
        same transaction: what the run's next superstep boundary would ask the store, at the
        price of one read of the run's row (a root checkpoint of a run; None for others)."""
        yield from self.insert(record, prepared)
        if record.run_id is None or record.ns != "":
            return None
        row = yield Query(_sql.CANCEL_REASON, (record.run_id,))
        return None if row is None else str(row[0])

    def insert_chain(self, records: Sequence[CheckpointRecord],
                     prepared: Sequence[Prepared]) -> Op[str | None]:
        """`insert` each of `records` (made by `prepare_chain`) in order, then note as
        `insert_noting` does after the last one."""
        *first, last = zip(records, prepared, strict=True)
        for record, ready in first:
            yield from self.insert(record, ready)
        return (yield from self.insert_noting(*last))

    def remember(self, record: CheckpointRecord, prepared: Prepared) -> None:
        """Make a committed checkpoint the base for the next one of its thread and namespace."""
        key = (record.thread_id, record.ns)
        self._heads[key] = _head(record, prepared[0])
        self._heads.move_to_end(key)
        while len(self._heads) > HEADS_KEPT:
            self._heads.popitem(last=False)

    def forget(self, doomed: Callable[[tuple[str, str], refcodec.Head], bool]) -> None:
        """Drop the bases `doomed` selects; call under the lock of the deleting transaction."""
        for key in [k for k, head in self._heads.items() if doomed(k, head)]:
            del self._heads[key]

    def dump_writes(self, writes: Sequence[WriteRecord]) -> DumpedWrites:
        """Serialize pending writes, all before any is stored.

        Raises:
            SerializationError: a value cannot be stored (the message names its channel).
        """
        dumps = self.serde.dumps
        return [(w, dumps(w.value, w.channel)) for w in writes]

    @staticmethod
    def insert_writes(thread_id: str, ns: str, checkpoint_id: str,
                      writes: DumpedWrites) -> Op[None]:
        """Attach serialized writes to a checkpoint (see `_sql.PUT_WRITE` for the rule).

        Raises:
            CheckpointNotFound: no such checkpoint.
        """
        found = yield Query(_sql.HAS_CHECKPOINT, (thread_id, ns, checkpoint_id))
        if found is None:
            raise CheckpointNotFound(
                f"no checkpoint {checkpoint_id!r} in thread {thread_id!r} (namespace {ns!r})"
            )
        yield Query(_sql.PUT_WRITE, rows.write_params(thread_id, ns, checkpoint_id, writes),
                    "each")

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def read(conn: sqlite3.Connection, row: rows.CheckpointRow) -> Parts:
        """What `build` needs besides the row, as raw bytes (decoded outside the lock)."""
        thread_id, ns, checkpoint_id, data, base = row[0], row[1], row[2], row[10], row[11]
        chain = [(checkpoint_id, data)]
        if base is not None:
            chain += conn.execute(_sql.REFS_CHAIN,
                                  (thread_id, ns, base, refcodec.MAX_DEPTH)).fetchall()
        refs = refcodec.decode(chain)
        blobs = conn.execute(_sql.RESOLVE_REFS, (thread_id, ns, rows.to_json(refs))).fetchall()
        writes = conn.execute(_sql.LIST_WRITES, (thread_id, ns, checkpoint_id)).fetchall()
        return refs, blobs, writes

    def build(self, row: rows.CheckpointRow, parts: Parts) -> StoredCheckpoint:
        """The `StoredCheckpoint` of a row and its parts."""
        refs, blobs, writes = parts
        return rows.stored_checkpoint(row, refs, blobs, writes, self.serde)


def _head(record: CheckpointRecord, encoded: refcodec.Encoded) -> refcodec.Head:
    """`record` as the delta base of the next checkpoint of its thread and namespace."""
    return refcodec.Head(record.id, record.run_id, dict(record.refs), encoded.depth)


__all__ = ["Checkpoints", "DumpedWrites", "Parts", "Prepared"]
