"""The SQLite store's write-ahead log stays bounded under steady writes, and the delta bases it
keeps per thread are bounded too."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TypedDict

import pytest

from tether.checkpoint.sqlite import SqliteSaver, wal
from tether.checkpoint.sqlite import checkpoints as sqlite_checkpoints
from tether.checkpoint.sqlite import connection as sqlite_connection
from tether.graph import END, StateGraph


class Steps(TypedDict):
    count: int


def stepping(store: SqliteSaver, until: int) -> object:
    builder = StateGraph(Steps).add_node("step", lambda s: {"count": s["count"] + 1})
    builder.set_entry_point("step")
    builder.add_conditional_edges("step", lambda s: END if s["count"] >= until else "step")
    return builder.compile(checkpointer=store)


def steady_log_size(path: Path) -> int:
    """The log's size after 1500 supersteps, each a commit, back to back (before `close()`,
    which empties the log anyway)."""
    store = SqliteSaver(str(path))
    graph = stepping(store, 1500)
    graph.invoke({"count": 0}, {"configurable": {"thread_id": "t"}, "recursion_limit": 2000})
    size = os.path.getsize(f"{path}-wal")
    store.close()
    return size


def test_the_log_is_emptied_once_it_passes_its_limit(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A passive checkpoint racing a steady writer never copies the last frames, so without a
    # limit the log grows by every superstep's pages (about 28 MB here).
    monkeypatch.setattr(wal, "LOG_LIMIT_FRAMES", 256)
    size = steady_log_size(tmp_path / "steady.db")
    assert size < 4 * 2**20


def test_the_log_stays_bounded_when_the_helper_never_gets_to_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer finds the log full itself. When only the helper's checkpoint found it, a
    # helper slowed by a loaded disk found it late and the log grew by every superstep its
    # checkpoint took (4.8 MB past a 1 MB limit in CI); one that never runs found it never.
    monkeypatch.setattr(wal, "LOG_LIMIT_FRAMES", 256)
    monkeypatch.setattr(wal.WalCheckpointer, "_run", lambda self: None)
    size = steady_log_size(tmp_path / "starved.db")
    # Emptied at every 200th commit past the limit: at most 200 supersteps' frames are left.
    assert 0 < size < 4 * 2**20


def test_a_checkpoint_that_cannot_finish_is_tried_again_after_the_next_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The helper's passive checkpoint holds the checkpoint lock, so the writer's TRUNCATE begun
    # at the same moment fails; left for 200 commits later, it failed the same way each time
    # (the log reached 15.9 MB past a 1 MB limit under a loaded disk).
    monkeypatch.setattr(wal, "LOG_LIMIT_FRAMES", 256)
    tries: list[bool] = []
    restart = sqlite_connection._restart_log

    def busy_five_times(conn: sqlite3.Connection) -> bool:
        tries.append(len(tries) >= 5 and restart(conn))
        return tries[-1]

    monkeypatch.setattr(sqlite_connection, "_restart_log", busy_five_times)
    size = steady_log_size(tmp_path / "busy.db")
    assert tries[:6] == [False] * 5 + [True]
    assert 0 < size < 4 * 2**20


def test_the_writer_empties_the_log_between_its_commits(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The helper thread only finds the log full: a TRUNCATE it took itself had to win the write
    # lock from a writer committing back to back, and lost for as long as the writes went on
    # (the log reached 14 MB past a 1 MB limit). The writing connection takes it instead.
    monkeypatch.setattr(wal, "LOG_LIMIT_FRAMES", 256)
    taken: list[int] = []
    restart = sqlite_connection._restart_log

    def spy(conn: sqlite3.Connection) -> bool:
        taken.append(threading.get_ident())
        return restart(conn)

    monkeypatch.setattr(sqlite_connection, "_restart_log", spy)
    size = steady_log_size(tmp_path / "steady.db")
    assert taken, "the log passed its limit and was never emptied by the writer"
    assert set(taken) == {threading.get_ident()}  # sync invoke: the writer is this thread
    assert size < 4 * 2**20


def test_delta_bases_are_kept_for_the_latest_threads_only(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_checkpoints, "HEADS_KEPT", 4)
    store = SqliteSaver(str(tmp_path / "many.db"))
    graph = stepping(store, 2)
    for n in range(10):
        graph.invoke({"count": 0}, {"configurable": {"thread_id": f"t{n}"}})
    kept = store._checkpoints._heads  # the bound under test is private to the store
    assert [thread for thread, _ns in kept] == ["t6", "t7", "t8", "t9"]
    # A thread whose base was dropped stores whole refs again, and reads back the same.
    graph.invoke({"count": 0}, {"configurable": {"thread_id": "t0"}})
    assert graph.get_state({"configurable": {"thread_id": "t0"}}).values == {"count": 2}
    store.close()


def test_after_a_pause_in_commits_the_log_starts_over_instead_of_growing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Overwriting the log's old frames costs a commit less than growing the file: once the
    # writes pause, the helper copies the whole log, and the next commits reuse it.
    monkeypatch.setattr(wal, "IDLE_CHECKPOINT", 0.001)
    monkeypatch.setattr(wal, "IDLE_MIN_COMMITS", 1)  # every pause counts: each is a chance
    path = tmp_path / "bursts.db"
    store = SqliteSaver(str(path))
    graph = stepping(store, 300)  # more commits than the helper's period: it is running
    graph.invoke({"count": 0}, {"configurable": {"thread_id": "t"}, "recursion_limit": 400})
    reused = False
    # A few commits per run, far fewer in all than the next periodic checkpoint's 200.
    for _ in range(15):
        time.sleep(0.3)  # a pause: the helper copies the log, then the next commit starts it over
        before = os.path.getsize(f"{path}-wal")
        graph.invoke({"count": 298}, {"configurable": {"thread_id": "t"}})
        if os.path.getsize(f"{path}-wal") == before:
            reused = True
            break
    store.close()
    assert reused
