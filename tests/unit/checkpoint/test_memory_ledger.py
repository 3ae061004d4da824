"""The in-memory store's bounded ledger of finished runs: it forgets the oldest beyond its bound,
in the order they finished, and forgetting one costs the same however many it keeps (a deque,
not a list shifted on every run's end: a full ledger of 10,000 was a cost on every finish)."""

from __future__ import annotations

from collections import deque

from tether.checkpoint.base import RunFinish
from tether.checkpoint.memory import InMemorySaver
from tether.types import RunInfo, RunStatus


def test_the_oldest_finished_runs_are_forgotten_first() -> None:
    store = InMemorySaver(max_finished_runs=3)
    for n in range(5):
        store.create_run(RunInfo(f"r{n}", None, RunStatus.PENDING))
        store.mark_running(f"r{n}")
    for n in (1, 0, 3, 4, 2):
        store.finish_run(f"r{n}", RunFinish(status=RunStatus.SUCCESS, checkpoint_id=None,
                                             thread_id=None))
    assert [store.get_run(f"r{n}") is None for n in range(5)] == [True, True, False, False,
                                                                  False]
    assert isinstance(store._finished, deque)
