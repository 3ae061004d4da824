"""What a join answers when the run's end was heard before its last chunks reached the feed
(the database polled while the bus still carried them): the durable state, not the stream's
last, older one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from tether.server.feed import RunFeed
from tether.server.routes.runs import output_of
from tether.types import RunInfo, RunStatus

pytestmark = pytest.mark.anyio


def _server(feed: RunFeed) -> Any:
    """A server whose launcher has `feed` and whose store has the thread's final state."""

    async def aget_thread(thread_id: str) -> Any:
        return SimpleNamespace(thread_id=thread_id)

    async def snapshot(record: Any) -> Any:
        return SimpleNamespace(values={"n": 2, "done": True}, interrupts=())

    return SimpleNamespace(launcher=SimpleNamespace(feed=lambda run_id: feed),
                           store=SimpleNamespace(aget_thread=aget_thread), snapshot=snapshot)


async def test_a_feed_whose_end_has_not_arrived_yields_the_durable_state() -> None:
    feed = RunFeed("r", limit=100)
    feed.publish("values", {"n": 0})  # the input's state: the run's last chunks are on their way
    ended = RunInfo("r", "t", RunStatus.SUCCESS)
    assert await output_of(_server(feed), ended) == {"n": 2, "done": True}


async def test_a_closed_feed_answers_with_its_last_state_and_no_read() -> None:
    feed = RunFeed("r", limit=100)
    feed.publish("values", {"n": 0})
    feed.publish("values", {"n": 2, "done": False})
    ended = RunInfo("r", "t", RunStatus.SUCCESS)
    feed.close(ended)
    server = _server(feed)
    server.store = None  # any read would fail
    assert await output_of(server, ended) == {"n": 2, "done": False}


async def test_a_feed_closed_without_its_last_events_yields_the_durable_state(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The database says the run ended, and the bus never brings its last events (nor its end):
    after the grace the launcher closes the feed as missing them, and a join answers with the
    thread's durable state, not the stream's older one."""
    from tether.worker import launcher as queue_launcher

    monkeypatch.setattr(queue_launcher, "BUS_GRACE", 0.01)
    monkeypatch.setattr(queue_launcher, "FALLBACK_POLL", 0.01)
    ended = RunInfo("r", "t", RunStatus.SUCCESS)
    pending = RunInfo("r", "t", RunStatus.PENDING)

    async def aenqueue(order: Any) -> RunInfo:
        return pending

    async def awatch(run_ids: Any) -> list[Any]:
        return [("r", RunStatus.SUCCESS, None, None)]

    async def aget_run(run_id: str) -> RunInfo:
        return ended

    class SilentBus:
        """A bus on which the run's events never arrive."""

        @contextlib.asynccontextmanager
        async def subscribe(self, run_id: str) -> AsyncIterator[Any]:
            yield _never()

    store = SimpleNamespace(serde=None, queue=SimpleNamespace(aenqueue=aenqueue, awatch=awatch),
                            aget_run=aget_run)
    launcher = queue_launcher.QueueLauncher(
        store, feed_factory=lambda run_id: RunFeed(run_id, limit=100),  # type: ignore[arg-type]
        run_config=lambda order: {}, bus=SilentBus())  # type: ignore[arg-type]
    order = SimpleNamespace(
        assistant=SimpleNamespace(graph=SimpleNamespace(name="g")), input={"n": 0},
        resume_of=None, context=None, interrupt_before=None, interrupt_after=None,
        stream_modes=(), subgraphs=False, thread_id="t", run_id="r",
        multitask_strategy="enqueue", facts=None, temporary=False)
    try:
        await launcher.start(order)
        feed = launcher.feed("r")
        assert feed is not None
        feed.publish("values", {"n": 0})  # the last state the bus brought
        for _ in range(200):
            if feed.closed:
                break
            await asyncio.sleep(0.01)
        assert feed.closed and not feed.whole
        assert await output_of(_server(feed), ended) == {"n": 2, "done": True}
    finally:
        await launcher.aclose()


async def _never() -> AsyncIterator[Any]:
    await asyncio.Event().wait()
    yield None  # pragma: no cover - never reached
