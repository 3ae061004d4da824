"""What a cancelled run's end does not do (structural counts, no timing): its end enters no anyio
scope after the run's own, its loop assembles no output for a run that returns none, it awaits
no coroutine for a request the store has answered, and it makes no exception nobody reads; a
crowd's requests, recorded as one batch, wait on one future for the store's answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import pytest
from anyio._backends import _asyncio as asyncio_backend

from tether import RunCancelled
from tether.engine.state import ChannelState
from tether.graph import END, START, StateGraph
from tether.runs import finalize
from tether.runs.core import RunCore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Count(TypedDict):
    count: int


def _parked(entered: asyncio.Event) -> Any:
    async def wait(state: Count) -> dict[str, int]:
        entered.set()
        await asyncio.sleep(3600)
        return {"count": state["count"] + 1}

    builder = StateGraph(Count).add_node("wait", wait)
    builder.add_edge(START, "wait")
    builder.add_edge("wait", END)
    return builder.compile()


@pytest.fixture
def scopes_entered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every anyio cancel scope entered (on the asyncio backend) while the test runs."""
    entered: list[Any] = []
    cls = asyncio_backend.CancelScope  # what tether's scopes enter (`cancel.scope.anyio_scope`)
    original = cls.__enter__

    def counting(self: Any) -> Any:
        entered.append(self)
        return original(self)

    monkeypatch.setattr(cls, "__enter__", counting)
    yield entered


async def _cancel_once_parked(before_cancel: Callable[[], None]) -> Any:
    """Start a run, wait until it is parked in its node, call `before_cancel`, cancel it;
    return its handle."""
    entered = asyncio.Event()
    run = _parked(entered).start({"count": 0})
    await entered.wait()
    before_cancel()
    info = await run.cancel()
    assert info.status.value == "cancelled"
    return run


async def test_a_cancelled_runs_end_enters_no_anyio_scope(scopes_entered: list[Any]) -> None:
    # The driver finishes a run outside the run's scope and inside no other: a shield there
    # would guard against nothing (a native Task.cancel passes it) and cost a scope per run.
    await _cancel_once_parked(scopes_entered.clear)
    assert scopes_entered == []


def _calls_of(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[tuple[Any, ...]]:
    """The arguments of every call of `owner.name` (a method or coroutine method) from now on."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):
        async def counting_async(*args: Any) -> Any:
            calls.append(args)
            return await original(*args)
        monkeypatch.setattr(owner, name, counting_async)
    else:
        def counting(*args: Any) -> Any:
            calls.append(args)
            return original(*args)
        monkeypatch.setattr(owner, name, counting)
    return calls


async def test_a_cancelled_loop_assembles_no_output(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _calls_of(monkeypatch, ChannelState, "output")
    await _cancel_once_parked(calls.clear)
    assert calls == []


async def test_a_cancelled_runs_end_awaits_nothing_for_an_answered_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The batch recorded the request (the in-memory store answers at once) before the run's
    # end: there is nothing to wait for, so no coroutine is made to await a done future.
    calls = _calls_of(monkeypatch, RunCore, "_settle_request")
    await _cancel_once_parked(calls.clear)
    assert calls == []


async def test_a_cancelled_runs_exception_is_made_when_first_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[BaseException] = []
    original = finalize.cancel_error

    def counting(*args: Any) -> BaseException:
        made.append(original(*args))
        return made[-1]

    monkeypatch.setattr(finalize, "cancel_error", counting)
    run = await _cancel_once_parked(made.clear)
    assert made == []  # cancelled and ended; nobody asked how

    error = run.core.exception
    assert made == [error]
    assert type(error) is RunCancelled
    assert error.reason == run.info.reason and error.reason.requested_by == "handle"
    assert (error.run_id, error.checkpoint_id) == (run.run_id, run.info.checkpoint_id)
    assert error.args == (f"run {run.run_id} user: {error.reason.message}",)
    assert run.core.exception is error  # one exception, every read
    with pytest.raises(RunCancelled) as caught:
        await run.result()
    assert caught.value is error
    assert len(made) == 1


async def test_a_crowd_cancelled_together_waits_on_one_future_for_the_stores_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    inside: list[int] = []
    all_in = asyncio.Event()

    async def wait(state: Count) -> dict[str, int]:
        inside.append(1)
        if len(inside) == 10:
            all_in.set()
        await asyncio.sleep(3600)
        return {}

    builder = StateGraph(Count).add_node("wait", wait)
    builder.add_edge(START, "wait")
    graph = builder.compile()  # one graph: its runs share a store, and so a batch
    runs = [graph.start({"count": 0}) for _ in range(10)]
    await all_in.wait()
    loop = asyncio.get_running_loop()
    made: list[Any] = []
    original = loop.create_future

    def counting() -> Any:
        made.append(original())
        return made[-1]

    monkeypatch.setattr(loop, "create_future", counting)
    infos = await asyncio.gather(*(run.cancel() for run in runs))
    assert {info.status.value for info in infos} == {"cancelled"}
    # Each caller's receipt, and one for the batch: no future per run for its answer.
    assert len(made) == len(runs) + 1
