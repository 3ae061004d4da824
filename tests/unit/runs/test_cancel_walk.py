"""The walk of one cancelled run: which modules of tether it goes through, counted with
`sys.setprofile`, and a test that keeps the walk as short as docs/design.md says it is.

Run as a script (`python tests/unit/runs/test_cancel_walk.py`) it prints the walk: the modules
in the order the run first enters them, how many there are, and how many times a call enters
the run's own modules (`runs/core.py` and its base `runs/inbox.py`) from another module.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

import tether
from tether.checkpoint.memory import InMemorySaver
from tether.graph import END, START, StateGraph

SRC = Path(tether.__file__).parent
CORE = "runs/core.py"
RUN = frozenset({CORE, "runs/inbox.py"})
"""The run's own modules: `RunCore` and the base that takes its cancel requests (one object)."""


class State(TypedDict):
    n: int


@dataclass
class Walk:
    """What one run went through, call by call (tether's own frames only)."""

    order: list[str] = field(default_factory=list)
    """Modules in the order the run first entered them."""
    core_entries: int = 0
    """Calls into the run's modules (`RUN`) made from another module."""

    def note(self, frame: FrameType) -> None:
        module = _module(frame)
        if module is None:
            return
        if module not in self.order:
            self.order.append(module)
        caller = frame.f_back
        if module in RUN and (caller is None or _module(caller) not in RUN):
            self.core_entries += 1


def _module(frame: FrameType) -> str | None:
    path = Path(frame.f_code.co_filename)
    if not path.is_relative_to(SRC):
        return None
    return path.relative_to(SRC).as_posix()


def _graph() -> tuple[Any, asyncio.Event]:
    started = asyncio.Event()

    async def work(state: State) -> dict[str, int]:
        started.set()
        await asyncio.sleep(10)
        return {"n": state["n"] + 1}

    builder = StateGraph(State)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder.compile(checkpointer=InMemorySaver()), started


async def _cancelled_run(walk: Walk | None) -> None:
    """One run of an async node on a checkpointed thread, cancelled by its handle while the node
    awaits; traced by `walk` from the call that starts it to the cancel's return (the run's
    end)."""
    graph, started = _graph()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and walk is not None:
            walk.note(frame)

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        run = graph.astream({"n": 0}, {"configurable": {"thread_id": "t"}})
        await started.wait()
        await run.cancel("stop")
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def walk() -> Walk:
    """The walk of one cancelled run (after one untraced run has imported what it imports)."""
    asyncio.run(_cancelled_run(None))
    traced = Walk()
    asyncio.run(_cancelled_run(traced))
    return traced


def test_a_cancelled_run_crosses_few_modules_and_enters_the_core_rarely() -> None:
    found = walk()
    assert CORE in found.order and "runs/finalize.py" in found.order
    # docs/design.md gives these numbers: update both if the walk changes on purpose.
    assert len(found.order) <= 46, found.order
    assert found.core_entries <= 14


if __name__ == "__main__":
    result = walk()
    for number, module in enumerate(result.order, 1):
        print(f"{number:3} {module}")
    print(f"modules: {len(result.order)}; calls into the run ({', '.join(sorted(RUN))}) "
          f"from another module: {result.core_entries}")
