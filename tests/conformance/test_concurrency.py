"""Several threads (and, for durable stores, several handles) using one store at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.types import CancelReason, RunStatus

from .conftest import Backend, Chain, new_run

THREADS = 8
RUNS_PER_THREAD = 15


def together(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` in `count` threads released at the same moment; re-raise any failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if failures:
        raise failures[0]


def test_each_cancel_is_recorded_once_when_threads_race_to_create_cancel_and_finish(
        store: CheckpointStore) -> None:
    run_ids = [[f"r{t}-{i}" for i in range(RUNS_PER_THREAD)] for t in range(THREADS)]
    created = threading.Barrier(THREADS)
    firsts: Counter[str] = Counter()
    lock = threading.Lock()

    def work(t: int) -> None:
        for run_id in run_ids[t]:
            new_run(store, f"thread-{t}", run_id=run_id)
            store.mark_running(run_id)
        created.wait(timeout=10)
        # Every thread cancels every run: eight requests race for each one.
        everyone = [r for ids in run_ids for r in ids]
        for run_id in everyone[t:] + everyone[:t]:
            _info, first = store.request_cancel(run_id, CancelReason("user", f"by {t}"))
            if first:
                with lock:
                    firsts[run_id] += 1
        for run_id in run_ids[t]:
            store.finish_run(run_id, RunFinish(status=RunStatus.CANCELLED))

    together(THREADS, work)
    everyone = [r for ids in run_ids for r in ids]
    assert firsts == Counter(dict.fromkeys(everyone, 1))
    for run_id in everyone:
        info = store.get_run(run_id)
        assert info is not None and info.status is RunStatus.CANCELLED
        assert [e.phase for e in store.events(run_id)] == ["request"]
        assert info.reason is not None and info.reason.message.startswith("by ")
    assert len(store.list_runs()) == THREADS * RUNS_PER_THREAD


def test_finish_and_cancel_racing_on_one_run_leave_one_consistent_outcome(
        store: CheckpointStore) -> None:
    for round_ in range(20):
        run_id = new_run(store, run_id=f"race-{round_}").run_id
        store.mark_running(run_id)
        outcome: dict[str, object] = {}

        def work(i: int, run_id: str = run_id, outcome: dict[str, object] = outcome) -> None:
            if i == 0:
                outcome["applied"] = store.finish_run(run_id, RunFinish(
                    status=RunStatus.SUCCESS, unless_cancel_requested=True)).applied
            else:
                outcome["first"] = store.request_cancel(run_id, CancelReason())[1]

        together(2, work)
        info = store.get_run(run_id)
        assert info is not None
        if outcome["applied"]:
            assert info.status is RunStatus.SUCCESS and outcome["first"] is False
            assert store.events(run_id) == []
        else:
            assert info.status is RunStatus.CANCELLING and outcome["first"] is True


def test_threads_writing_checkpoints_to_their_own_threads_keep_every_chain_whole(
        store: CheckpointStore) -> None:
    steps = 30

    def work(t: int) -> None:
        chain = Chain(store, f"thread-{t}")
        for i in range(steps):
            chain.put({"i": i, f"own-{t}": t} if i == 0 else {"i": i})
            latest = store.get_checkpoint(f"thread-{t}")
            assert latest is not None and latest.values == {"i": i, f"own-{t}": t}

    together(THREADS, work)
    assert sorted(store.list_threads()) == sorted(f"thread-{t}" for t in range(THREADS))
    for t in range(THREADS):
        assert len(list(store.list_checkpoints(f"thread-{t}"))) == steps


@pytest.mark.durable_only
def test_separate_handles_on_one_database_record_each_cancel_once(
        backend: Backend, store: CheckpointStore, tmp_path: Path) -> None:
    handles = [backend.reopen(store, tmp_path) for _ in range(4)]
    try:
        run_ids = [new_run(store, run_id=f"h{i}").run_id for i in range(40)]
        firsts: Counter[str] = Counter()
        lock = threading.Lock()

        def work(i: int) -> None:
            for run_id in run_ids:
                if handles[i].request_cancel(run_id, CancelReason("user", f"h{i}"))[1]:
                    with lock:
                        firsts[run_id] += 1

        together(len(handles), work)
        assert firsts == Counter(dict.fromkeys(run_ids, 1))
        assert all([e.phase for e in store.events(r)] == ["request"] for r in run_ids)
    finally:
        for handle in handles:
            getattr(handle, "close", lambda: None)()
