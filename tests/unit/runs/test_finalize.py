"""How a run ends, decided without a store: `tether.runs.finalize` maps the loop's outcome and
the durable reason to a status, the final commit and what the caller is given."""

from __future__ import annotations

from typing import Any

import pytest

from tether.checkpoint.base import CheckpointRecord, RunFinish, WriteRecord
from tether.constants import INTERRUPT
from tether.engine.outcome import LoopOutcome, LoopStatus
from tether.engine.spec import NodeSpec
from tether.engine.task import PULL, Task
from tether.errors import (
    InvalidUpdateError,
    NodeTimeoutError,
    ParentCommand,
    RecursionLimitReached,
    RunCancelled,
    RunTimeout,
)
from tether.runs import finalize
from tether.types import CancelReason, Command, Interrupt, RunEvent, RunInfo, RunStatus, utcnow


def task(name: str, outcome: Any = "done", stop_mode: Any = None) -> Task:
    t = Task(NodeSpec(name, lambda s: s, False), {}, (PULL, name), 3, outcome=outcome)
    t.stop_mode = stop_mode
    return t


def record(checkpoint_id: str) -> CheckpointRecord:
    return CheckpointRecord("t", "", checkpoint_id, None, 1, "loop", {}, {}, ())


def outcome(status: LoopStatus, **fields: Any) -> LoopOutcome:
    return LoopOutcome(status=status, values={"x": 1}, output={"x": 1}, step=3, **fields)


# -- ending ----------------------------------------------------------------------------------


def test_a_finished_loop_ends_in_success_with_its_output() -> None:
    end = finalize.ending(outcome("done"), None)
    assert (end.status, end.value, end.error) == (RunStatus.SUCCESS, {"x": 1}, None)


def test_a_pause_ends_interrupted_with_the_interrupts_in_the_value() -> None:
    pause = Interrupt("ok?", "i1")
    end = finalize.ending(outcome("interrupted", interrupts=(pause,)), None)
    assert end.status is RunStatus.INTERRUPTED
    assert end.value == {"x": 1, INTERRUPT: [pause]}


def test_a_failed_task_ends_in_error_with_its_exception() -> None:
    boom = ValueError("boom")
    end = finalize.ending(outcome("error", error=boom), None)
    assert (end.status, end.error) == (RunStatus.ERROR, boom)
    assert end.detail() == {"status": "error", "error": "ValueError: boom"}


def test_a_driver_failure_wins_over_the_outcome() -> None:
    boom = RuntimeError("store down")
    end = finalize.ending(outcome("done"), boom)
    assert (end.status, end.error) == (RunStatus.ERROR, boom)


def test_a_parent_command_without_a_parent_graph_is_an_invalid_update() -> None:
    end = finalize.ending(None, ParentCommand(Command(graph=Command.PARENT)))
    assert end.status is RunStatus.ERROR
    assert isinstance(end.error, InvalidUpdateError)


@pytest.mark.parametrize("loop_outcome", [None, outcome("cancelled")])
def test_a_cancelled_or_missing_outcome_takes_the_cancel_path(loop_outcome: Any) -> None:
    assert finalize.ending(loop_outcome, None) is finalize.CANCELLED
    assert finalize.CANCELLED.status is None


def test_the_end_commit_is_refused_once_a_cancel_is_durable() -> None:
    saved = record("c1")
    writes = (WriteRecord("a", "a", 0, "x", 2),)
    end = finalize.Ending(RunStatus.SUCCESS, value={"x": 1})
    events = (RunEvent("finish", utcnow()),)
    commit = finalize.commit_end(end, outcome("done", checkpoint_id="c1", unsaved=(saved,),
                                              final_writes=writes), "t", events)
    assert commit.unless_cancel_requested is True
    assert (commit.status, commit.checkpoint_id, commit.thread_id) == (RunStatus.SUCCESS, "c1",
                                                                       "t")
    assert (commit.checkpoints, commit.writes, commit.events, commit.error) == (
        (saved,), writes, events, None)


