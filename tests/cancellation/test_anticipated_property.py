"""A cancel made on the run's own loop stops the run while its request is written
(`RunCore.anticipate_cancel`). Whatever the timing — a cancel racing the run's end, a second
cancel in the same or the next batch, a store that fails the first request — every run ends
one way, recorded whole: its record, its receipts and its audit log agree.

On SQLite, whose writer commits in order (`commits_in_order`), the run's end is handed over
right behind its request, before the answer (`RunFinish.after_request`): the same must hold,
with the writer thread's timing added to the races."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether import RunStatus
from tether.checkpoint.base import CheckpointStore
from tether.checkpoint.memory import InMemorySaver
from tether.checkpoint.sqlite import SqliteSaver

from ._graphs import Count, looping, phases, thread_config

SIX = ["request", "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]


def _failing_first(store: CheckpointStore, after: int) -> None:
    """The store fails its first batch of cancel requests (a lost connection, a full disk),
    after `after` turns of the loop and as many quarters of a millisecond (a run on SQLite
    reaches its end only once its step's checkpoint is back from the writer thread)."""
    many = store.arequest_cancels
    failures = [RuntimeError("the disk is gone")]

    async def arequest_cancels(requests: Any) -> Any:
        if failures:
            failure = failures.pop()
            for _ in range(after):
                await asyncio.sleep(0)
            await asyncio.sleep(after / 4000)
            raise failure
        return await many(requests)

    store.arequest_cancels = arequest_cancels  # type: ignore[method-assign]


async def _one(yields: int, cancels: list[int], fail: int | None,
               store: CheckpointStore | None = None) -> None:
    store = store or InMemorySaver()
    if fail is not None:
        _failing_first(store, fail)

    async def step(state: Count) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"count": state["count"] + 1}

    run = looping(step, until=3).compile(checkpointer=store).start(
        {"count": 0}, thread_config("t"))
    for _ in range(yields):
        await asyncio.sleep(0)
    callers = []
    for i, gap in enumerate(cancels):  # gap 0: the same batch as the one before
        for _ in range(gap):
            await asyncio.sleep(0)
        callers.append(asyncio.ensure_future(run.cancel(f"cancel {i}")))
    answers = await asyncio.gather(*callers, return_exceptions=True)
    deadline = asyncio.get_running_loop().time() + 5
    while not run.status.terminal:  # a caller whose request failed returns before the end
        assert asyncio.get_running_loop().time() < deadline, run.status
        await asyncio.sleep(0.001)
    stored = store.get_run(run.run_id)
    assert stored is not None and stored.status is run.status
    events = phases(store.events(run.run_id))
    if stored.status is RunStatus.SUCCESS:
        assert await run.result() == {"count": 3}
        assert "propagate" not in events
    else:
        assert stored.status is RunStatus.CANCELLED
        assert events[-6:] == SIX and events.count("request") == 1
        assert events.count("propagate") == 1
        assert stored.reason is not None and stored.reason.message.startswith("cancel ")
    for answer in answers:
        if isinstance(answer, BaseException):
            # Only the failed batch is an error, and only when the store was made to fail.
            assert fail is not None and isinstance(answer, RuntimeError), answer
        else:
            # A receipt says what the store says: the end, or a stop under way.
            assert answer.status in (stored.status, RunStatus.CANCELLING)


@settings(max_examples=60, deadline=None)
@given(yields=st.integers(0, 8), cancels=st.lists(st.integers(0, 3), min_size=1, max_size=3),
       fail=st.none() | st.integers(0, 12))
def test_every_run_ends_one_way_recorded_whole(yields: int, cancels: list[int],
                                               fail: int | None) -> None:
    asyncio.run(_one(yields, cancels, fail))


@settings(max_examples=60, deadline=None)
@given(yields=st.integers(0, 8), cancels=st.lists(st.integers(0, 3), min_size=1, max_size=3),
       fail=st.none() | st.integers(0, 12))
def test_every_run_ends_one_way_recorded_whole_on_a_store_that_commits_in_order(
        yields: int, cancels: list[int], fail: int | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteSaver(Path(folder) / "runs.db")
        assert store.commits_in_order
        try:
            asyncio.run(_one(yields, cancels, fail, store))
        finally:
            store.close()
