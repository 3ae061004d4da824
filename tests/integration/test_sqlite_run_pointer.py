"""The SQLite store's run pointer (schema version 5): a superstep's commit leaves the run's row
alone, and a live run's latest checkpoint is found from its checkpoints.

Every root checkpoint used to point its run at itself (a trigger): one more b-tree page, so one
more page in the log, in every superstep's commit. The conformance suite checks what a reader
sees (`test_checkpoints.py`: the run pointer); these tests check what is written, and the
upgrade of a file made before.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from conformance.conftest import Chain, new_run
from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.checkpoint.query import Query, drive
from tether.checkpoint.sqlite import SqliteSaver, _sql, runs, schema
from tether.checkpoint.sqlite.refs import MAX_DEPTH
from tether.types import CancelReason, RunInfo, RunStatus

_TRIGGER = next(statement for statement in _sql.MIGRATIONS[0][1]
                if "checkpoints_point_run" in statement)


def _rows(path: Path, sql: str, params: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the file by hand, outside any store; its rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _row(path: Path, run_id: str) -> tuple[str | None, str | None]:
    """The run's `checkpoint_id` and `heartbeat_at` columns as stored."""
    ((checkpoint_id, heartbeat_at),) = _rows(
        path, "SELECT checkpoint_id, heartbeat_at FROM runs WHERE run_id = ?", (run_id,))
    return checkpoint_id, heartbeat_at


def _triggers(path: Path) -> list[str]:
    return [name for (name,) in _rows(
        path, "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")]


def _running(store: CheckpointStore) -> str:
    """A new run on thread `t`, started."""
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    return run_id


def _latest(store: CheckpointStore, run_id: str) -> str | None:
    info = store.get_run(run_id)
    assert info is not None
    return info.checkpoint_id


