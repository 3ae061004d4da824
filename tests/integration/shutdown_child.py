"""A program whose sync invoke (or sync stream: a third argument `stream`) the shutdown tests
interrupt with a signal."""

from __future__ import annotations

import sys
import time
from typing import TypedDict

import tether
from tether.checkpoint.sqlite import SqliteSaver
from tether.graph import END, START, StateGraph


class S(TypedDict):
    n: int


def step(state: S) -> dict[str, int]:
    if state["n"] == 3:
        print("ready", flush=True)
    if state["n"] >= 3 and sys.argv[2] == "deaf":
        time.sleep(60)  # ignores the cancel: only a second signal gets the process out
    tether.sleep_sync(0.02)
    return {"n": state["n"] + 1}


builder = StateGraph(S).add_node("step", step).add_edge(START, "step")
builder.add_conditional_edges("step", lambda s: "step" if s["n"] < 10_000 else END)
graph = builder.compile(checkpointer=SqliteSaver(sys.argv[1]))
config = {"configurable": {"thread_id": "t"}, "run_id": "victim", "cancel_grace": 30}
if sys.argv[3:] == ["stream"]:
    for _chunk in graph.stream({"n": 0}, config):
        pass
else:
    graph.invoke({"n": 0}, config)
