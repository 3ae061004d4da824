"""Properties of the repeated-state fingerprint over random write sequences: the one kept from
step to step (values hashed once per object, lists extended as they grow) equals one made from
scratch, and two states have equal fingerprints exactly when they pack to the same bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ormsgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.runs.policies.loops import Fingerprints

_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none(),
    st.floats(allow_nan=False), st.text(max_size=40),
)
_ITEMS = st.one_of(_SCALARS, st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3))
_KEYS = ("n", "s", "log", "d")

# One write: a key and what happens to it. "append" makes a new list from the one the state
# holds (a reducer's append, which the state reports); "grow" first appends to that list in
# place (a node mutating its input), then appends one more item as a reducer does; "set"
# replaces the value.
_WRITES = st.lists(st.one_of(
    st.tuples(st.just("append"), st.lists(_ITEMS, max_size=3)),
    st.tuples(st.just("grow"), _ITEMS),
    st.tuples(st.just("set"), st.sampled_from(_KEYS), st.one_of(
        _SCALARS, st.lists(_ITEMS, max_size=4),
        st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3))),
), min_size=1, max_size=25)


class _View:
    """The state a step starts from, reporting the append its last commit made (if any)."""

    def __init__(self, values: dict[str, Any], made: tuple[Any, tuple[int, int]] | None) -> None:
        self.values = values
        self._made = made

    def appended(self, key: str, value: Any) -> tuple[int, int] | None:
        made = self._made
        return made[1] if made is not None and key == "log" and value is made[0] else None


def _packed(state: dict[str, Any]) -> bytes:
    return ormsgpack.packb(state)


def _states(writes: list[tuple[Any, ...]]) -> Iterator[tuple[dict[str, Any], _View]]:
    """The states the writes make, one per write, each with the view of its commit (a list
    grown in place changes the states made before: each is to be read before the next)."""
    state: dict[str, Any] = {"n": 0, "s": "", "log": [], "d": {}}
    for write in writes:
        made = None
        if write[0] in ("append", "grow"):
            old = state["log"] if type(state["log"]) is list else []
            tail = write[1] if write[0] == "append" else [None]
            if write[0] == "grow":
                old.append(write[1])
            new = [*old, *tail]
            if old is state["log"]:
                made = (new, (id(old), len(tail)))
            state = {**state, "log": new}
        else:
            state = {**state, write[1]: write[2]}
        yield state, _View(state, made)


def _fresh(state: dict[str, Any]) -> tuple[Any, ...]:
    """The fingerprint of a copy of `state` (no value object shared), by a new `Fingerprints`."""
    copy = ormsgpack.unpackb(_packed(state))
    return Fingerprints(None).of_dict(copy, "node")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_WRITES)
def test_the_kept_fingerprint_equals_one_made_from_scratch(writes: list[tuple[Any, ...]]) -> None:
    kept = Fingerprints(None)
    for state, view in _states(writes):
        assert kept.of_dict(state, "node", view) == _fresh(state)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_WRITES)
def test_states_share_a_fingerprint_exactly_when_they_pack_alike(
        writes: list[tuple[Any, ...]]) -> None:
    made = [(_packed(state), _fresh(state)) for state, _ in _states(writes)]
    for packed, fingerprint in made:
        for other_packed, other in made:
            assert (fingerprint == other) == (packed == other_packed)
