"""The run status machine (`tether.types.TRANSITIONS`) on every backend: a store makes exactly
the status changes the table lists, each through the store call the table names, and refuses
every other one, leaving the run and its audit log as they were."""

from __future__ import annotations

from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.errors import StatusTransitionError
from tether.types import TRANSITIONS, CancelReason, RunStatus

from .conftest import new_run

STOP = CancelReason("user", "stop")


def run_in(store: CheckpointStore, status: RunStatus) -> str:
    """A new run brought to `status` through the store's own calls (edges of the table)."""
    run_id = new_run(store).run_id
    if status is RunStatus.CANCELLING:
        store.request_cancel(run_id, STOP)
    elif status is not RunStatus.PENDING:
        store.mark_running(run_id)
        if status is not RunStatus.RUNNING:
            store.finish_run(run_id, RunFinish(status=status))
    return run_id


def change(store: CheckpointStore, run_id: str, status: RunStatus) -> bool:
    """Ask for `status` with the call that makes that change; True if the store made it."""
    if status is RunStatus.RUNNING:
        return store.mark_running(run_id) is not None
    if status is RunStatus.CANCELLING:
        return store.request_cancel(run_id, STOP)[1]
    try:
        return store.finish_run(run_id, RunFinish(status=status)).applied
    except StatusTransitionError:  # TerminalStatusError too
        return False


def test_every_backend_makes_exactly_the_status_changes_of_the_table(
        store: CheckpointStore) -> None:
    wrong = []
    for source in RunStatus:
        for target in RunStatus:
            run_id = run_in(store, source)
            before, log = store.get_run(run_id), store.events(run_id)
            assert before is not None and before.status is source
            allowed = target in TRANSITIONS[source]
            moved = change(store, run_id, target)
            after = store.get_run(run_id)
            assert after is not None
            if moved is not allowed:
                wrong.append(f"{source} -> {target}: {'made' if moved else 'refused'}")
            elif not allowed and (after != before or store.events(run_id) != log):
                wrong.append(f"{source} -> {target}: refused but the run changed")
            elif allowed and after.status is not target:
                wrong.append(f"{source} -> {target}: made, but the run is {after.status}")
    assert wrong == []


def test_finish_run_neither_starts_nor_cancels_a_run(store: CheckpointStore) -> None:
    for source in RunStatus:
        for target in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLING):
            run_id = run_in(store, source)
            before = store.get_run(run_id)
            try:
                applied = store.finish_run(run_id, RunFinish(status=target)).applied
            except StatusTransitionError:
                applied = False
            assert applied is False, f"finish_run made {source} -> {target}"
            assert store.get_run(run_id) == before
