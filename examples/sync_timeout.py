"""A run timeout that holds for sync code: a blocking node checks `tether.cancelled()` between
calls and naps with `tether.sleep_sync` (cut short by a cancel), so a 1 s timeout stops it in
time; its `finally` block and its `on_cancel` hook run."""

import time
from typing import TypedDict

import tether
from tether.graph import END, START, StateGraph


class State(TypedDict):
    pages: int


def crawl(state: State) -> dict:
    """A sync node: the kind of loop that LangGraph cannot stop (its thread runs on)."""
    pages = state["pages"]
    tether.on_cancel(lambda: print("on_cancel hook: crawler closed"))
    try:
        while not tether.cancelled():  # a cooperative check between blocking calls
            time.sleep(0.05)  # a blocking call that cannot be interrupted
            pages += 1
            tether.sleep_sync(0.05)  # a nap that a cancel cuts short (raises NodeCancelled)
    finally:
        print(f"crawl stopped after {pages} pages: {tether.cancel_reason().message}")
    return {"pages": pages}  # not reached once cancelled: no write after the request


builder = StateGraph(State)
builder.add_node("crawl", crawl)
builder.add_edge(START, "crawl")
builder.add_edge("crawl", END)
graph = builder.compile()

started = time.monotonic()
try:
    graph.invoke({"pages": 0}, {"timeout": 1.0})
except tether.RunTimeout as exc:
    print(f"RunTimeout after {time.monotonic() - started:.2f} s: {exc.reason.message}")
