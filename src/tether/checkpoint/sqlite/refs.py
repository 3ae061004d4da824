"""How a checkpoint's `refs` are stored: in full, or as a change to its parent's (no I/O).

`refs` name, for every channel, the checkpoint that stored its value. Written in full at every
superstep they would make each row as large as the state is wide, and row size is what a
SQLite commit pays for (pages written to the WAL). So a checkpoint whose parent was written by
this store for the same run stores only what changed (a *delta*), and every `MAX_DEPTH`-th
checkpoint of a chain stores them in full again. Reading walks at most `MAX_DEPTH` rows.

Invariants: a delta's base is its parent, of the same thread, namespace and run, so deleting a
run's checkpoints (or a thread's) deletes whole chains; a stored map is never changed. A write
racing the deletion of its own parent (another process deleting the thread) leaves a chain cut
short: it reads as far as it goes, and the values it lost were deleted anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ormsgpack

from tether.errors import CorruptStoreError
from tether.records import fast_record

MAX_DEPTH = 16
"""Deltas in a row before refs are written in full again: bounds the rows a read walks."""

_SELF = ""
"""Stands for the checkpoint's own id (most changed channels point at it)."""


@fast_record  # one a superstep
@dataclass(frozen=True, slots=True)
class Head:
    """The last checkpoint this store wrote in a (thread, namespace): a possible delta base."""

    checkpoint_id: str
    run_id: str | None
    refs: Mapping[str, str]
    depth: int


@fast_record  # one a superstep
@dataclass(frozen=True, slots=True)
class Encoded:
    """Refs as stored: `data` is a full map when `base` is None, else a delta on `base`."""

    data: bytes
    base: str | None
    depth: int


def encode(refs: Mapping[str, str], own_id: str, parent_id: str | None, run_id: str | None,
           head: Head | None) -> Encoded:
    """Encode `refs` of checkpoint `own_id` as a delta on `head` when it is the parent."""
    if (head is None or parent_id is None or head.checkpoint_id != parent_id
            or head.run_id != run_id or head.depth + 1 >= MAX_DEPTH):
        full = {ch: (_SELF if ref == own_id else ref) for ch, ref in refs.items()}
        return Encoded(ormsgpack.packb(full), None, 0)
    base = head.refs
    # What changed, found by set operations on the two maps' views (in C: a superstep changes
    # a few channels of many, and a loop over all of them in Python cost a wide state's step
    # more than the rest of its checkpoint's encoding), in a fixed order (the stored bytes do
    # not depend on the process's string hashes).
    delta: dict[str, str | None] = {
        ch: (_SELF if ref == own_id else ref) for ch, ref in sorted(refs.items() - base.items())
    }
    added = sum(1 for ch in delta if ch not in base)
    if len(refs) - added != len(base):  # channels of the base are gone (rare: counted first)
        delta.update(dict.fromkeys(sorted(base.keys() - refs.keys())))
    return Encoded(ormsgpack.packb(delta), head.checkpoint_id, head.depth + 1)


def decode(chain: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """Refs from a chain of (checkpoint id, stored map), the checkpoint itself first.

    The chain ends at a full map; a chain cut short (its base deleted) yields what it holds.
    """
    links = list(chain)
    refs: dict[str, str] = {}
    for checkpoint_id, data in reversed(links):
        try:
            stored: dict[str, Any] = ormsgpack.unpackb(data)
            items = list(stored.items())
        except (ValueError, TypeError, AttributeError) as exc:
            raise CorruptStoreError(f"the channel map of checkpoint {checkpoint_id!r} is "
                                    f"damaged ({type(exc).__name__}: {exc})") from exc
        for ch, ref in items:
            if ref is None:
                refs.pop(ch, None)
            else:
                refs[ch] = checkpoint_id if ref == _SELF else ref
    return refs


__all__ = ["MAX_DEPTH", "Encoded", "Head", "decode", "encode"]