# -- the cancel path ---------------------------------------------------------------------------


def test_the_durable_reason_wins_over_the_local_one() -> None:
    durable = CancelReason("user", "from the store")
    local = CancelReason("shutdown", "here")
    info = RunInfo("r", "t", RunStatus.CANCELLING, reason=durable)
    assert finalize.cancel_reason(info, local) is durable
    assert finalize.cancel_reason(RunInfo("r", "t", RunStatus.RUNNING), local) is local
    assert finalize.cancel_reason(None, None).kind == "user"


@pytest.mark.parametrize(("kind", "status"), [("timeout", RunStatus.TIMEOUT),
                                              ("user", RunStatus.CANCELLED),
                                              ("budget", RunStatus.CANCELLED)])
def test_a_cancel_ends_timeout_for_a_timeout_and_cancelled_otherwise(
        kind: Any, status: RunStatus) -> None:
    commit, terminate = finalize.commit_cancel(CancelReason(kind, "why"), None, None, "t",
                                               events=(), latency_ms=1.23456)
    assert commit.status is status
    assert commit.cancel_latency_ms == 1.23456
    assert terminate.phase == "terminate"
    assert terminate.detail == {"status": status.value, "cancel_latency_ms": 1.235}
    # The phases with nothing to do are recorded as such, before it.
    assert [e.phase for e in commit.events] == [
        "propagate", "terminate_node", "cleanup", "checkpoint", "terminate"]
    assert commit.events[-1] is terminate


def test_the_cancel_commit_takes_over_what_a_refused_end_held_back() -> None:
    kept, held = record("c1"), record("c2")
    refused = RunFinish(status=RunStatus.SUCCESS, checkpoint_id="c2", checkpoints=(held,))
    loop = outcome("cancelled", unsaved=(kept,))
    commit, _ = finalize.commit_cancel(CancelReason(), loop, refused, "t", events=(),
                                       latency_ms=0.0)
    assert commit.checkpoints == (kept, held)
    assert commit.checkpoint_id == "c2"
    assert commit.unless_cancel_requested is False


def test_only_tasks_stopped_at_an_await_are_reported_by_the_end() -> None:
    loop = outcome("cancelled", tasks=[task("a", "cancelled"), task("b", "done"),
                                       task("c", "cancelled", "abandoned")])
    assert [node for node, _ in finalize.stopped_nodes(loop)] == ["a"]
    assert finalize.stopped_nodes(None) == []


def test_the_checkpoint_event_counts_state_writes_only() -> None:
    writes = (WriteRecord("a", "a", 0, "x", 1), WriteRecord("a", "a", 1, "branch:to:b", None))
    loop = outcome("cancelled", checkpoint_id="c1", final_writes=writes,
                   tasks=[task("b", "cancelled")])
    detail = finalize.checkpoint_detail(loop, None, started=True)
    assert detail == {"checkpoint_id": "c1", "pending_writes": 1, "cancelled_tasks": ["b"],
                      "started": True}


def test_what_the_caller_of_a_cancelled_run_is_given() -> None:
    limit = CancelReason("budget", "limit", "recursion_limit")
    error = finalize.cancel_error(limit, "r", "c1", None, 25)
    assert isinstance(error, RecursionLimitReached)
    assert "Recursion limit of 25 reached" in str(error)
    node_timeout = NodeTimeoutError("slow", 1.0, 1.5)
    timed = outcome("cancelled", error=node_timeout).error
    assert finalize.cancel_error(CancelReason("timeout"), "r", None, timed, 25) is node_timeout
    assert type(finalize.cancel_error(CancelReason("timeout"), "r", None, None, 25)) is RunTimeout
    plain = finalize.cancel_error(CancelReason("user"), "r", "c1", timed, 25)
    assert type(plain) is RunCancelled
    assert (plain.run_id, plain.checkpoint_id) == ("r", "c1")
