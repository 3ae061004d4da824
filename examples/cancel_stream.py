"""A LangGraph user's program, unchanged but for the imports (`langgraph` → `tether`).

They wanted `aclose()` to stop the graph and the loop to raise `CancelledError`. With LangGraph the
stream never starts (nothing iterates it during the sleep) and the loop just ends; with tether the
run starts at once, two nodes run, `aclose()` cancels the third mid-sleep, and iterating the
closed run raises `RunCancelled`, a subclass of `asyncio.CancelledError`.
"""

import asyncio
from typing import TypedDict

from tether.graph import END, StateGraph


class State(TypedDict):
    count: int


async def my_node(state: State):
    await asyncio.sleep(3)
    print(f"Node executed, count = {state['count'] + 1}")
    return {"count": state["count"] + 1}


def router(state: State):
    if state["count"] >= 100:
        return END
    return "my_node"


builder = StateGraph(State)
builder.add_node("my_node", my_node)
builder.set_entry_point("my_node")
builder.add_conditional_edges("my_node", router)
graph = builder.compile()


async def main():
    run = graph.astream({"count": 0})
    await asyncio.sleep(7)
    await run.aclose()
    try:
        async for _ in run:
            pass
    except asyncio.CancelledError:
        print("Graph execution cancelled successfully")


asyncio.run(main())
