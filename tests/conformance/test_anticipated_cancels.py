"""A cancel requested on the run's own loop stops the run while the store records the request
(`RunCore.anticipate_cancel`), on every store: the run's last transaction still comes after the
request, the request's reason is the one recorded first, the phases keep their order, and a
request the store fails to record is recorded by the run before it ends.

A store that commits in order (`commits_in_order`: SQLite's one writer) takes the run's end
right behind its request, before the request's answer; an end that reaches it ahead of the
request itself (a wrapper held the request back) is refused and made again after it."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest

import tether
from tether import CancelReason, RunCancelled, RunStatus
from tether.checkpoint.base import CheckpointStore
from tether.graph import END, START, StateGraph
from tether.types import RunInfo

pytestmark = pytest.mark.anyio

SIX = ["request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


class Count(TypedDict):
    count: int


class _Parked:
    """A loop whose node parks at its second call (after one checkpointed step) and notes
    when the cancel reached it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.parked = asyncio.Event()
        self.stopped = asyncio.Event()

    def graph(self, store: CheckpointStore) -> Any:
        async def work(state: Count) -> dict[str, int]:
            if state["count"] == 1:
                self.parked.set()
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.log.append("node stopped")
                    self.stopped.set()
                    raise
            return {"count": state["count"] + 1}

        builder = StateGraph(Count).add_node("work", work)
        builder.set_entry_point("work")
        builder.add_conditional_edges("work", lambda s: END if s["count"] > 9 else "work",
                                      {"work": "work", END: END})
        return builder.compile(checkpointer=store)


class _Logged:
    """Logs the store's cancel requests and last transactions (`applied` after one the store
    took); a request may be held until `release` is set (before it reaches the store, or with
    `hold_answer` its answer, once it is durable), or fail once."""

    def __init__(self, store: CheckpointStore, monkeypatch: pytest.MonkeyPatch,
                 log: list[str], *, fail_once: bool = False, hold_answer: bool = False) -> None:
        self.release = asyncio.Event()
        self.release.set()
        many, finish = store.arequest_cancels, store.afinish_run
        failures = [RuntimeError("the disk is gone")] if fail_once else []

        async def arequest_cancels(requests: Any) -> Any:
            log.append("request handed over")
            if not hold_answer:
                await self.release.wait()
            if failures:
                raise failures.pop()
            answers = await many(requests)
            log.append("request durable")
            await self.release.wait()
            return answers

        async def afinish_run(run_id: str, commit: Any) -> Any:
            log.append("last transaction")
            result = await finish(run_id, commit)
            if result.applied:
                log.append("applied")
            return result

        monkeypatch.setattr(store, "arequest_cancels", arequest_cancels)
        monkeypatch.setattr(store, "afinish_run", afinish_run)


async def _parked_run(store: CheckpointStore) -> tuple[list[str], _Parked, Any]:
    """A `_Parked` loop's run on thread `t`, parked at its second call; and its log."""
    log: list[str] = []
    parked = _Parked(log)
    run = parked.graph(store).start({"count": 0}, {"configurable": {"thread_id": "t"}})
    await asyncio.wait_for(parked.parked.wait(), 5)
    return log, parked, run


def _phases(store: CheckpointStore, run_id: str) -> list[str]:
    return [event.phase for event in store.events(run_id)]


def _cancelled_whole(store: CheckpointStore, info: RunInfo, message: str) -> None:
    stored = store.get_run(info.run_id)
    assert stored is not None and stored.status is info.status is RunStatus.CANCELLED
    assert stored.reason is not None and stored.reason.message == message
    assert _phases(store, info.run_id)[-6:] == SIX
    assert _phases(store, info.run_id).count("request") == 1
    snapshot = store.load(info.run_id)
    assert snapshot.values == {"count": 1}
    assert list(snapshot.cancelled_tasks) == ["work"]


