"""Graphs the policy tests share."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from tether.graph import END, START, StateGraph


class Count(TypedDict):
    """A loop counter and a log of the nodes that ran."""

    count: int
    log: Annotated[list[str], operator.add]


def counter(node: Callable[..., Any] | None = None, *, until: int = 1000, **compile_kw: Any
            ) -> Any:
    """A one-node loop; `node` defaults to incrementing `count`."""

    def step(state: Count) -> dict[str, Any]:
        return {"count": state["count"] + 1, "log": ["step"]}

    b = StateGraph(Count).add_node("step", node or step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if s["count"] < until else END)
    return b.compile(**compile_kw)


def thread(name: str, **extra: Any) -> dict[str, Any]:
    """A config on thread `name`."""
    return {"configurable": {"thread_id": name}, **extra}
