"""Property: random graphs under random budgets never run past a budget by more than the one
in-flight step."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tether
from tether import RunCancelled
from tether.graph import END, START, StateGraph


class S(TypedDict):
    n: int
    calls: Annotated[list[str], operator.add]


def build(width: int, depth: int, tokens_per_call: int) -> Any:
    """`width` parallel chains of `depth` nodes, looping back to the start until n reaches 50."""
    b = StateGraph(S)

    def node(name: str) -> Any:
        def run(state: S) -> dict[str, Any]:
            tether.charge(tokens=tokens_per_call)
            return {"calls": [name]}
        return run

    b.add_node("head", lambda s: {"n": s["n"] + 1})
    b.add_edge(START, "head")
    tails = []
    for w in range(width):
        previous = "head"
        for d in range(depth):
            name = f"n{w}_{d}"
            b.add_node(name, node(name))
            b.add_edge(previous, name)
            previous = name
        tails.append(previous)
    b.add_node("tail", lambda s: {})
    b.add_edge(tails, "tail")
    b.add_conditional_edges("tail", lambda s: "head" if s["n"] < 50 else END)
    return b.compile()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 3), depth=st.integers(1, 3), tokens=st.integers(1, 5),
       steps=st.one_of(st.none(), st.integers(1, 30)),
       token_limit=st.one_of(st.none(), st.integers(1, 200)),
       calls=st.one_of(st.none(), st.integers(1, 20)))
def test_no_budget_is_overrun_by_more_than_one_step(  # noqa: PLR0917
        width: int, depth: int, tokens: int,
                                                   steps: int | None, token_limit: int | None,
                                                   calls: int | None) -> None:
    budget = {k: v for k, v in {"steps": steps, "tokens": token_limit,
                                "node_calls": calls}.items() if v is not None}
    graph = build(width, depth, tokens)
    try:
        graph.invoke({"n": 0, "calls": []}, {"budget": budget, "loop_detection": False})
        return
    except RunCancelled as stopped:
        usage = stopped.reason.evidence["usage"]
    per_step_tokens = width * tokens  # the most one superstep can spend
    if steps is not None:
        assert usage["steps"] <= steps
    if token_limit is not None:
        assert usage["tokens"] <= token_limit + per_step_tokens
    if calls is not None:
        assert max(usage["node_calls"].values()) <= calls