async def test_the_run_stops_while_its_request_is_recorded_and_ends_after_it(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    log, parked, run = await _parked_run(store)
    logged = _Logged(store, monkeypatch, log)
    logged.release.clear()
    cancel = asyncio.get_running_loop().create_task(run.cancel("stop"))
    # The request is held by the store: the node stops all the same, and the run waits.
    await asyncio.wait_for(parked.stopped.wait(), 5)
    for _ in range(20):
        await asyncio.sleep(0)
    assert run.status is not RunStatus.CANCELLED
    if store.commits_in_order:
        # The end was handed over at once, ahead of the request (held outside the store):
        # refused, nothing of it stored; made again once the request is durable.
        assert log == ["request handed over", "node stopped", "last transaction"]
    else:
        assert "last transaction" not in log
    logged.release.set()
    info = await asyncio.wait_for(cancel, 5)
    assert log[-3:] == ["request durable", "last transaction", "applied"]
    assert log.count("applied") == 1
    _cancelled_whole(store, info, "stop")


async def test_a_store_that_commits_in_order_ends_the_run_before_the_answer(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    log, parked, run = await _parked_run(store)
    logged = _Logged(store, monkeypatch, log, hold_answer=True)
    logged.release.clear()
    cancel = asyncio.get_running_loop().create_task(run.cancel("stop"))
    await asyncio.wait_for(parked.stopped.wait(), 5)
    if store.commits_in_order:
        # The request is durable, its answer held: the run has ended all the same.
        info = await asyncio.wait_for(run.core.wait(), 5)
        assert info.status is RunStatus.CANCELLED and not cancel.done()
        assert log.count("last transaction") == log.count("applied") == 1
    else:
        for _ in range(20):
            await asyncio.sleep(0)
        assert run.status is not RunStatus.CANCELLED and "last transaction" not in log
    logged.release.set()
    info = await asyncio.wait_for(cancel, 5)
    assert info.status is RunStatus.CANCELLED
    assert log.count("last transaction") == log.count("applied") == 1
    _cancelled_whole(store, info, "stop")


async def test_a_cancel_recorded_first_elsewhere_keeps_its_reason(
        store: CheckpointStore) -> None:
    parked = _Parked([])
    run = parked.graph(store).start({"count": 0}, {"configurable": {"thread_id": "t"}})
    await asyncio.wait_for(parked.parked.wait(), 5)
    # As another process would: straight into the store, unseen by the run so far.
    store.request_cancel(run.run_id, CancelReason("user", "from elsewhere", "cli"))
    info = await asyncio.wait_for(run.cancel("from here"), 5)
    _cancelled_whole(store, info, "from elsewhere")


async def test_a_request_the_store_fails_is_recorded_by_the_run_it_stopped(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    log, _parked, run = await _parked_run(store)
    _Logged(store, monkeypatch, log, fail_once=True)
    with pytest.raises(RuntimeError, match="the disk is gone"):
        await run.cancel("stop")
    info = await asyncio.wait_for(run.core.wait(), 5)
    _cancelled_whole(store, info, "stop")


async def test_the_stream_announces_the_request_before_its_propagation(
        store: CheckpointStore) -> None:
    parked = _Parked([])
    graph = parked.graph(store)
    stream = graph.astream({"count": 0}, {"configurable": {"thread_id": "t"}},
                           stream_mode="lifecycle")
    await asyncio.wait_for(parked.parked.wait(), 5)
    info = await stream.cancel("stop")
    seen: list[str] = []
    with pytest.raises(RunCancelled):
        async for chunk in stream:
            seen.append(chunk["phase"])
    assert seen.index("request") < seen.index("propagate") < seen.index("terminate_node")
    assert sorted(seen) == sorted(SIX)
    _cancelled_whole(store, info, "stop")


async def test_a_failed_request_leaves_a_run_that_ended_on_its_own_as_it_ended(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    entered, cleaning, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hook() -> None:
        cleaning.set()
        await release.wait()

    async def sibling(state: Count) -> dict[str, int]:
        tether.on_cancel(hook)
        entered.set()
        await asyncio.sleep(3600)
        return {}

    async def failing(state: Count) -> dict[str, int]:
        await entered.wait()
        raise ValueError("boom")

    builder = StateGraph(Count).add_node("sibling", sibling).add_node("failing", failing)
    builder.add_edge(START, "sibling")
    builder.add_edge(START, "failing")
    run = builder.compile(checkpointer=store).start({"count": 0},
                                                    {"configurable": {"thread_id": "t"}})
    await asyncio.wait_for(cleaning.wait(), 5)  # the run is ending `error`, in its cleanup
    _Logged(store, monkeypatch, [], fail_once=True)
    with pytest.raises(RuntimeError, match="the disk is gone"):
        await run.cancel("too late")
    release.set()
    info = await asyncio.wait_for(run.core.wait(), 5)
    assert info.status is RunStatus.ERROR
    assert "request" not in _phases(store, info.run_id)


async def test_a_run_torn_down_while_its_batch_is_recorded_leaves_the_others_whole(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # The runs of one batch wait on one future for its answer: one run's driver cancelled
    # natively meanwhile (its loop tearing it down) must not cancel that future for the rest.
    log: list[str] = []
    kept, torn = _Parked(log), _Parked(log)
    kept_run = kept.graph(store).start({"count": 0}, {"configurable": {"thread_id": "t1"}})
    torn_run = torn.graph(store).start({"count": 0}, {"configurable": {"thread_id": "t2"}})
    await asyncio.wait_for(asyncio.gather(kept.parked.wait(), torn.parked.wait()), 5)
    logged = _Logged(store, monkeypatch, log)
    logged.release.clear()
    cancels = asyncio.gather(kept_run.cancel("stop"), torn_run.cancel("stop"),
                             return_exceptions=True)
    await asyncio.wait_for(asyncio.gather(kept.stopped.wait(), torn.stopped.wait()), 5)
    for _ in range(20):  # both runs' ends are now waiting for the batch's answer
        await asyncio.sleep(0)
    # (A store that commits in order was handed both ends at once, and refused them: their
    # request was held outside it.)
    assert log.count("request handed over") == 1 and "applied" not in log
    assert log.count("last transaction") == (2 if store.commits_in_order else 0)
    driver = torn_run.core.task
    assert driver is not None
    driver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await driver
    logged.release.set()
    kept_info, _torn_answer = await asyncio.wait_for(cancels, 5)
    assert isinstance(kept_info, RunInfo)
    _cancelled_whole(store, kept_info, "stop")
