"""What a cancelled run's end does not do (structural counts, no timing): its end enters no anyio
scope after the run's own, and its loop assembles no output for a run that returns none."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import pytest
from anyio._backends import _asyncio as asyncio_backend

from tether.engine.state import ChannelState
from tether.graph import END, START, StateGraph

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


async def _cancel_once_parked(before_cancel: Callable[[], None]) -> None:
    """Start a run, wait until it is parked in its node, call `before_cancel`, cancel it."""
    entered = asyncio.Event()
    run = _parked(entered).start({"count": 0})
    await entered.wait()
    before_cancel()
    info = await run.cancel()
    assert info.status.value == "cancelled"


async def test_a_cancelled_runs_end_enters_no_anyio_scope(scopes_entered: list[Any]) -> None:
    # The driver finishes a run outside the run's scope and inside no other: a shield there
    # would guard against nothing (a native Task.cancel passes it) and cost a scope per run.
    await _cancel_once_parked(scopes_entered.clear)
    assert scopes_entered == []


async def test_a_cancelled_loop_assembles_no_output(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    original = ChannelState.output

    def counting(self: ChannelState, values: Any = None) -> Any:
        calls.append(values)
        return original(self, values)

    monkeypatch.setattr(ChannelState, "output", counting)
    await _cancel_once_parked(calls.clear)
    assert calls == []
