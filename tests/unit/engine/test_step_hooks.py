"""What the loop tells a run's policies at a step's start: the tasks that will run (a task whose
writes a resumed step's checkpoint kept does not run again, nor count again)."""

from __future__ import annotations

from typing import Any, TypedDict

from tether.checkpoint.memory import InMemorySaver
from tether.graph import START, StateGraph
from tether.types import Command, interrupt


class S(TypedDict, total=False):
    n: int
    m: int


def test_a_task_kept_by_a_resumed_step_is_not_counted_again() -> None:
    ran: list[str] = []

    def asks(state: S) -> dict[str, Any]:
        ran.append("asks")
        return {"n": interrupt("n?")}

    def quick(state: S) -> dict[str, Any]:
        ran.append("quick")
        return {"m": 7}

    b = StateGraph(S).add_node("asks", asks).add_node("quick", quick)
    b.add_edge(START, "asks").add_edge(START, "quick")
    graph = b.compile(checkpointer=InMemorySaver())
    config: dict[str, Any] = {"configurable": {"thread_id": "t"}}
    graph.invoke({"n": 0}, config)
    # The resuming run may not call `quick` at all: its kept writes are not a call.
    resumed = {**config, "budget": {"node_calls": {"quick": 0, "asks": 1}, "steps": 1}}
    assert graph.invoke(Command(resume=5), resumed) == {"n": 5, "m": 7}
    assert sorted(ran) == ["asks", "asks", "quick"]
