import asyncio
from typing import TypedDict

from tether.graph import END, StateGraph


class State(TypedDict):
    count: int

async def work(state: State) -> dict:
    await asyncio.sleep(0.2)                        # any await is a cancel point
    return {"count": state["count"] + 1}

builder = StateGraph(State).add_node("work", work).set_entry_point("work")
builder.add_conditional_edges("work", lambda s: END if s["count"] >= 100 else "work")
graph = builder.compile()

async def main() -> None:
    run = graph.astream({"count": 0})               # starts at once
    await asyncio.sleep(0.5)
    info = await run.cancel("changed my mind")      # recorded, propagated, checkpointed
    print(info.status, info.reason.message, f"{info.cancel_latency_ms:.2f} ms")

asyncio.run(main())
