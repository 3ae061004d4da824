"""`cancel_requests` (the poll of a process's live runs for cancels made elsewhere), the same on
every store, sync and async: a run in flight with a durable request is reported with its
reason; one without, one that ended, and an unknown id are not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.types import CancelReason, RunStatus

from .conftest import Backend, Chain, new_run


def test_cancel_requests_names_the_live_runs_with_a_durable_request(
        store: CheckpointStore) -> None:
    asked, quiet, ended = (new_run(store, f"t{i}").run_id for i in range(3))
    reason = CancelReason("user", "stop", "test")
    store.request_cancel(asked, reason)
    store.request_cancel(ended, reason)
    store.finish_run(ended, RunFinish(status=RunStatus.CANCELLED, reason=reason))
    ids = [asked, quiet, ended, "no-such-run"]
    found = store.cancel_requests(ids)
    assert list(found) == [asked] and found[asked].message == "stop"
    assert asyncio.run(store.acancel_requests(ids)) == found
    assert store.cancel_requests([]) == {}


@pytest.mark.durable_only
def test_a_root_checkpoint_notes_a_cancel_committed_by_another_handle(
        backend: Backend, store: CheckpointStore, tmp_path: Path) -> None:
    # A store that `notes_cancels` answers a run's step boundary from its last checkpoint
    # write: that write must see a cancel another process committed before it.
    assert store.notes_cancels
    run_id = new_run(store, "t").run_id
    store.mark_running(run_id)
    chain = Chain(store, "t", run_id=run_id)
    chain.put({"a": 1})
    assert store.cancel_noted(run_id) is None
    assert backend.reopen is not None
    other = backend.reopen(store, tmp_path)
    try:
        other.request_cancel(run_id, CancelReason("user", "from elsewhere", "test"))
    finally:
        getattr(other, "close", lambda: None)()
    assert store.cancel_noted(run_id) is None  # nothing is read until the next write
    record = chain.record({"a": 2})
    asyncio.run(store.aput_checkpoint(record))
    chain.commit(record)
    noted = store.cancel_noted(run_id)
    assert noted is not None and noted.message == "from elsewhere"
    store.finish_run(run_id, RunFinish(status=RunStatus.CANCELLED, reason=noted))
    assert store.cancel_noted(run_id) is None
