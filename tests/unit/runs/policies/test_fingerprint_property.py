"""Properties of the repeated-state fingerprint over random write sequences: the one kept from
step to step (patched from the written keys, values hashed once per object, lists extended as
they grow) equals one made from scratch, in isolation and inside real runs (reducers, lists
grown in place, equal values written again, `Send` tasks, several tasks per step); and two
states have equal fingerprints exactly when they pack to the same bytes."""

from __future__ import annotations

import copy
import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import ormsgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.channels import Overwrite
from tether.graph import END, START, StateGraph
from tether.runs.policies.loops import Fingerprints
from tether.types import Send

_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none(),
    st.floats(allow_nan=False), st.text(max_size=40),
)
_ITEMS = st.one_of(_SCALARS, st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3))
_KEYS = ("n", "s", "log", "d")

_VALUES = st.one_of(_SCALARS, st.lists(_ITEMS, max_size=4),
                    st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3))

# One write: a key and what happens to it. "append" makes a new list from the one the state
# holds (a reducer's append, which the state reports); "grow" first appends to that list in
# place (a node mutating its input), then appends one more item as a reducer does; "set"
# replaces the value; "same" writes a value equal to the one there (a copy).
_WRITES = st.lists(st.one_of(
    st.tuples(st.just("append"), st.lists(_ITEMS, max_size=3)),
    st.tuples(st.just("grow"), _ITEMS),
    st.tuples(st.just("set"), st.sampled_from(_KEYS), _VALUES),
    st.tuples(st.just("same"), st.sampled_from(_KEYS)),
), min_size=1, max_size=25)


class _View:
    """The state a step starts from: its version, the keys its last change wrote (and a
    channel that is no state key, as a commit's branch), and the append it made (if any)."""

    plain_inputs = True

    def __init__(self, values: dict[str, Any], version: int, written: set[str],
                 made: tuple[Any, tuple[int, int]] | None) -> None:
        self.values = values
        self.version = version
        self.written = {*written, "branch:to:node"}
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
    for version, write in enumerate(writes, 1):
        made = None
        if write[0] in ("append", "grow"):
            old = state["log"] if type(state["log"]) is list else []
            tail = write[1] if write[0] == "append" else [None]
            if write[0] == "grow":
                old.append(write[1])
            new = [*old, *tail]
            if old is state["log"]:
                made = (new, (id(old), len(tail)))
            state, key = {**state, "log": new}, "log"
        elif write[0] == "same":
            key = write[1]
            state = {**state, key: copy.deepcopy(state[key])}
        else:
            state, key = {**state, write[1]: write[2]}, write[1]
        yield state, _View(state, version, {key}, made)


def _fresh(state: dict[str, Any], head: str = "node") -> tuple[Any, ...]:
    """The fingerprint of a copy of `state` (no value object shared), by a new `Fingerprints`."""
    return _OF_DICT(Fingerprints(None), ormsgpack.unpackb(_packed(state)), head)


_OF_DICT = Fingerprints.of_dict  # (the run's test spies on the class's own)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_WRITES)
def test_the_kept_fingerprint_equals_one_made_from_scratch(writes: list[tuple[Any, ...]]) -> None:
    patched, cached = Fingerprints(None), Fingerprints(None)
    for state, view in _states(writes):
        fresh = _fresh(state)
        assert patched.of_state(state, "node", view) == fresh  # from the written keys
        assert cached.of_dict(state, "node", view) == fresh  # every key, cached per object


class _Wide(TypedDict):
    n: int
    s: str
    log: Annotated[list[Any], operator.add]
    d: Any


# One step of a run: what the node writes, and how many `Send` tasks run beside it next step
# (each appends to the log, so a step of several tasks writes a key twice).
_STEPS = st.lists(st.tuples(_WRITES.map(lambda writes: writes[0]), st.integers(0, 2)),
                  min_size=1, max_size=12)


@pytest.mark.parametrize("fields", [None, ("n", "log")])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_STEPS)
def test_fingerprints_in_a_run_equal_ones_made_from_scratch(
        fields: tuple[str, ...] | None, steps: list[tuple[tuple[Any, ...], int]]) -> None:
    """Every fingerprint the run's loop detector makes, whichever way (patched, per object,
    per task of a step of several), is the one a new `Fingerprints` makes of a copy."""
    made: list[str] = []

    def checked(method: Any) -> Any:
        def spy(self: Fingerprints, given: dict[str, Any], head: Any = None,
                state: Any = None) -> tuple[Any, ...]:
            result = method(self, given, head, state)
            chosen = given if self.fields is None else {k: given.get(k) for k in self.fields}
            assert result == (_fresh(chosen, head) if head is not None
                              else _fresh(chosen)[1:])
            made.append(method.__name__)
            return result
        return spy


    def node(state: _Wide) -> dict[str, Any]:
        write = steps[state["n"]][0]
        out: dict[str, Any] = {"n": state["n"] + 1}
        if write[0] == "append":
            out["log"] = write[1]
        elif write[0] == "grow":
            if type(state["log"]) is list:
                state["log"].append(write[1])  # in place, then as a reducer does
            out["log"] = [None]
        elif write[0] == "same":
            if write[1] != "n":
                out[write[1]] = copy.deepcopy(state[write[1]])  # type: ignore[literal-required]
        elif write[1] != "n" and (write[1] != "log" or type(write[2]) is list):
            out[write[1]] = write[2]
        if write[0] in ("same", "set") and "log" in out:  # a reducer's key: replaced
            out["log"] = Overwrite(out["log"])
        return out

    def worker(item: Any) -> dict[str, Any]:
        return {"log": [item]}

    def route(state: _Wide) -> Any:
        if state["n"] >= len(steps):
            return END
        return [*(Send("worker", i) for i in range(steps[state["n"] - 1][1])), "step"]

    graph = (StateGraph(_Wide).add_node("step", node).add_node("worker", worker)
             .add_edge(START, "step").add_conditional_edges("step", route, ["step", "worker", END])
             .compile())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Fingerprints, "of_state", checked(Fingerprints.of_state))
        patch.setattr(Fingerprints, "of_dict", checked(Fingerprints.of_dict))
        graph.invoke({"n": 0, "s": "", "log": [], "d": {}},
                     {"recursion_limit": 10_000, "loop_detection": {
                         "max_repeats": 10**6, "no_progress_steps": None,
                         **({} if fields is None else {"fields": list(fields)})}})
    assert made  # the detector fingerprinted every step's input through the spies


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_WRITES)
def test_states_share_a_fingerprint_exactly_when_they_pack_alike(
        writes: list[tuple[Any, ...]]) -> None:
    made = [(_packed(state), _fresh(state)) for state, _ in _states(writes)]
    for packed, fingerprint in made:
        for other_packed, other in made:
            assert (fingerprint == other) == (packed == other_packed)


def test_a_list_replaced_by_one_of_equal_but_other_items_is_hashed_again() -> None:
    """`[0, 0, False] == [0, 0, 0]`, but they pack apart: a list the state does not say it
    appended to is hashed afresh, never compared with the last one (the example hypothesis
    found)."""
    kept = Fingerprints(None)
    kept.of_dict({"log": [0, 0, 0]}, "node")
    replaced = {"log": [0, 0, False]}
    assert kept.of_dict(replaced, "node", _View(replaced, 2, {"log"}, None)) == \
        _fresh(replaced)
