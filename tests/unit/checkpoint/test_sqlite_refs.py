"""How the SQLite store keeps a checkpoint's `refs`: whole, or as a delta on its parent's, and
read back through the chain (`checkpoint/sqlite/refs.py`)."""

from __future__ import annotations

import ormsgpack
from hypothesis import given
from hypothesis import strategies as st

from tether.checkpoint.sqlite.refs import MAX_DEPTH, Encoded, Head, decode, encode

CHANNELS = [f"c{i}" for i in range(12)]


def _chain(maps: list[dict[str, str]]) -> list[tuple[str, Encoded]]:
    """Encode each map as the checkpoint `id{i}` of one run, each on the one before."""
    stored: list[tuple[str, Encoded]] = []
    head: Head | None = None
    for i, refs in enumerate(maps):
        own, parent = f"id{i}", (f"id{i - 1}" if i else None)
        encoded = encode(refs, own, parent, "run", head)
        stored.append((own, encoded))
        head = Head(own, "run", dict(refs), encoded.depth)
    return stored


def _read(stored: list[tuple[str, Encoded]], at: int) -> dict[str, str]:
    """Decode checkpoint `at` the way a read does: its row, then its bases back to a full map."""
    by_id = dict(stored)
    chain = []
    current: str | None = stored[at][0]
    while current is not None:
        encoded = by_id[current]
        chain.append((current, encoded.data))
        current = encoded.base
    return decode(chain)


@given(st.lists(st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 40)), min_size=1,
                max_size=40))
def test_refs_read_back_as_written_through_any_chain_of_deltas(
        steps: list[dict[str, int]]) -> None:
    # Each step points some channels at a checkpoint (its own, or an earlier one's) and drops
    # the channels it maps to -1: what a superstep, a fork or a removed key does to refs.
    maps: list[dict[str, str]] = []
    refs: dict[str, str] = {}
    for i, changes in enumerate(steps):
        refs = dict(refs)
        for channel, at in changes.items():
            if at % 7 == 0:
                refs.pop(channel, None)
            else:
                refs[channel] = f"id{min(at, i)}"
        maps.append(refs)
    stored = _chain(maps)
    for at, refs in enumerate(maps):
        assert _read(stored, at) == refs
    assert all(encoded.depth < MAX_DEPTH for _own, encoded in stored)


def test_a_delta_holds_only_what_changed_and_is_the_same_bytes_in_any_process() -> None:
    base = {f"c{i}": "id0" for i in range(40)}
    changed = {**base, "c3": "id1", "c17": "id1"}
    del changed["c9"]
    stored = _chain([base, changed])
    own, delta = stored[1]
    assert (own, delta.base, delta.depth) == ("id1", "id0", 1)
    # The checkpoint's own id is stored as "", a removed channel as None, in the order of
    # the channels' names (not of a set's hashes, which differ from process to process).
    assert delta.data == ormsgpack.packb({"c17": "", "c3": "", "c9": None})
    full = stored[0][1]
    assert full.base is None and ormsgpack.unpackb(full.data) == dict.fromkeys(base, "")
