"""Operations on runs by id, from sync or async code, from any thread: cancel, get, wait, list.

A run alive in this process is reached through the registry; any other run through its store,
where a durable cancel request is picked up by whichever process drives the run.
"""

from __future__ import annotations

import asyncio
import time

import anyio.to_thread

from tether import lifecycle
from tether.checkpoint.base import CheckpointStore, RunFinish
from tether.errors import RunNotFound
from tether.runs import portal
from tether.runs.core import RunCore
from tether.runs.registry import REGISTRY
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus, utcnow

_POLL = 0.01


def _live(run_id: str) -> RunCore | None:
    return REGISTRY.live(run_id)


def _orphan_cancel(store: CheckpointStore, info: RunInfo, reason: CancelReason) -> RunInfo:
    # A run nobody drives (paused for input): the request alone ends it.
    if info.status is not RunStatus.CANCELLING:
        return info
    now = utcnow()
    events: tuple[RunEvent, ...] = (
        RunEvent("propagate", now, None, {"kind": reason.kind, "driver": None}),
        RunEvent("checkpoint", now, None, {"checkpoint_id": info.checkpoint_id,
                                           "pending_writes": 0, "cancelled_tasks": []}),
        RunEvent("terminate", now, None, {"status": RunStatus.CANCELLED.value}),
    )
    events = lifecycle.complete(events, now)  # no node was in flight, no hook to run
    finish = RunFinish(status=RunStatus.TIMEOUT if reason.kind == "timeout"
                       else RunStatus.CANCELLED, checkpoint_id=info.checkpoint_id,
                       thread_id=info.thread_id, reason=info.reason, events=events,
                       cancel_latency_ms=0.0)
    return store.finish_run(info.run_id, finish).info


def cancel(store: CheckpointStore, run_id: str, reason: CancelReason) -> RunInfo:
    """Request a cancel; return as soon as it is durable. Idempotent.

    Raises:
        RunNotFound: no such run in the store or this process.
    """
    core = _live(run_id)
    if core is not None:
        return core.request_cancel_sync(reason)
    info = store.get_run(run_id)
    if info is None:
        raise RunNotFound(run_id, _hint(store))
    if info.terminal:
        return info
    was = info.status
    info, _first = store.request_cancel(run_id, reason)
    if was is RunStatus.INTERRUPTED or (was is RunStatus.PENDING and _no_driver(store)):
        return _orphan_cancel(store, info, reason)
    return info


async def acancel(store: CheckpointStore, run_id: str, reason: CancelReason,
                  wait: bool) -> RunInfo:
    """Async `cancel`, optionally waiting for the run's end.

    A run driven on this loop is cancelled through it. Any other (driven on another loop or in
    another process, or driven by nobody) is cancelled by the sync path in a worker thread: its
    store calls and its hand-off to another loop may block, and this loop serves others.

    Cancellation:
        The request is durable before this returns or is interrupted (an interrupted caller
        waits for the worker thread's request to be recorded); waiting for the end can be
        abandoned without affecting the cancel. Safe to retry.
    """
    core = _live(run_id)
    if core is not None and core.aloop is _running_loop():
        info = await core.request_cancel(reason, until_end=wait)
        return await core.wait() if wait and not info.terminal else info
    info = await anyio.to_thread.run_sync(cancel, store, run_id, reason)
    if wait and not info.terminal:
        return await await_run(store, run_id, None)
    return info


def get(store: CheckpointStore, run_id: str) -> RunInfo:
    """The run's record.

    Raises:
        RunNotFound: no such run in the store or this process.
    """
    core = REGISTRY.live(run_id)
    if core is not None and core.store is store:
        return store.get_run(run_id) or core.info
    info = store.get_run(run_id)
    if info is None:
        raise RunNotFound(run_id, _hint(store))
    return info


def wait(store: CheckpointStore, run_id: str, timeout: float | None) -> RunInfo:
    """Block until the run has ended; return its record.

    Raises:
        TimeoutError: `timeout` seconds passed first.
    """
    core = REGISTRY.live(run_id)
    if core is not None:
        if not core.wait_blocking(timeout):
            raise TimeoutError(f"run {run_id!r} did not end within {timeout}s")
        assert core.final is not None
        return core.final
    # A run of another process: the one polling loop, run on a loop of this thread's own.
    return portal.run_sync(lambda _private: await_run(store, run_id, timeout))


async def await_run(store: CheckpointStore, run_id: str,
                    timeout: float | None) -> RunInfo:  # noqa: ASYNC109
    """Async `wait`.

    Raises:
        TimeoutError: `timeout` seconds passed first.

    Cancellation:
        Only the waiting stops; the run goes on.
    """
    core = REGISTRY.live(run_id)
    if core is not None and core.aloop is _running_loop():
        return await asyncio.wait_for(core.wait(), timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if core is not None and core.final is not None:
            return core.final
        found = await store.aget_run(run_id)  # the store's async read: this loop serves others
        info = found if found is not None else get(store, run_id)
        if info.terminal:
            return info
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"run {run_id!r} did not end within {timeout}s")
        await asyncio.sleep(_POLL)


def list_runs(store: CheckpointStore, thread_id: str | None,
              status: RunStatus | str | None, limit: int | None = None) -> list[RunInfo]:
    """Runs in the store, newest first."""
    return store.list_runs(thread_id=thread_id, status=status, limit=limit)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _no_driver(store: CheckpointStore) -> bool:
    return not getattr(store, "has_workers", False)


def _hint(store: CheckpointStore) -> str:
    if getattr(store, "ephemeral", False):
        return ("the graph has no checkpointer, so only runs of this process are known; "
                "compile it with a checkpointer to look runs up later")
    return "not in this graph's store"
