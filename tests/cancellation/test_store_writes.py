"""What a cancel leaves in a long-term store: store writes are not part of the run's
checkpoint. A write committed before the cancel stays; the node's state update does not; a
resume runs the node again, which writes again (so writes should be idempotent). A node that
goes on after the cancel (a sync node's abandoned thread) can still write to the store — the
final checkpoint refuses its state update, the store cannot tell — unless it checks
`tether.cancelled()` first."""

from __future__ import annotations

import asyncio
import operator
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import tether
from tether.checkpoint.sqlite import SqliteSaver
from tether.config import get_store
from tether.graph import END, START, StateGraph
from tether.store.base import BaseStore
from tether.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


class Notes(TypedDict):
    topic: str
    saved: Annotated[list[str], operator.add]


def remembering(wrote: asyncio.Event, hold: bool) -> Any:
    calls: list[str] = []

    async def remember(state: Notes, store: BaseStore) -> dict[str, list[str]]:
        calls.append(state["topic"])
        await store.aput(("notes",), state["topic"], {"text": f"about {state['topic']}",
                                                      "attempt": len(calls)})
        wrote.set()
        if hold and len(calls) == 1:
            await asyncio.sleep(3600)  # cancelled here, after the write
        return {"saved": [state["topic"]]}

    remember.calls = calls  # type: ignore[attr-defined]
    return remember


async def test_a_store_write_made_before_a_cancel_stays_and_the_resume_writes_again(
        tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    store, saver = SqliteStore(db), SqliteSaver(db)
    wrote = asyncio.Event()
    node = remembering(wrote, hold=True)
    graph = (StateGraph(Notes).add_node("remember", node).add_edge(START, "remember")
             .add_edge("remember", END).compile(checkpointer=saver, store=store))
    config = {"configurable": {"thread_id": "t"}}
    run = graph.astream({"topic": "tides", "saved": []}, config)
    await asyncio.wait_for(wrote.wait(), 10)
    await run.cancel("changed my mind")

    # The store kept the write; the checkpoint did not take the node's update.
    item = await store.aget(("notes",), "tides")
    assert item is not None and item.value == {"text": "about tides", "attempt": 1}
    assert (await graph.aget_state(config)).values == {"topic": "tides", "saved": []}
    assert (await graph.aget_state(config)).next == ("remember",)

    resumed = graph.resume(run.run_id)
    assert await resumed.result() == {"topic": "tides", "saved": ["tides"]}
    assert node.calls == ["tides", "tides"]  # the node ran again ...
    again = await store.aget(("notes",), "tides")
    assert again is not None and again.value["attempt"] == 2  # ... and overwrote its item
    assert again.created_at == item.created_at
    assert [i.key for i in await store.asearch(("notes",))] == ["tides"]
    store.close()
    saver.close()


async def test_a_node_that_goes_on_after_the_cancel_still_writes_unless_it_checks(
        tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    store, saver = SqliteStore(db), SqliteSaver(db)
    started, go, done = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def stubborn(state: Notes) -> dict[str, list[str]]:  # a sync node deaf to the cancel
        started.set()
        go.wait(10)
        seen.append(tether.cancelled())
        get_store().put(("notes",), "late", {"text": "written after the cancel"})
        if not tether.cancelled():  # the check that keeps a late write out
            get_store().put(("notes",), "checked", {"text": "never written"})
        done.set()
        return {"saved": ["late"]}

    graph = (StateGraph(Notes).add_node("stubborn", stubborn).add_edge(START, "stubborn")
             .add_edge("stubborn", END).compile(checkpointer=saver, store=store))
    config = {"configurable": {"thread_id": "t"}, "cancel_grace": 0.05}
    run = graph.astream({"topic": "tides", "saved": []}, config)
    assert await asyncio.to_thread(started.wait, 10)
    info = await run.cancel("stop")  # the thread is abandoned after its grace
    assert info.status.value == "cancelled"
    go.set()
    assert await asyncio.to_thread(done.wait, 10)

    assert seen == [True]
    assert store.get(("notes",), "late") is not None  # the store took the late write
    assert store.get(("notes",), "checked") is None
    assert (await graph.aget_state(config)).values == {"topic": "tides", "saved": []}
    store.close()
    saver.close()
