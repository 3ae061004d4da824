"""`acancel` of a run this loop does not drive (paused for input, or driven elsewhere) and the
wait for its end make no blocking store call on the loop: the sync cancel path runs in a worker
thread, and the wait polls through the store's async read."""

from __future__ import annotations

import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

import tether
from tether import RunStatus
from tether.checkpoint.memory import InMemorySaver
from tether.graph import START, StateGraph
from tether.types import CancelReason, RunInfo

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


class Noting(InMemorySaver):
    """A memory store noting the thread of each sync `request_cancel` and `get_run`."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[tuple[str, threading.Thread]] = []

    def request_cancel(self, run_id: str, reason: CancelReason) -> tuple[RunInfo, bool]:
        self.threads.append(("request_cancel", threading.current_thread()))
        return super().request_cancel(run_id, reason)

    def get_run(self, run_id: str) -> RunInfo | None:
        self.threads.append(("get_run", threading.current_thread()))
        return super().get_run(run_id)


async def test_a_cancel_of_a_paused_run_is_recorded_off_the_loop() -> None:
    def ask(state: Log) -> dict[str, Any]:
        return {"log": [tether.interrupt("why?")]}

    store = Noting()
    graph = StateGraph(Log).add_node("ask", ask).add_edge(START, "ask").compile(
        checkpointer=store)
    out = await graph.ainvoke({"log": []}, {"configurable": {"thread_id": "paused"}})
    assert "__interrupt__" in out
    (paused,) = graph.list_runs(thread_id="paused")
    assert paused.status is RunStatus.INTERRUPTED
    store.threads.clear()

    info = await graph.acancel(paused.run_id, "not answering", wait=True)

    assert info.status is RunStatus.CANCELLED
    loop_thread = threading.current_thread()
    called = [name for name, thread in store.threads]
    assert "request_cancel" in called
    assert all(thread is not loop_thread for _name, thread in store.threads), store.threads
