"""Runs you can hold: they start at once, stop on cancel, and say why."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest

import tether
from tether import CancelReason, RunCancelled, RunStatus, RunTimeout
from tether.errors import RunNotFound

from ._graphs import Count, looping, phases

pytestmark = pytest.mark.anyio


def counting(delay: float = 0.005) -> Any:
    async def work(state: Count) -> dict[str, int]:
        await asyncio.sleep(delay)
        return {"count": state["count"] + 1}
    return work


async def test_seed_example_cancels_after_nodes_have_run() -> None:
    graph = looping(counting(0.01)).compile()
    run = graph.astream({"count": 0})
    await asyncio.sleep(0.05)
    await run.aclose()
    with pytest.raises(asyncio.CancelledError) as caught:
        async for _ in run:
            pass
    assert isinstance(caught.value, RunCancelled)
    assert caught.value.reason.kind == "user"
    assert run.status is RunStatus.CANCELLED
    assert graph.ledger.get_run(run.run_id).status is RunStatus.CANCELLED
    events = phases(graph.ledger.events(run.run_id))
    assert events[:2] == ["create", "start"]
    assert events[-6:] == [
        "request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


async def test_a_run_makes_progress_without_a_consumer() -> None:
    done = asyncio.Event()

    async def work(state: Count) -> dict[str, int]:
        done.set()
        return {"count": 1}

    run = looping(work, until=1).compile().astream({"count": 0})
    await asyncio.wait_for(done.wait(), 2)
    assert await run.result() == {"count": 1}


async def test_cancel_returns_the_terminal_record_with_reason_and_latency() -> None:
    graph = looping(counting()).compile()
    run = graph.astream({"count": 0})
    await asyncio.sleep(0.02)
    info = await run.cancel("enough")
    assert info.status is RunStatus.CANCELLED
    assert info.reason is not None and info.reason.message == "enough"
    assert info.reason.kind == "user"
    assert info.cancel_latency_ms is not None and 0 <= info.cancel_latency_ms < 1000
    assert info.ended_at is not None and info.started_at is not None


async def test_double_cancel_keeps_the_first_receipt() -> None:
    graph = looping(counting()).compile()
    run = graph.astream({"count": 0})
    await asyncio.sleep(0.01)
    first = await run.cancel(CancelReason("policy", "first", "test"))
    second = await run.cancel("second")
    assert first == second
    assert second.reason is not None and second.reason.message == "first"
    assert phases(graph.ledger.events(run.run_id)).count("request") == 1


async def test_cancel_of_a_finished_run_returns_its_terminal_info() -> None:
    graph = looping(counting(0), until=2).compile()
    run = graph.start({"count": 0})
    assert await run.result() == {"count": 2}
    info = await graph.acancel(run.run_id, "too late")
    assert info.status is RunStatus.SUCCESS and info.reason is None


async def test_cancel_before_the_run_starts_keeps_it_from_starting() -> None:
    ran: list[int] = []

    async def work(state: Count) -> dict[str, int]:
        ran.append(1)
        return {"count": 1}

    graph = looping(work, until=1).compile()
    run_id = graph.invoke_async({"count": 0})
    info = graph.cancel(run_id, "never mind")
    assert info.status in (RunStatus.PENDING, RunStatus.CANCELLING)
    final = await graph.await_run(run_id, timeout=2)
    assert final.status is RunStatus.CANCELLED and ran == []
    assert "start" not in phases(graph.ledger.events(run_id))


async def test_concurrent_cancels_from_many_threads_are_recorded_once() -> None:
    graph = looping(counting()).compile()
    run = graph.start({"count": 0})
    await asyncio.sleep(0.01)
    receipts: list[Any] = []

    def cancel() -> None:
        receipts.append(graph.cancel(run.run_id, f"from {threading.get_ident()}"))

    threads = [threading.Thread(target=cancel) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    final = await graph.await_run(run.run_id, timeout=5)
    assert final.status is RunStatus.CANCELLED
    assert len({r.reason.message for r in receipts if r.reason}) == 1
    assert phases(graph.ledger.events(run.run_id)).count("request") == 1


async def test_dropping_a_stream_cancels_its_run() -> None:
    graph = looping(counting()).compile()
    run = graph.astream({"count": 0})
    run_id = run.run_id
    await asyncio.sleep(0.01)
    del run
    gc.collect()
    final = await graph.await_run(run_id, timeout=2)
    assert final.status is RunStatus.CANCELLED
    assert final.reason is not None and final.reason.requested_by == "gc"


async def test_break_out_of_a_stream_then_dropping_it_cancels_the_run() -> None:
    graph = looping(counting()).compile()
    seen = 0
    async for _ in graph.astream({"count": 0}, stream_mode="values"):
        seen += 1
        if seen == 3:
            break
    gc.collect()
    runs = graph.list_runs()
    final = await graph.await_run(runs[0].run_id, timeout=2)
    assert final.status is RunStatus.CANCELLED


async def test_a_cancelled_stream_and_its_run_are_collected_once_dropped() -> None:
    import weakref

    graph = looping(counting()).compile()
    run = graph.astream({"count": 0})

    async def consume(stream: Any) -> None:
        with pytest.raises(RunCancelled):
            async for _ in stream:
                pass

    consumer = asyncio.ensure_future(consume(run))
    await asyncio.sleep(0.01)
    await run.cancel("enough")
    await consumer
    # The run's exception holds the frames that iterated the handle: a cycle, which only the
    # handle's finalizer could keep alive.
    handle, core = weakref.ref(run), weakref.ref(run.core)
    del run, consumer
    gc.collect()
    assert handle() is None
    assert core() is None


async def test_a_started_run_outlives_its_handle() -> None:
    graph = looping(counting(0), until=3).compile()
    run_id = graph.start({"count": 0}).run_id
    gc.collect()
    assert (await graph.await_run(run_id, timeout=2)).status is RunStatus.SUCCESS


async def test_cancelling_the_caller_of_ainvoke_cancels_the_run() -> None:
    graph = looping(counting()).compile()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(graph.ainvoke({"count": 0}), 0.03)
    await asyncio.sleep(0.01)
    (info,) = graph.list_runs()
    assert (await graph.await_run(info.run_id, timeout=2)).status is RunStatus.CANCELLED


async def test_run_timeout_raises_run_timeout_and_records_status_timeout() -> None:
    graph = looping(counting()).compile()
    started = time.monotonic()
    with pytest.raises(RunTimeout) as caught:
        await graph.ainvoke({"count": 0}, {"timeout": 0.05})
    assert time.monotonic() - started < 1.0
    info = graph.get_run(caught.value.run_id)
    assert info.status is RunStatus.TIMEOUT
    assert info.reason is not None and info.reason.kind == "timeout"


def test_sync_invoke_honours_the_run_timeout() -> None:
    graph = looping(counting()).compile()
    with pytest.raises(RunTimeout):
        graph.invoke({"count": 0}, {"timeout": 0.05})


async def test_get_run_of_an_unknown_id_explains_why() -> None:
    graph = looping(counting()).compile()
    with pytest.raises(RunNotFound, match="no checkpointer"):
        graph.get_run("nope")


async def test_caller_supplied_run_id_is_used_as_is() -> None:
    graph = looping(counting(0), until=1).compile()
    run = graph.start({"count": 0}, {"run_id": "my-run"})
    assert run.run_id == "my-run"
    await run.result()
    assert graph.get_run("my-run").status is RunStatus.SUCCESS


def test_sync_cancel_by_id_from_another_thread_stops_a_sync_invoke() -> None:
    graph = looping(counting(0.005)).compile()
    ids: list[str] = []

    def canceller() -> None:
        deadline = time.monotonic() + 2
        while not graph.list_runs() and time.monotonic() < deadline:
            time.sleep(0.005)
        ids.append(graph.list_runs()[0].run_id)
        time.sleep(0.02)
        graph.cancel(ids[0], "from a thread")

    worker = threading.Thread(target=canceller)
    worker.start()
    with pytest.raises(RunCancelled) as caught:
        graph.invoke({"count": 0})
    worker.join(2)
    assert caught.value.reason.message == "from a thread"
    assert graph.wait(ids[0], timeout=1).status is RunStatus.CANCELLED


async def test_cancel_reason_is_visible_to_the_node() -> None:
    seen: list[Any] = []

    async def work(state: Count) -> dict[str, int]:
        try:
            await asyncio.sleep(10)
        finally:
            seen.append(tether.cancel_reason())
        return {"count": 1}

    run = looping(work).compile().astream({"count": 0})
    await asyncio.sleep(0.01)
    await run.cancel(CancelReason("policy", "budget blown", "guard"))
    assert seen[0].kind == "policy" and seen[0].message == "budget blown"
