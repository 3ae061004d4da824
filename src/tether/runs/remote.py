"""Cancels requested by other processes, for runs on a store several processes share.

The request is already durable in the store; this only notices it and propagates it into the
run here. Two ways, as a run may sit in a long step: a check at every superstep boundary (a
policy hook, `RunCore._remote_poll`) and a poll, every `POLL` seconds, of all the live runs of
one loop and store.
"""

from __future__ import annotations

import asyncio
import contextlib

from tether.checkpoint.base import CheckpointStore
from tether.runs.core import RunCore
from tether.types import CancelReason

POLL = 0.2


class _Watch:
    """The poller of one (loop, store): one query per period for all of their runs."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.cores: dict[str, RunCore] = {}
        self.task: asyncio.Task[None] | None = None

    async def poll(self) -> None:
        while self.cores:
            await asyncio.sleep(POLL)
            live = [c for c in self.cores.values() if c.final is None
                    and not c.scope.cancel_called]
            if not live:
                continue
            found = await self.store.acancel_requests([c.run_id for c in live])
            for core in live:
                reason = found.get(core.run_id)
                if reason is not None:
                    adopt(core, reason)


_watches: dict[tuple[int, int], _Watch] = {}


def adopt(core: RunCore, reason: CancelReason) -> None:
    """Propagate a cancel another process recorded for `core`'s run."""
    if core.final is None and not core.scope.cancel_called:
        core.request_cancel_sync(reason)


def watch(core: RunCore) -> None:
    """Poll for cancels of `core` made elsewhere, while it runs (shared stores only)."""
    loop = core.aloop
    if not core.store.shared or loop is None:
        return
    key = (id(loop), id(core.store))
    entry = _watches.get(key)
    if entry is None:
        entry = _watches[key] = _Watch(core.store)
    entry.cores[core.run_id] = core
    if entry.task is None or entry.task.done():
        entry.task = loop.create_task(entry.poll(), name="tether-remote-cancels")

    def forget(done: RunCore) -> None:
        entry.cores.pop(done.run_id, None)
        if not entry.cores:
            _watches.pop(key, None)
            if entry.task is not None and not entry.task.done():
                # Called on the run's loop (the run's end): stop the poller now.
                with contextlib.suppress(RuntimeError):
                    entry.task.cancel()

    core.on_final.append(forget)
