"""The graph the scale-out tests serve on every server and worker: `ticker` takes `steps`
steps, each streaming `per_step` custom chunks `{"step", "i"}` a `pause` apart (cancel points),
so a run is long enough to be streamed, cut, cancelled and taken over mid-way."""

from __future__ import annotations

from typing import Any, TypedDict

import tether
from tether.config import get_stream_writer
from tether.graph import END, START, StateGraph


class Ticks(TypedDict):
    step: int
    steps: int
    per_step: int
    pause: float


async def tick(state: Ticks) -> dict[str, int]:
    write = get_stream_writer()
    for i in range(state["per_step"]):
        write({"step": state["step"], "i": i})
        await tether.sleep(state["pause"])
    return {"step": state["step"] + 1}


def _next(state: Ticks) -> Any:
    return "tick" if state["step"] < state["steps"] else END


def _ticker() -> Any:
    builder = StateGraph(Ticks)
    builder.add_node("tick", tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", _next, {"tick": "tick", END: END})
    return builder.compile()


ticker = _ticker()
