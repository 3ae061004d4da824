"""A run's timeline from its checkpoints, final snapshot and audit log
(`tether.server.timeline`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tether.server.timeline import MAX_STEPS, Point, build, outcome_of, spans_of
from tether.types import CancelReason, PendingWrite, RunEvent, RunInfo, RunSnapshot, RunStatus

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def point(step: int, ms: float, tasks: tuple[str, ...] | None, nxt: tuple[str, ...],
          **values: Any) -> Point:
    return Point(f"cp{step}", step, "loop", at(ms), tasks, nxt, values, "run")


def info(status: RunStatus, ended_ms: float | None = None) -> RunInfo:
    return RunInfo("run", "thread", status, created_at=at(0), started_at=at(1),
                   ended_at=at(ended_ms) if ended_ms is not None else None)


def snapshot(status: RunStatus, cancelled: tuple[str, ...] = (),
             writes: tuple[PendingWrite, ...] = ()) -> RunSnapshot:
    return RunSnapshot("run", {}, (), 2, status, None, "cp2", cancelled, writes)


POINTS = [point(0, 2, None, ("a",), n=0), point(1, 22, ("a",), ("a",), n=1),
          point(2, 42, ("a",), ("a", "b"), n=2)]


def test_each_completed_step_spans_from_its_parent_checkpoint_with_its_changes() -> None:
    out = build(info(RunStatus.SUCCESS, 43), POINTS[:2], None, outcome_of(
        info(RunStatus.SUCCESS, 43), None, []), spans=[], now=at(100))
    first, second = out["steps"]
    assert first["tasks"] == [] and first["changes"] == [{"path": ["n"], "op": "added",
                                                          "after": 0}]
    assert second["tasks"] == [{"name": "a", "status": "done", "started_at": at(2).isoformat(),
                                "ended_at": at(22).isoformat()}]
    assert second["changes"] == [{"path": ["n"], "op": "changed", "before": 0, "after": 1}]
    assert out["truncated"] is False and out["live"] is False


def test_a_cancelled_run_shows_its_unfinished_step_with_kept_and_cancelled_tasks() -> None:
    run = info(RunStatus.CANCELLED, 60)
    events = [RunEvent("terminate_node", at(55), "b", {"how": "cooperative"})]
    kept = snapshot(RunStatus.CANCELLED, cancelled=("b",),
                    writes=(PendingWrite("a", "n", 3),))
    out = build(run, POINTS, None, outcome_of(run, kept, events), spans=[], now=at(100))
    last = out["steps"][-1]
    assert last["step"] == 3 and last["completed"] is False and last["checkpoint_id"] is None
    by_name = {t["name"]: t for t in last["tasks"]}
    assert by_name["a"]["status"] == "kept" and by_name["a"]["ended_at"] == at(60).isoformat()
    assert by_name["b"]["status"] == "cancelled" and by_name["b"]["ended_at"] == at(55).isoformat()


def test_an_abandoned_thread_and_a_failed_node_are_marked() -> None:
    run = info(RunStatus.CANCELLED, 60)
    events = [RunEvent("terminate_node", at(58), "b", {"how": "abandoned"})]
    out = build(run, POINTS, None, outcome_of(run, snapshot(RunStatus.CANCELLED), events),
                spans=[], now=at(100))
    assert {t["name"]: t["status"] for t in out["steps"][-1]["tasks"]} == {
        "a": "cancelled", "b": "abandoned"}
    failed = info(RunStatus.ERROR, 50)
    out = build(failed, POINTS, None, outcome_of(failed, snapshot(RunStatus.ERROR), [], ["b"]),
                spans=[], now=at(100))
    assert {t["name"]: t["status"] for t in out["steps"][-1]["tasks"]} == {
        "a": "cancelled", "b": "failed"}


def test_a_paused_run_stops_its_clock_at_the_pause_and_a_running_one_is_open() -> None:
    paused = info(RunStatus.INTERRUPTED)
    events = [RunEvent("finish", at(45), None, {"status": "interrupted"})]
    out = build(paused, POINTS, None, outcome_of(paused, snapshot(RunStatus.INTERRUPTED),
                                                 events), spans=[], now=at(500))
    assert out["steps"][-1]["ended_at"] == at(45).isoformat()
    assert {t["status"] for t in out["steps"][-1]["tasks"]} == {"interrupted"}
    running = info(RunStatus.RUNNING)
    out = build(running, POINTS, None, outcome_of(running, None, []), spans=[], now=at(500))
    assert out["steps"][-1]["ended_at"] is None
    assert {t["status"] for t in out["steps"][-1]["tasks"]} == {"running"}


def test_a_successful_run_and_a_queued_one_have_no_unfinished_step() -> None:
    done = info(RunStatus.SUCCESS, 43)
    assert len(build(done, POINTS, None, outcome_of(done, None, []), spans=[],
                     now=at(99))["steps"]) == 3
    queued = info(RunStatus.PENDING)
    assert build(queued, [], POINTS[-1], outcome_of(queued, None, []), spans=[],
                 now=at(99))["steps"] == []


def test_a_resumed_run_starts_its_first_step_when_it_started_not_at_the_old_checkpoint() -> None:
    base = point(7, -5000, ("a",), ("a",), n=7)
    run = RunInfo("run", "thread", RunStatus.SUCCESS, created_at=at(0), started_at=at(1),
                  ended_at=at(30))
    out = build(run, [point(8, 25, ("a",), (), n=8)], base, outcome_of(run, None, []),
                spans=[], now=at(99))
    (step,) = out["steps"]
    assert step["started_at"] == at(1).isoformat()
    assert step["changes"] == [{"path": ["n"], "op": "changed", "before": 7, "after": 8}]


def test_only_the_latest_steps_are_kept_and_the_timeline_says_so() -> None:
    points = [point(i, i * 10, ("a",), ("a",), n=i) for i in range(MAX_STEPS + 5)]
    run = info(RunStatus.SUCCESS, 99999)
    out = build(run, points, None, outcome_of(run, None, []), spans=[], now=at(0))
    assert out["truncated"] is True and len(out["steps"]) == MAX_STEPS
    assert out["steps"][0]["step"] == 5


def test_tasks_seen_on_the_live_stream_get_their_own_times() -> None:
    spans = spans_of([
        (at(2.5).timestamp(), {"id": "t1", "name": "a", "input": {}}),
        (at(9).timestamp(), {"id": "t1", "name": "a", "error": None, "result": {}}),
        (at(23).timestamp(), {"id": "t2", "name": "a", "input": {}}),
        (at(30).timestamp(), {"id": "t2", "name": "a", "error": "boom", "result": None}),
        (at(31).timestamp(), {"no": "id"}),
    ])
    run = info(RunStatus.SUCCESS, 43)
    out = build(run, POINTS, None, outcome_of(run, None, []), spans=spans, now=at(99))
    one, two = out["steps"][1]["tasks"][0], out["steps"][2]["tasks"][0]
    assert out["live"] is True
    assert (one["started_at"], one["ended_at"]) == (at(2.5).isoformat(), at(9).isoformat())
    assert two["status"] == "failed" and two["ended_at"] == at(30).isoformat()


def test_a_reason_alone_does_not_change_the_outcome() -> None:
    run = RunInfo("run", "thread", RunStatus.TIMEOUT, reason=CancelReason("timeout", "late"),
                  created_at=at(0), started_at=at(1), ended_at=at(50))
    outcome = outcome_of(run, snapshot(RunStatus.TIMEOUT, cancelled=("a",)), [])
    out = build(run, POINTS, None, outcome, spans=[], now=at(99))
    assert [t["status"] for t in out["steps"][-1]["tasks"]] == ["cancelled", "cancelled"]
