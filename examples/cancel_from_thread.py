"""Cancel a run by id from another thread, then resume it from its final checkpoint.

`graph.invoke_async` starts the run in the background and returns its id; any thread can call
`graph.cancel(run_id)`; `graph.resume(run_id)` continues on the same thread (conversation), and
only the unfinished work runs again.
"""

import tempfile
import threading
import time
from pathlib import Path
from typing import TypedDict

import tether
from tether.checkpoint.sqlite import SqliteSaver
from tether.graph import END, START, StateGraph


class State(TypedDict):
    chapter: int


async def write_chapter(state: State) -> dict:
    await tether.sleep(0.3)  # one chapter of work; a cancel point
    print(f"wrote chapter {state['chapter'] + 1}")
    return {"chapter": state["chapter"] + 1}


def more(state: State) -> str:
    return END if state["chapter"] >= 6 else "write_chapter"


builder = StateGraph(State)
builder.add_node("write_chapter", write_chapter)
builder.add_edge(START, "write_chapter")
builder.add_conditional_edges("write_chapter", more)

with tempfile.TemporaryDirectory() as tmp, SqliteSaver(Path(tmp) / "book.db") as saver:
    graph = builder.compile(checkpointer=saver)
    run_id = graph.invoke_async({"chapter": 0}, {"configurable": {"thread_id": "book"}})

    def editor() -> None:
        time.sleep(1.0)
        info = graph.cancel(run_id, "the editor wants a break")  # returns once durable
        print(f"editor: cancel requested, run is {info.status.value}")

    other = threading.Thread(target=editor)
    other.start()
    other.join()
    info = graph.wait(run_id, timeout=10)
    print(f"run {info.status.value}: {info.reason.message}, "
          f"{info.cancel_latency_ms:.2f} ms after the request")
    print(f"kept: chapter {saver.load(run_id).values['chapter']}")

    resumed = graph.resume(run_id)
    final = graph.wait(resumed.run_id, timeout=10)
    state = graph.get_state({"configurable": {"thread_id": "book"}})
    print(f"resumed run {final.status.value}: chapter {state.values['chapter']}")
