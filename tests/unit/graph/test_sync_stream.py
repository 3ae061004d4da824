"""A sync `stream()` on the calling thread's private loop does not format what it streams.

Each batch of chunks is the result of one call into the private loop; `asyncio.Runner` would
install a SIGINT handler around it and, on the way out, format the `repr()` of its finished task
(the batch of chunks: chat messages are slow to format). tether's own signal guard is in place
instead, so nothing the graph streams is ever formatted.
"""

from __future__ import annotations

import threading
from typing import Any, TypedDict

import pytest

from tether.graph import END, START, StateGraph


class Loud:
    """A value that counts how often it is formatted."""

    formatted = 0

    def __repr__(self) -> str:
        Loud.formatted += 1
        return "Loud()"


class S(TypedDict):
    n: int
    value: Any


def _graph() -> Any:
    def step(state: S) -> dict[str, Any]:
        return {"n": state["n"] + 1, "value": Loud()}

    builder = StateGraph(S).add_node("step", step).add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: "step" if s["n"] < 5 else END)
    return builder.compile()


@pytest.mark.parametrize("mode", ["values", "updates"])
def test_streamed_values_are_never_formatted(mode: str) -> None:
    assert threading.current_thread() is threading.main_thread()
    Loud.formatted = 0
    chunks = list(_graph().stream({"n": 0, "value": None}, stream_mode=mode))
    assert len(chunks) >= 5
    assert Loud.formatted == 0
