"""`cancel_requests` (the poll of a process's live runs for cancels made elsewhere), the same on
every store, sync and async: a run in flight with a durable request is reported with its
reason; one without, one that ended, and an unknown id are not."""

from __future__ import annotations

import asyncio

from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.types import CancelReason, RunStatus

from .conftest import new_run


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
