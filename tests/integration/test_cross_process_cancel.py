"""A cancel recorded by another process reaches a run on a shared (SQLite) store: at a step
boundary, and while a node is in a long step."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, TypedDict

import pytest

import tether
from tether import CancelReason, RunStatus
from tether.checkpoint.sqlite import SqliteSaver
from tether.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio


class S(TypedDict):
    n: int


def graph(store: Any, node: Any) -> Any:
    b = StateGraph(S).add_node("work", node).add_edge(START, "work")
    b.add_conditional_edges("work", lambda s: "work" if s["n"] < 10_000 else END)
    return b.compile(checkpointer=store)


async def test_a_cancel_written_by_another_handle_stops_the_run_at_a_step_boundary(
    tmp_path: Path,
) -> None:
    async def step(state: S) -> dict[str, int]:
        await asyncio.sleep(0.001)
        return {"n": state["n"] + 1}

    here = SqliteSaver(tmp_path / "shared.db")
    there = SqliteSaver(tmp_path / "shared.db")  # another process's handle on the same file
    run = graph(here, step).start({"n": 0}, {"configurable": {"thread_id": "t"}})
    await asyncio.sleep(0.05)
    sent = time.monotonic()
    there.request_cancel(run.run_id, CancelReason("user", "from elsewhere", "other-process"))
    with pytest.raises(tether.RunCancelled) as caught:
        await run.result()
    assert time.monotonic() - sent < 0.5
    assert caught.value.reason.message == "from elsewhere"
    info = there.get_run(run.run_id)
    assert info.status is RunStatus.CANCELLED
    assert info.cancel_latency_ms is not None and info.cancel_latency_ms > 0
    there.close()
    here.close()


async def test_a_cancel_written_elsewhere_reaches_a_node_in_a_long_step(tmp_path: Path) -> None:
    async def long(state: S) -> dict[str, int]:
        await asyncio.sleep(30)
        return {"n": 1}

    here = SqliteSaver(tmp_path / "shared.db")
    there = SqliteSaver(tmp_path / "shared.db")
    run = graph(here, long).start({"n": 0}, {"configurable": {"thread_id": "t"}})
    await asyncio.sleep(0.05)
    sent = time.monotonic()
    there.request_cancel(run.run_id, CancelReason("user", "stop the long step", "other"))
    info = await run.core.wait()
    assert time.monotonic() - sent < 1.0
    assert info.status is RunStatus.CANCELLED
    assert [e.phase for e in there.events(run.run_id)][-5:] == [
        "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]
    there.close()
    here.close()
