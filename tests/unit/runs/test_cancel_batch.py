"""A store answers a batch of cancel requests: each run's own answer or error, in order, and
a backend with no batch of its own asks for all of them at once, never one after the other,
and SQLite's hands them all to its writer thread at once (one group commit)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tether.checkpoint.base import CheckpointStore
from tether.checkpoint.memory import InMemorySaver
from tether.checkpoint.sqlite import SqliteSaver
from tether.checkpoint.sqlite.connection import Connection
from tether.types import CancelReason, RunInfo, RunStatus

pytestmark = pytest.mark.anyio


def _store(kind: str, tmp_path: Path) -> CheckpointStore:
    return InMemorySaver() if kind == "memory" else SqliteSaver(str(tmp_path / "batch.db"))


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_batch_answers_each_run_and_an_unknown_run_alone_fails(
        kind: str, tmp_path: Path) -> None:
    store = _store(kind, tmp_path)
    for n in range(3):
        store.create_run(RunInfo(f"r{n}", None, RunStatus.PENDING))
    store.mark_running("r1")
    store.request_cancel("r2", CancelReason("user", "earlier", "test"))
    answers = await store.arequest_cancels(
        [("r0", CancelReason("user", "now", "test")), ("nope", CancelReason("user", "now", "t")),
         ("r1", CancelReason("user", "now", "test")), ("r2", CancelReason("user", "now", "t"))])
    first, missing, second, repeat = answers
    assert not isinstance(first, Exception) and first[1] is True
    assert first[0].status is RunStatus.CANCELLING
    assert isinstance(missing, Exception)
    assert not isinstance(second, Exception) and second[1] is True
    assert not isinstance(repeat, Exception) and repeat[1] is False
    assert repeat[0].reason is not None and repeat[0].reason.message == "earlier"
    close = getattr(store, "close", None)
    if close is not None:
        close()


async def test_the_default_batch_asks_for_every_run_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemorySaver()
    asking = {"now": 0, "most": 0}

    async def arequest_cancel(run_id: str, reason: CancelReason) -> Any:
        asking["now"] += 1
        asking["most"] = max(asking["most"], asking["now"])
        await asyncio.sleep(0.01)
        asking["now"] -= 1
        return RunInfo(run_id, None, RunStatus.CANCELLING, reason=reason), True

    monkeypatch.setattr(store, "arequest_cancel", arequest_cancel)
    answers = await CheckpointStore.arequest_cancels(  # the default (Postgres has no other)
        store, [(f"r{n}", CancelReason("user", "now", "test")) for n in range(10)])
    assert [a[0].run_id for a in answers if not isinstance(a, Exception)] == \
        [f"r{n}" for n in range(10)]
    assert asking["most"] == 10


async def test_sqlite_hands_a_batch_to_its_writer_at_once_without_a_task_per_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's batch queues every request for its writer thread in the caller's own step (no
    task per request, started a loop turn later): one group commit, each request alone in it
    (an unknown run fails alone)."""
    store = SqliteSaver(str(tmp_path / "batch.db"))
    for n in range(3):
        store.create_run(RunInfo(f"r{n}", None, RunStatus.RUNNING))
    groups: list[int] = []
    run_group = Connection.run_group

    def counted(db: Any, ops: Any) -> Any:
        groups.append(len(ops))
        return run_group(db, ops)

    monkeypatch.setattr(Connection, "run_group", counted)
    tasks: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_task_factory(lambda lp, coro, **kw: (tasks.append(coro.__qualname__),
                                                  asyncio.Task(coro, loop=lp, **kw))[1])
    try:
        answers = await store.arequest_cancels(
            [(f"r{n}", CancelReason("user", "now", "test")) for n in (0, 9, 1, 2)])
    finally:
        loop.set_task_factory(None)
    assert tasks == []
    assert groups == [4]
    assert [a[0].status for a in answers if not isinstance(a, Exception)] == \
        [RunStatus.CANCELLING] * 3
    assert isinstance(answers[1], Exception)
    store.close()


async def test_a_waiting_cancel_is_answered_by_the_runs_end_in_one_await(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`await run.cancel()` on the run's loop gets the final record through the batch's own
    future (handed to the run's end): no second wait, one wake-up of the caller."""
    from typing import TypedDict

    from tether.graph import END, START, StateGraph
    from tether.runs.core import RunCore

    class State(TypedDict):
        n: int

    parked = asyncio.Event()

    async def park(state: State) -> dict[str, int]:
        parked.set()
        await asyncio.sleep(3600)
        return {"n": 1}

    builder = StateGraph(State).add_node("park", park)
    builder.add_edge(START, "park")
    builder.add_edge("park", END)
    graph = builder.compile()
    runs = [graph.start({"n": 0}) for _ in range(3)]
    await parked.wait()
    await asyncio.sleep(0)

    async def no_second_wait(self: RunCore) -> RunInfo:
        raise AssertionError("the cancel waited a second time")

    monkeypatch.setattr(RunCore, "wait", no_second_wait)
    infos = await asyncio.gather(*(run.cancel() for run in runs))
    assert [info.status for info in infos] == [RunStatus.CANCELLED] * 3
    assert all(info is run.info for info, run in zip(infos, runs, strict=True))
    # A repeat answers at once with the same final record; without `wait`, the receipt.
    assert await runs[0].cancel() is infos[0]
    fresh = graph.start({"n": 0})
    await asyncio.sleep(0.01)
    receipt = await fresh.cancel(wait=False)
    assert receipt.status is RunStatus.CANCELLING
    monkeypatch.undo()
    assert (await fresh.cancel()).status is RunStatus.CANCELLED
