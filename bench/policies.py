"""The cost of tether's policies (issue 5's goal: under 10% per superstep with all of them on).

This family compares tether with tether: the **tether** column runs with every policy on — a
budget on steps, node calls, tokens, cost, tool calls and both rates (all far above what the run
uses), repeated-state loop detection over the whole state, the no-progress detector, and a guard
that inspects every step's writes; every node also reports usage with `tether.charge()`. The
**LangGraph** column of these rows is *tether with every policy off* (no budget, loop detection
off, no guard; the same nodes, whose `charge()` then counts nothing). The ratio is the cost of
the policies; the goal is 1.10.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from bench.libs import Lib
from bench.timing import Contest, Outcome, Plan
from bench.workload import MODES, Mode

ORDER = 40
GOAL = 1.10
_ON, _OFF = "tether", "langgraph"  # the harness's two columns: policies on, policies off

BUDGET = {"steps": 10**9, "node_calls": 10**9, "tokens": 10**12, "cost": 1e12,
          "tool_calls": 10**9, "errors_per_minute": 10**6, "tool_calls_per_minute": 10**9}


class Loop(TypedDict):
    n: int


class Wide(TypedDict):
    n: int
    text: str
    items: list[int]
    log: Annotated[list[int], operator.add]


def _allow(step: int, writes: Any, state: Any) -> None:
    """A guard that looks at every write and lets it through."""
    for update in writes.values():
        len(update)


def _loop_graph(steps: int, **compile_kw: Any) -> Any:
    import tether
    from tether.graph import END, START, StateGraph

    def step(state: Loop) -> dict[str, int]:
        tether.charge(tokens=1)
        return {"n": state["n"] + 1}

    b = StateGraph(Loop).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if s["n"] < steps else END)
    return b.compile(**compile_kw)


def _wide_graph(steps: int, **compile_kw: Any) -> Any:
    import tether
    from tether.graph import END, START, StateGraph

    def step(state: Wide) -> dict[str, Any]:
        tether.charge(tokens=3, cost=0.001, tool_calls=1)
        return {"n": state["n"] + 1, "log": [state["n"]]}

    b = StateGraph(Wide).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if s["n"] < steps else END)
    return b.compile(**compile_kw)


ON: dict[str, Any] = {"budget": BUDGET, "guards": [_allow],
                      "loop_detection": {"max_repeats": 10**6, "no_progress_steps": 10**6}}
OFF: dict[str, Any] = {"loop_detection": False}


@dataclass(frozen=True)
class PolicyCost:
    """One graph, timed with all policies on and with all off."""

    name: str
    mode: Mode
    build: Callable[..., Any]
    start: Callable[[], dict[str, Any]]
    steps: int
    quick_steps: int
    family: str = "policies"
    unit: str = "step"
    goal: float = GOAL

    @property
    def doc(self) -> str:
        return (f"{self.name}: per-step cost with every policy on (tether column) vs off "
                "(LangGraph column: tether without policies)")

    def measure(self, libs: Sequence[Lib], plan: Plan) -> dict[str, Outcome]:
        del libs
        steps = self.quick_steps if plan.quick else self.steps
        graphs = {_ON: self.build(steps, **ON), _OFF: self.build(steps, **OFF)}
        contest = Contest(plan, [_ON, _OFF])
        for _index, name in contest.turns():
            graph = graphs[name]
            with contest.lap(name):
                if self.mode == "sync":
                    contest.results[name] = graph.invoke(self.start())
                else:
                    import asyncio

                    contest.results[name] = asyncio.run(graph.ainvoke(self.start()))
        return contest.outcomes(per=steps)


def _start_wide() -> dict[str, Any]:
    return {"n": 0, "text": "x" * 10_000, "items": list(range(1000)), "log": []}


WORKLOADS = [
    workload
    for mode in MODES
    for workload in (
        PolicyCost("policies-loop", mode, _loop_graph, lambda: {"n": 0}, 1000, 50),
        PolicyCost("policies-wide", mode, _wide_graph, _start_wide, 300, 30),
    )
]
