"""The in-memory store rewrites a run's record by copying it field by field (not through the
frozen dataclass's `__init__`): each transition changes exactly the fields it names, keeps every
other one, and gives an ordinary, immutable `RunInfo`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from tether.checkpoint.base import RunFinish
from tether.checkpoint.memory import InMemorySaver
from tether.types import CancelReason, RunInfo, RunStatus


def _full_record() -> RunInfo:
    # Every field set to something other than its default, so a field lost by a copy shows.
    fields = {f.name for f in dataclasses.fields(RunInfo)}
    info = RunInfo("r1", "t1", RunStatus.PENDING, None,
                   created_at=datetime(2026, 1, 1, tzinfo=UTC), metadata={"k": "v"},
                   checkpoint_id="c0", error_node="n", error_traceback="tb")
    assert fields == {"run_id", "thread_id", "status", "reason", "created_at", "started_at",
                      "ended_at", "checkpoint_id", "error", "cancel_latency_ms", "metadata",
                      "error_node", "error_traceback"}, "a new field: set it above"
    return info


def test_a_cancel_request_changes_only_the_status_and_reason() -> None:
    store = InMemorySaver()
    store.create_run(_full_record())
    running = store.mark_running("r1")
    assert running is not None
    reason = CancelReason("user", "stop")
    info, first = store.request_cancel("r1", reason)
    assert first
    assert info == dataclasses.replace(running, status=RunStatus.CANCELLING, reason=reason)
    assert type(info) is RunInfo and hash(info.run_id) == hash("r1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.status = RunStatus.RUNNING  # type: ignore[misc]


def test_a_finish_changes_only_what_it_commits() -> None:
    store = InMemorySaver()
    store.create_run(_full_record())
    running = store.mark_running("r1")
    assert running is not None
    result = store.finish_run("r1", RunFinish(status=RunStatus.ERROR, error="E: x",
                                              error_node="m", error_traceback="tb2"))
    assert result.applied
    assert result.info.ended_at is not None
    assert result.info == dataclasses.replace(
        running, status=RunStatus.ERROR, error="E: x", error_node="m", error_traceback="tb2",
        ended_at=result.info.ended_at)
    assert store.get_run("r1") == result.info
