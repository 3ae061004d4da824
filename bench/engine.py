"""Engine overhead per superstep with no checkpointer (DESIGN.md §7, first line).

Every node does almost nothing, so the time is the engine's: planning tasks, running them,
applying writes through channels and reducers, evaluating edges.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from bench.workload import Case, Env, State, Update, both_modes

ORDER = 10
FAMILY = "engine"


class Counter(TypedDict):
    count: int


class Rounds(TypedDict):
    round: int
    items: Annotated[list[str], operator.add]


def _increment(state: State) -> Update:
    return {"count": state["count"] + 1}


def _next_round(state: State) -> Update:
    return {"round": state["round"] + 1}


def build_chain(env: Env) -> Case:
    """`size` nodes in a line, n0 -> n1 -> ..., each adding one to a counter: one step per node."""
    names = [f"n{i}" for i in range(env.size)]
    graph = env.lib.StateGraph(Counter)
    for name in names:
        graph.add_node(name, env.node(_increment))
    graph.add_edge(env.lib.START, names[0])
    for source, target in itertools.pairwise(names):
        graph.add_edge(source, target)
    graph.add_edge(names[-1], env.lib.END)
    return Case(graph.compile(checkpointer=env.checkpointer), {"count": 0}, env.size)


def build_loop(env: Env) -> Case:
    """One node that routes back to itself through a conditional edge `size` times."""
    limit, end = env.size, env.lib.END

    def again(state: State) -> str:
        return "tick" if state["count"] < limit else end

    graph = env.lib.StateGraph(Counter)
    graph.add_node("tick", env.node(_increment))
    graph.add_edge(env.lib.START, "tick")
    graph.add_conditional_edges("tick", again)
    return Case(graph.compile(checkpointer=env.checkpointer), {"count": 0}, limit)


FANOUT_WIDTH = 50


def _collector(name: str) -> Callable[[State], Update]:
    def collect(state: State) -> Update:
        return {"items": [f"{name}:{state['round']}"]}

    collect.__name__ = name
    return collect


_ROUNDS_INPUT = {"round": 0, "items": []}


def _rounds_graph(env: Env, fan_out: Callable[[Any], str | list[str]]) -> Any:
    """fan -> (`fan_out` wires the parallel step) -> join -> fan again, `size` rounds."""
    rounds, end = env.size, env.lib.END

    def again(state: State) -> str:
        return "fan" if state["round"] < rounds else end

    graph = env.lib.StateGraph(Rounds)
    graph.add_node("fan", env.node(_next_round))
    graph.add_node("join", env.node(_collector("join")))
    graph.add_edge(env.lib.START, "fan")
    graph.add_edge(fan_out(graph), "join")
    graph.add_conditional_edges("join", again)
    return graph


def build_fanout(env: Env) -> Case:
    """50 parallel nodes on plain edges, joined by `add_edge([...], "join")`; 3 steps a round.

    Each worker appends to a reducer list, so the result also checks the order in which the
    writes of a parallel step are applied (by node name, DESIGN.md §8).
    """

    def wire(graph: Any) -> list[str]:
        names = [f"w{i}" for i in range(FANOUT_WIDTH)]
        for name in names:
            graph.add_node(name, env.node(_collector(name)))
            graph.add_edge("fan", name)
        return names

    graph = _rounds_graph(env, wire)
    return Case(graph.compile(checkpointer=env.checkpointer), _ROUNDS_INPUT, 3 * env.size)


def build_fanout_send(env: Env) -> Case:
    """Map-reduce with 50 `Send`s to one worker node, then a join; 3 steps a round."""
    send = env.lib.Send

    def scatter(state: State) -> list[Any]:
        return [send("work", {"i": i, "round": state["round"]}) for i in range(FANOUT_WIDTH)]

    def work(item: State) -> Update:
        return {"items": [f"w{item['i']}:{item['round']}"]}

    def wire(graph: Any) -> str:
        graph.add_node("work", env.node(work))
        graph.add_conditional_edges("fan", scatter)
        return "work"

    graph = _rounds_graph(env, wire)
    return Case(graph.compile(checkpointer=env.checkpointer), _ROUNDS_INPUT, 3 * env.size)


def merge_dicts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """A custom reducer: later keys win."""
    return {**left, **right}


_PLAIN_INTS = 20
_PLAIN_STRS = 4
_LISTS = 8
_DICTS = 4

WideState = TypedDict(  # 40 keys, built rather than typed out
    "WideState",
    {
        "step": int,
        "note": str,
        "big_text": str,
        "big_list": list[int],
        **{f"p{i}": int for i in range(_PLAIN_INTS)},  # type: ignore[misc]
        **{f"s{i}": str for i in range(_PLAIN_STRS)},
        **{f"l{i}": Annotated[list[int], operator.add] for i in range(_LISTS)},
        **{f"d{i}": Annotated[dict[str, int], merge_dicts] for i in range(_DICTS)},
    },
)


def _big_text(seed: int) -> str:
    return f"{seed:08d}" * 1280  # 10 KB


def _big_list(seed: int) -> list[int]:
    return list(range(seed, seed + 1000))


def wide_input() -> dict[str, Any]:
    """A full initial state: every key set, the large values included."""
    return {
        "step": 0,
        "note": "",
        "big_text": _big_text(0),
        "big_list": _big_list(0),
        **{f"p{i}": 0 for i in range(_PLAIN_INTS)},
        **{f"s{i}": "" for i in range(_PLAIN_STRS)},
        **{f"l{i}": [] for i in range(_LISTS)},
        **{f"d{i}": {} for i in range(_DICTS)},
    }


def _wide_step(state: State) -> Update:
    """Update a few keys: a plain int, a reducer list, a merged dict; now and then a large value."""
    step = state["step"] + 1
    plain = f"p{step % _PLAIN_INTS}"
    update: Update = {
        "step": step,
        plain: state[plain] + step,
        f"l{step % _LISTS}": [step],
        f"d{step % _DICTS}": {f"k{step % 50}": step},
    }
    if step % 10 == 0:
        update["big_text"] = _big_text(step)
        update[f"s{step % _PLAIN_STRS}"] = state["note"]
        update["note"] = f"at {step}"
    if step % 25 == 0:
        update["big_list"] = _big_list(step)
    return update


def build_wide(env: Env) -> Case:
    """A 40-key state (plain, reducer and large values) looped through one node `size` times."""
    limit, end = env.size, env.lib.END

    def again(state: State) -> str:
        return "advance" if state["step"] < limit else end

    graph = env.lib.StateGraph(WideState)
    graph.add_node("advance", env.node(_wide_step))
    graph.add_edge(env.lib.START, "advance")
    graph.add_conditional_edges("advance", again)
    return Case(graph.compile(checkpointer=env.checkpointer), wide_input(), limit)


WORKLOADS = [
    *both_modes(
        name="chain100",
        family=FAMILY,
        build=build_chain,
        size=100,
        quick_size=10,
    ),
    *both_modes(
        name="loop1000",
        family=FAMILY,
        build=build_loop,
        size=1000,
        quick_size=20,
    ),
    *both_modes(
        name="fanout50",
        family=FAMILY,
        build=build_fanout,
        size=20,
        quick_size=2,
    ),
    *both_modes(
        name="fanout50send",
        family=FAMILY,
        build=build_fanout_send,
        size=20,
        quick_size=2,
    ),
    *both_modes(
        name="widestate",
        family=FAMILY,
        build=build_wide,
        size=300,
        quick_size=20,
    ),
]
