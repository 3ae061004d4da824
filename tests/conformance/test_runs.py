"""Runs and their audit log: records, the status machine, cancel receipts, the final commit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.checkpoint.ids import uuid7
from tether.errors import RunNotFound, TerminalStatusError
from tether.types import CancelReason, RunEvent, RunStatus

from .conftest import Backend, Chain, new_run, write

AT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def phases(store: CheckpointStore, run_id: str) -> list[str]:
    return [e.phase for e in store.events(run_id)]


def ended(store: CheckpointStore, run_id: str, status: RunStatus = RunStatus.SUCCESS) -> None:
    store.finish_run(run_id, RunFinish(status=status))


# -- records --------------------------------------------------------------------------------


def test_create_run_stores_every_field_and_get_run_reads_it_back(store: CheckpointStore) -> None:
    info = new_run(store, "t1", created_at=AT, metadata={"graph": "g", "checkpoint_ns": "",
                                                          "tags": ["a", "b"], "n": 3})
    got = store.get_run(info.run_id)
    assert got == info
    assert got is not None and got.created_at == AT and got.created_at.tzinfo is not None


def test_create_run_keeps_a_run_without_thread(store: CheckpointStore) -> None:
    info = new_run(store, None)
    assert store.get_run(info.run_id) == info


def test_get_run_of_an_unknown_id_is_none(store: CheckpointStore) -> None:
    assert store.get_run("nope") is None


def test_create_run_with_an_existing_id_raises_value_error(store: CheckpointStore) -> None:
    info = new_run(store, run_id="r1")
    with pytest.raises(ValueError, match="r1"):
        new_run(store, run_id="r1")
    assert store.get_run("r1") == info


def test_list_runs_is_newest_first_and_filters_by_thread_status_and_limit(
        store: CheckpointStore) -> None:
    a1, b1, a2, a3 = (new_run(store, t).run_id for t in ("a", "b", "a", "a"))
    store.mark_running(a2)
    ended(store, a3)
    assert [r.run_id for r in store.list_runs()] == [a3, a2, b1, a1]
    assert [r.run_id for r in store.list_runs(thread_id="a")] == [a3, a2, a1]
    assert [r.run_id for r in store.list_runs(status=RunStatus.PENDING)] == [b1, a1]
    assert [r.run_id for r in store.list_runs(status="running")] == [a2]
    assert [r.run_id for r in store.list_runs(thread_id="a", status="pending")] == [a1]
    assert [r.run_id for r in store.list_runs(limit=2)] == [a3, a2]
    assert store.list_runs(thread_id="zzz") == []


# -- mark_running ---------------------------------------------------------------------------


def test_mark_running_starts_a_pending_run_and_appends_its_events(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    info = store.mark_running(run_id, [RunEvent("start", AT, None, {"x": 1})])
    assert info is not None and info.status is RunStatus.RUNNING
    assert info.started_at is not None
    assert store.get_run(run_id) == info
    assert store.events(run_id) == [RunEvent("start", AT, None, {"x": 1})]


def test_mark_running_resumes_an_interrupted_run_keeping_its_first_start(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    first = store.mark_running(run_id)
    store.finish_run(run_id, RunFinish(status=RunStatus.INTERRUPTED))
    again = store.mark_running(run_id)
    assert first is not None and again is not None
    assert again.status is RunStatus.RUNNING
    assert again.started_at == first.started_at


@pytest.mark.parametrize("status", [RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED,
                                    RunStatus.TIMEOUT])
def test_mark_running_refuses_an_ended_run(store: CheckpointStore, status: RunStatus) -> None:
    run_id = new_run(store).run_id
    ended(store, run_id, status)
    assert store.mark_running(run_id, [RunEvent("start", AT)]) is None
    info = store.get_run(run_id)
    assert info is not None and info.status is status
    assert "start" not in phases(store, run_id)


def test_mark_running_refuses_a_run_whose_cancel_is_recorded(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.request_cancel(run_id, CancelReason("user", "early"))
    assert store.mark_running(run_id) is None
    info = store.get_run(run_id)
    assert info is not None and info.status is RunStatus.CANCELLING


def test_mark_running_refuses_a_run_already_running(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    assert store.mark_running(run_id) is not None
    assert store.mark_running(run_id) is None


def test_run_operations_on_an_unknown_run_raise_lookup_error(store: CheckpointStore) -> None:
    with pytest.raises(LookupError):
        store.mark_running("nope")
    with pytest.raises(LookupError):
        store.request_cancel("nope", CancelReason())
    with pytest.raises(LookupError):
        store.finish_run("nope", RunFinish(status=RunStatus.SUCCESS))
    with pytest.raises(RunNotFound):
        store.load("nope")


# -- request_cancel -------------------------------------------------------------------------


def test_first_cancel_request_records_reason_status_and_request_event(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    reason = CancelReason("policy", "too many steps", "budget", AT, {"limit": 5})
    info, first = store.request_cancel(run_id, reason)
    assert first is True
    assert info.status is RunStatus.CANCELLING and info.reason == reason
    assert store.get_run(run_id) == info
    assert store.events(run_id) == [RunEvent("request", AT, None, reason.to_dict())]


def test_repeated_cancel_request_returns_the_first_receipt_and_false(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    first_reason = CancelReason("user", "first", requested_at=AT)
    receipt, _ = store.request_cancel(run_id, first_reason)
    again, first = store.request_cancel(run_id, CancelReason("timeout", "second"))
    assert first is False
    assert again == receipt and again.reason == first_reason
    assert phases(store, run_id) == ["request"]


def test_cancel_request_for_an_ended_run_returns_its_record_unchanged(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    ended(store, run_id)
    info, first = store.request_cancel(run_id, CancelReason())
    assert first is False
    assert info.status is RunStatus.SUCCESS and info.reason is None
    assert store.events(run_id) == []


# -- finish_run -----------------------------------------------------------------------------


def test_finish_run_sets_status_error_latency_end_time_and_appends_events(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    finish = RunFinish(status=RunStatus.ERROR, error="ValueError: boom", cancel_latency_ms=1.5,
                       events=(RunEvent("finish", AT, None, {"status": "error"}),))
    result = store.finish_run(run_id, finish)
    assert result.applied is True
    info = result.info
    assert (info.status, info.error, info.cancel_latency_ms) == (RunStatus.ERROR,
                                                                 "ValueError: boom", 1.5)
    assert info.ended_at is not None
    assert store.get_run(run_id) == info
    assert phases(store, run_id) == ["finish"]


def test_finish_run_error_keeps_the_failing_node_and_traceback(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    where = 'Traceback (most recent call last):\n  File "app.py", line 3, in fetch\nKeyError: \'x\''
    info = store.finish_run(run_id, RunFinish(
        status=RunStatus.ERROR, error="KeyError: 'x'", error_node="sub/fetch",
        error_traceback=where)).info
    assert (info.error_node, info.error_traceback) == ("sub/fetch", where)
    assert store.get_run(run_id) == info
    assert store.list_runs()[0] == info


def test_a_run_that_did_not_fail_has_no_failure_details(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    ended(store, run_id)
    info = store.get_run(run_id)
    assert info is not None and (info.error_node, info.error_traceback) == (None, None)


def test_finish_run_interrupted_is_not_terminal_and_has_no_end_time(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    info = store.finish_run(run_id, RunFinish(status=RunStatus.INTERRUPTED)).info
    assert info.status is RunStatus.INTERRUPTED and not info.terminal
    assert info.ended_at is None


def test_finish_run_keeps_the_recorded_reason_when_it_brings_none(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    reason = CancelReason("user", "stop", requested_at=AT)
    store.request_cancel(run_id, reason)
    info = store.finish_run(run_id, RunFinish(status=RunStatus.CANCELLED)).info
    assert info.status is RunStatus.CANCELLED and info.reason == reason


@pytest.mark.parametrize("status", [RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED,
                                    RunStatus.TIMEOUT])
def test_finish_run_over_a_terminal_status_raises_and_changes_nothing(
        store: CheckpointStore, status: RunStatus) -> None:
    run_id = new_run(store).run_id
    ended(store, run_id, status)
    before = store.get_run(run_id)
    other = RunStatus.ERROR if status is RunStatus.SUCCESS else RunStatus.SUCCESS
    with pytest.raises(TerminalStatusError):
        store.finish_run(run_id, RunFinish(status=other, error="late",
                                           events=(RunEvent("finish", AT),)))
    assert store.get_run(run_id) == before
    assert store.events(run_id) == []


def test_finish_run_unless_cancel_requested_refuses_once_a_cancel_is_recorded(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    chain = Chain(store, run_id=run_id)
    unsaved = chain.record({"x": 1})
    receipt, _ = store.request_cancel(run_id, CancelReason("user", "stop"))
    result = store.finish_run(run_id, RunFinish(
        status=RunStatus.SUCCESS, checkpoint_id=unsaved.id, thread_id="t",
        checkpoints=(unsaved,), events=(RunEvent("finish", AT),), unless_cancel_requested=True))
    assert result.applied is False
    assert result.info == receipt == store.get_run(run_id)
    assert store.get_checkpoint("t") is None
    assert phases(store, run_id) == ["request"]


def test_finish_run_unless_cancel_requested_refuses_an_ended_run(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    ended(store, run_id, RunStatus.CANCELLED)
    result = store.finish_run(run_id, RunFinish(status=RunStatus.SUCCESS,
                                                unless_cancel_requested=True))
    assert result.applied is False and result.info.status is RunStatus.CANCELLED


def test_finish_run_after_request_applies_only_behind_its_own_durable_request(
        store: CheckpointStore) -> None:
    # The end of a cancel sent ahead of its request's answer (`commits_in_order`): refused,
    # nothing stored, while the request is not recorded, or another one is, or the run ended.
    mine = CancelReason("user", "stop", "api", evidence={"path": ("a", "b")})
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    chain = Chain(store, run_id=run_id)
    unsaved = chain.record({"x": 1})
    end = RunFinish(status=RunStatus.CANCELLED, checkpoint_id=unsaved.id, thread_id="t",
                    reason=mine, checkpoints=(unsaved,), events=(RunEvent("terminate", AT),),
                    after_request=mine)
    early = store.finish_run(run_id, end)
    assert early.applied is False and early.info.status is RunStatus.RUNNING
    assert store.get_checkpoint("t") is None and phases(store, run_id) == []
    store.request_cancel(run_id, mine)
    result = store.finish_run(run_id, end)  # (its evidence came back as JSON: lists)
    assert result.applied and result.info.status is RunStatus.CANCELLED
    assert result.info.reason is not None and result.info.reason.message == "stop"
    assert phases(store, run_id) == ["request", "terminate"]
    again = store.finish_run(run_id, end)  # an ended run stays as it ended, without an error
    assert again.applied is False and again.info == result.info

    other = new_run(store).run_id
    store.mark_running(other)
    store.request_cancel(other, CancelReason("user", "first", "cli"))
    refused = store.finish_run(other, RunFinish(status=RunStatus.CANCELLED, reason=mine,
                                                after_request=mine))
    assert refused.applied is False and refused.info.status is RunStatus.CANCELLING
    assert refused.info.reason is not None and refused.info.reason.message == "first"


def test_finish_run_stores_unsaved_checkpoints_and_writes_with_the_status(
        store: CheckpointStore) -> None:
    run_id = new_run(store, metadata={"checkpoint_ns": ""}).run_id
    store.mark_running(run_id)
    chain = Chain(store, run_id=run_id)
    first = chain.record({"x": 1})
    chain.commit(first)
    second = chain.record({"y": 2}, nxt=("a", "b"))
    result = store.finish_run(run_id, RunFinish(
        status=RunStatus.CANCELLED, checkpoint_id=second.id, thread_id="t",
        checkpoints=(first, second), writes=(write("task-a", "x", 10, task_name="a"),)))
    assert result.applied and result.info.checkpoint_id == second.id
    stored = store.get_checkpoint("t")
    assert stored is not None and stored.id == second.id
    assert stored.values == {"x": 1, "y": 2}
    assert [(w.task_name, w.channel, w.value) for w in stored.pending_writes] == [("a", "x", 10)]


def test_finish_run_with_writes_for_a_missing_checkpoint_leaves_the_run_unchanged(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    before = store.get_run(run_id)
    with pytest.raises(LookupError):
        store.finish_run(run_id, RunFinish(
            status=RunStatus.SUCCESS, checkpoint_id=uuid7(), thread_id="t",
            writes=(write("task", "x", 1),), events=(RunEvent("finish", AT),)))
    assert store.get_run(run_id) == before
    assert store.events(run_id) == []


def test_finish_run_that_fails_on_its_writes_stores_none_of_its_checkpoints(
        store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    store.mark_running(run_id)
    before = store.get_run(run_id)
    unsaved = Chain(store, run_id=run_id).record({"x": 1})
    with pytest.raises(LookupError):
        store.finish_run(run_id, RunFinish(
            status=RunStatus.SUCCESS, checkpoint_id=uuid7(), thread_id="t",
            checkpoints=(unsaved,), writes=(write("task", "x", 1),)))
    assert store.get_run(run_id) == before
    assert store.get_checkpoint("t") is None


# -- events ---------------------------------------------------------------------------------


def test_events_keep_their_order_fields_and_details_across_calls(store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    times = [AT + timedelta(milliseconds=i) for i in range(6)]
    store.mark_running(run_id, [RunEvent("create", times[0]), RunEvent("start", times[1])])
    store.append_events(run_id, [RunEvent("terminate_node", times[2], "node-a",
                                          {"how": "cooperative", "n": [1, 2], "ok": True})])
    store.append_events(run_id, [RunEvent("cleanup", times[3], "node-a", {"ms": 0.5})])
    store.finish_run(run_id, RunFinish(status=RunStatus.CANCELLED, events=(
        RunEvent("checkpoint", times[4], None, {"checkpoint_id": None}),
        RunEvent("terminate", times[5], None, {"status": "cancelled"}))))
    assert store.events(run_id) == [
        RunEvent("create", times[0]),
        RunEvent("start", times[1]),
        RunEvent("terminate_node", times[2], "node-a",
                 {"how": "cooperative", "n": [1, 2], "ok": True}),
        RunEvent("cleanup", times[3], "node-a", {"ms": 0.5}),
        RunEvent("checkpoint", times[4], None, {"checkpoint_id": None}),
        RunEvent("terminate", times[5], None, {"status": "cancelled"}),
    ]


def test_events_of_one_run_do_not_mix_with_another(store: CheckpointStore) -> None:
    a, b = new_run(store).run_id, new_run(store).run_id
    store.append_events(a, [RunEvent("start", AT)])
    store.append_events(b, [RunEvent("finish", AT)])
    assert phases(store, a) == ["start"] and phases(store, b) == ["finish"]
    assert store.events("unknown") == []


# -- durability and enforcement -------------------------------------------------------------


@pytest.mark.sql_only
def test_terminal_status_is_enforced_by_the_database_itself(backend: Backend,
                                                            store: CheckpointStore) -> None:
    run_id = new_run(store).run_id
    ended(store, run_id, RunStatus.CANCELLED)
    with pytest.raises(Exception, match="terminal"):
        backend.raw_sql(store, "UPDATE runs SET status = 'running' WHERE run_id = ?", (run_id,))
    info = store.get_run(run_id)
    assert info is not None and info.status is RunStatus.CANCELLED


@pytest.mark.durable_only
def test_a_second_handle_on_the_same_data_sees_runs_events_and_checkpoints(
        backend: Backend, store: CheckpointStore, tmp_path: Path) -> None:
    info = new_run(store, metadata={"checkpoint_ns": ""})
    store.mark_running(info.run_id, [RunEvent("start", AT)])
    Chain(store, run_id=info.run_id).put({"x": [1, 2]}, nxt=("n",))
    other = backend.reopen(store, tmp_path)
    try:
        assert other.get_run(info.run_id) == store.get_run(info.run_id)
        assert other.events(info.run_id) == [RunEvent("start", AT)]
        stored = other.get_checkpoint("t")
        assert stored is not None and stored.values == {"x": [1, 2]} and stored.next == ("n",)
        got = other.request_cancel(info.run_id, CancelReason("user", "from elsewhere"))
        assert got[1] is True
        assert store.request_cancel(info.run_id, CancelReason())[1] is False
    finally:
        close = getattr(other, "close", None)
        if close is not None:
            close()


def test_run_records_are_plain_values(store: CheckpointStore) -> None:
    info = new_run(store)
    got = store.get_run(info.run_id)
    assert got is not None
    assert dataclasses.asdict(got) == dataclasses.asdict(info)


def test_delete_run_forgets_an_ended_run_but_refuses_one_in_flight(store: CheckpointStore) -> None:
    from tether.errors import RunError

    live = new_run(store).run_id
    store.mark_running(live)
    with pytest.raises(RunError, match="cancel it before deleting it"):
        store.delete_run(live)
    assert store.get_run(live) is not None
    done = new_run(store, run_id="done").run_id
    ended(store, done, RunStatus.CANCELLED)
    assert store.delete_run(done) is True
    assert store.get_run(done) is None
    assert store.events(done) == []
    assert store.delete_run(done) is False
