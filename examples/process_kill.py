"""A node that will not stop, isolated in a process: on cancel it is asked (cooperative), then
interrupted (terminated), and at the end of its grace killed. The run still ends cancelled,
with its final checkpoint, and the audit log says how the node was stopped."""

import time
from typing import TypedDict

import tether
from tether.checkpoint.memory import InMemorySaver
from tether.graph import END, START, StateGraph


class State(TypedDict):
    total: int


def crunch(state: State) -> dict:
    """A CPU loop inside a library that swallows every exception, the cancel's included."""
    total = state["total"]
    while True:
        try:  # noqa: SIM105 - the stubborn code this example is about
            total += sum(i * i for i in range(100_000))
        except BaseException:  # noqa: BLE001
            pass


builder = StateGraph(State)
builder.add_node("crunch", crunch, isolation="process")
builder.add_edge(START, "crunch")
builder.add_edge("crunch", END)

if __name__ == "__main__":  # the worker process imports this module
    saver = InMemorySaver()
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}, "timeout": 1.0, "cancel_grace": 0.6}
    started = time.monotonic()
    try:
        graph.invoke({"total": 0}, config)
    except tether.RunTimeout as exc:
        print(f"RunTimeout after {time.monotonic() - started:.2f} s")
        for event in saver.events(exc.run_id):
            if event.phase == "terminate_node":
                print(f"terminate_node {event.node}: {event.detail['how']}")
        print(f"final checkpoint: {exc.checkpoint_id is not None}")