def test_a_checkpoint_whose_refs_are_a_delta_leaves_the_run_row_alone(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteSaver(path) as store:
        run_id = _running(store)
        created = _row(path, run_id)
        assert created[0] is None
        chain = Chain(store, run_id=run_id)
        chain.put({"i": 0})  # the run's first: its refs whole, the run pointed at it
        first = chain.head
        pointed = _row(path, run_id)
        assert pointed[0] == first and pointed[1] != created[1]
        for i in range(1, MAX_DEPTH):  # deltas on it: the row is not written
            chain.put({"i": i})
            assert _row(path, run_id) == pointed
            assert _latest(store, run_id) == chain.head
        chain.put({"i": MAX_DEPTH})  # refs whole again: the pointer moves up to it
        assert _row(path, run_id)[0] == chain.head
        assert _latest(store, run_id) == chain.head


def test_checkpoints_stored_together_are_deltas_on_each_other(tmp_path: Path) -> None:
    # A run's input checkpoint and its first step's go in one transaction (`put_checkpoints`):
    # the second is still a delta on the first, so the run's row is written once, for the
    # first, as when each had a transaction of its own.
    path = tmp_path / "store.db"
    with SqliteSaver(path) as store:
        run_id = _running(store)
        chain = Chain(store, run_id=run_id)
        records = []
        for i in range(3):
            records.append(chain.record({"i": i}))
            chain.commit(records[-1])
        store.put_checkpoints(records)
        stored = _rows(path, "SELECT checkpoint_id, refs_base, refs_depth FROM checkpoints "
                             "ORDER BY step")
        assert stored == [(records[0].id, None, 0), (records[1].id, records[0].id, 1),
                          (records[2].id, records[1].id, 2)]
        assert _row(path, run_id)[0] == records[0].id
        assert _latest(store, run_id) == records[2].id
        chain.put({"i": 3})  # the next one is a delta on the last of them
        assert _rows(path, "SELECT refs_base FROM checkpoints WHERE checkpoint_id = ?",
                     (chain.head,)) == [(records[2].id,)]


def test_an_orphan_ends_on_its_latest_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteSaver(path, reconcile=False) as store:
        run_id = _running(store)
        chain = Chain(store, run_id=run_id)
        for i in range(MAX_DEPTH + 5):
            chain.put({"i": i})
        assert _row(path, run_id)[0] != chain.head  # the pointer lags; the run does not
        (ended,) = store.reconcile_orphans(owner_alive=lambda _owner: False)
        assert ended.status is RunStatus.ERROR and ended.checkpoint_id == chain.head
        assert _row(path, run_id)[0] == chain.head  # stored whole at the end
        orphan = store.events(run_id)[-1]
        assert orphan.phase == "orphan" and orphan.detail["checkpoint_id"] == chain.head


def test_a_file_of_version_4_loses_its_trigger_and_its_live_run_keeps_its_place(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteSaver(path) as store:
        run_id = _running(store)
    for statement in (_TRIGGER, _sql.set_user_version(4)):  # as version 4 made it
        _rows(path, statement)
    with SqliteSaver(path) as store:  # migrates to version 5
        assert _triggers(path) == ["runs_terminal_status_is_final"]
        chain = Chain(store, run_id=run_id)
        for i in range(3):
            chain.put({"i": i})
        assert _latest(store, run_id) == chain.head
    assert _rows(path, "PRAGMA user_version") == [(schema.LATEST_VERSION,)]


def test_a_run_pointed_at_by_the_old_trigger_reads_as_at_its_latest_after_the_upgrade(
        tmp_path: Path) -> None:
    # A run mid-way when its file is upgraded: the trigger kept its row on each checkpoint,
    # and what follows is found from there.
    path = tmp_path / "old.db"
    with SqliteSaver(path) as store:
        run_id = _running(store)
    _rows(path, _TRIGGER)
    with SqliteSaver(path) as store:  # still version 5, the trigger made again by hand
        chain = Chain(store, run_id=run_id)
        for i in range(MAX_DEPTH + 3):
            chain.put({"i": i})
        assert _row(path, run_id)[0] == chain.head  # the trigger's work
    _rows(path, _sql.set_user_version(4))
    with SqliteSaver(path) as store:
        assert _triggers(path) == ["runs_terminal_status_is_final"]
        chain.store = store  # the same run's chain, written on through the new handle
        assert _latest(store, run_id) == chain.head
        chain.put({"i": 100})  # a new handle has no base for a delta: refs whole, pointed
        pointed = chain.head
        assert _row(path, run_id)[0] == pointed
        for i in range(1, 4):
            chain.put({"i": 100 + i})
        assert _row(path, run_id)[0] == pointed
        assert _latest(store, run_id) == chain.head
        result = store.finish_run(run_id, RunFinish(status=RunStatus.SUCCESS, thread_id="t"))
        assert result.info.checkpoint_id == chain.head


def test_a_run_waiting_for_input_is_stored_on_its_latest_and_read_without_a_walk(
        tmp_path: Path) -> None:
    # A run left `interrupted` (its input never given) while later runs go on on its thread:
    # its column is exact from its pause on, so a read never walks past their checkpoints.
    path = tmp_path / "store.db"
    with SqliteSaver(path) as store:
        paused = _running(store)
        ours = Chain(store, run_id=paused)
        for i in range(MAX_DEPTH + 3):
            ours.put({"i": i})
        store.finish_run(paused, RunFinish(status=RunStatus.INTERRUPTED, thread_id="t"))
        assert _row(path, paused)[0] == ours.head
        later = _running(store)
        theirs = Chain(store, run_id=later)
        for i in range(5):
            theirs.put({"j": i})
        assert _latest(store, paused) == ours.head
        # No walk: a root checkpoint of the paused run put in by hand (no run writes while it
        # waits) is newer than its stored one, and a walk would find it.
        stray = theirs.record({"j": 5}, run_id=paused)
        store.put_checkpoint(stray)
        assert _latest(store, paused) == ours.head
        resumed = store.mark_running(paused)  # active again, found from its stored checkpoint
        assert resumed is not None and resumed.checkpoint_id == stray.id  # (its receipt too)
        assert _latest(store, paused) == stray.id
        ours.put({"i": 99})
        assert _latest(store, paused) == ours.head


# -- a run's reads and writes by id look at its thread's checkpoints only -----------------------

_BY_RUN = sorted(name for name, value in vars(_sql).items()
                 if name.isupper() and isinstance(value, str) and "run_id = ?" in value
                 and value.lstrip().startswith(("SELECT", "UPDATE")))


def test_the_statements_of_one_run_are_planned_without_a_scan(tmp_path: Path) -> None:
    # SQLite plans a subquery of a `RETURNING` clause without the changed row's values as
    # index constraints: `LIVE_CHECKPOINT` there read every checkpoint of the file.
    path = tmp_path / "store.db"
    SqliteSaver(path).close()
    assert {"REQUEST_CANCEL", "MARK_RUNNING", "FINISH_RUN", "MARK_ORPHANED",
            "GET_RUN"} <= set(_BY_RUN)
    for name in _BY_RUN:
        sql = getattr(_sql, name)
        numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
        count = max(numbered) if numbered else sql.count("?")
        plan = [row[3] for row in _rows(path, "EXPLAIN QUERY PLAN " + sql, ("x",) * count)]
        assert not [step for step in plan if step.startswith("SCAN")], (name, plan)


def _cancel_by_hand(path: Path, run_id: str) -> tuple[int, RunInfo]:
    """`runs.request_cancel` on the file, outside any store: SQLite's virtual-machine steps
    for it (its work, whatever the machine's speed) and its receipt."""
    conn = sqlite3.connect(path, isolation_level=None)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def execute(query: Query) -> Any:
        if query.fetch == "each":
            conn.executemany(query.sql, query.params)
            return None
        cursor = conn.execute(query.sql, query.params)
        return cursor.fetchone() if query.fetch == "one" else cursor.fetchall()

    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.set_progress_handler(count, 1)
        info, first = drive(runs.request_cancel(run_id, CancelReason("user")), execute,
                            sqlite3.Error, lambda exc: exc)
        conn.set_progress_handler(None, 1)
        conn.execute("COMMIT")
    finally:
        conn.close()
    assert first
    return steps, info


def _steps_to_cancel(path: Path, others: int) -> tuple[int, RunInfo, str]:
    """A running run with three checkpoints, `others` checkpoints on another thread; the
    steps of its cancel request, the receipt and its latest checkpoint."""
    with SqliteSaver(path) as store:
        run_id = _running(store)
        chain = Chain(store, run_id=run_id)
        for i in range(3):
            chain.put({"i": i})
        elsewhere = Chain(store, thread_id="elsewhere")
        for i in range(others):
            elsewhere.put({"i": i})
    steps, info = _cancel_by_hand(path, run_id)
    return steps, info, chain.head


def test_a_cancel_request_reads_none_of_the_other_threads_checkpoints(tmp_path: Path) -> None:
    alone, info, latest = _steps_to_cancel(tmp_path / "alone.db", 0)
    assert info.status is RunStatus.CANCELLING
    assert info.checkpoint_id == latest  # the receipt of a live run names its latest
    crowded, info, latest = _steps_to_cancel(tmp_path / "crowded.db", 400)
    assert info.checkpoint_id == latest
    # The same work beside 400 checkpoints of another thread (a scan of them: 1,200 steps more).
    assert crowded <= alone + 10, (alone, crowded)
