"""What a join answers when the run's end was heard before its last chunks reached the feed
(the database polled while the bus still carried them): the durable state, not the stream's
last, older one."""

from __future__ import annotations

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
