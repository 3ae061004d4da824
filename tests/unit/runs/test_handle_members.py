"""A `Run`'s record and status are attributes alike; `run.info()` keeps working."""

from __future__ import annotations

from typing import TypedDict

import pytest

from tether.graph import END, START, StateGraph
from tether.types import RunInfo, RunStatus


class State(TypedDict):
    n: int


@pytest.mark.anyio
async def test_info_and_status_are_both_attributes_and_info_can_still_be_called() -> None:
    graph = (StateGraph(State).add_node("inc", lambda s: {"n": s["n"] + 1})
             .add_edge(START, "inc").add_edge("inc", END).compile())
    run = graph.start({"n": 1})
    await run.result()
    assert run.status is RunStatus.SUCCESS
    assert isinstance(run.info, RunInfo)
    assert run.info.status is run.status
    assert run.info() == run.info
    assert run.info.run_id == run.run_id
