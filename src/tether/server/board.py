"""The runs board: every change of a run's status, pushed to the pages that watch (SSE), so no
page polls.

Changes are found in the store (the system of record, whoever drove the run: this process, a
worker, a library call on the same file): a look at the newest runs and the runs in flight, a
few times a second while at least one page watches, and at once when something here is known
to have changed (a run started or cancelled through this server, a run's stream ending). Each
tenant has its own feed, so a page sees only its tenant's runs; a server without auth has one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from tether.checkpoint.base import CheckpointStore
from tether.server.feed import RunFeed
from tether.server.launcher import RunLauncher, RunOrder
from tether.server.wire import TENANT_KEY, RunFacts
from tether.types import CancelReason, RunInfo, RunStatus

IN_FLIGHT = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLING, RunStatus.INTERRUPTED)
ALL = "*"
"""The feed of every run (a server without auth)."""

Mark = tuple[str, bool, str | None, str | None]


class RunBoard:
    """Run changes by tenant, as feeds of `run` events (the run's record).

    Args:
        store: where runs are recorded.
        launcher: whose run streams tell when a run ends (`feed`).
        render: a run record as the API sends it.
        interval: seconds between looks at the store while pages watch.
        recent: how many of the newest runs each look covers (besides those in flight).
        keep: events kept per feed for a page that reconnects.
    """

    def __init__(self, store: CheckpointStore, launcher: RunLauncher,
                 render: Callable[[RunInfo], dict[str, Any]], *, interval: float = 0.3,
                 recent: int = 100, keep: int = 1000) -> None:
        self._store = store
        self._launcher = launcher
        self._render = render
        self._interval = interval
        self._recent = recent
        self._keep = keep
        self._feeds: dict[str, RunFeed] = {}
        self._known: dict[str, Mark] | None = None
        self._tenants: dict[str, str | None] = {}
        self._followed: dict[str, asyncio.Task[None]] = {}
        self._watchers = 0
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False

    async def feed(self, tenant: str | None) -> RunFeed:
        """The feed of a tenant's runs (`None`: every run); the board knows the runs as they
        are now, so what the feed brings later is what changed after this call.

        Cancellation:
            Safe: the first call reads the store (the board's first look); a cancelled one
            leaves the board as it was.
        """
        if self._known is None:
            known = {info.run_id: _mark(info) for info in await self._look()}
            if self._known is None:  # another caller's first look may have ended meanwhile
                self._known = known
        key = ALL if tenant is None else tenant
        found = self._feeds.get(key)
        if found is None:
            found = self._feeds[key] = RunFeed(f"board:{key}", limit=self._keep)
            if self._closed:
                found.close()
        return found

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """While a page watches, the board looks at the store."""
        self._watchers += 1
        if not self._closed and (self._loop_task is None or self._loop_task.done()):
            self._loop_task = asyncio.get_running_loop().create_task(
                self._run(), name="tether-board")
        try:
            yield
        finally:
            self._watchers -= 1

    def nudge(self) -> None:
        """Something changed: look now rather than at the next interval."""
        self._wake.set()

    def close(self) -> None:
        """No more changes: every feed ends (the pages' streams with them)."""
        self._closed = True
        for feed in self._feeds.values():
            feed.close()
        for task in self._followed.values():
            task.cancel()
        if self._loop_task is not None:
            self._loop_task.cancel()
        self._wake.set()

    async def _run(self) -> None:
        while self._watchers > 0 and not self._closed:
            await self._publish(await self._changes())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()

    async def _look(self) -> list[RunInfo]:
        """The newest runs and every run in flight (the reads made at once: one wait)."""
        store = self._store
        found = await asyncio.gather(store.alist_runs(limit=self._recent), *(
            store.alist_runs(status=status, limit=self._recent * 5) for status in IN_FLIGHT))
        return list({info.run_id: info for runs in found for info in runs}.values())

    async def _changes(self) -> list[RunInfo]:
        known = self._known if self._known is not None else {}
        seen = {info.run_id: info for info in await self._look()}
        for run_id, mark in known.items():
            # A run that was in flight and is no longer among those looked at has ended.
            if run_id not in seen and mark[0] in _IN_FLIGHT_NAMES:
                info = await self._store.aget_run(run_id)
                if info is not None:
                    seen[run_id] = info
        changed = [info for info in seen.values() if known.get(info.run_id) != _mark(info)]
        self._known = {run_id: _mark(info) for run_id, info in seen.items()}
        for info in seen.values():
            if info.status in IN_FLIGHT:
                self._follow(info.run_id)
        return changed

    async def _publish(self, changed: list[RunInfo]) -> None:
        for info in sorted(changed, key=lambda i: i.created_at):
            payload = self._render(info)
            tenant = await self._tenant(info)
            for key in (ALL, tenant):
                feed = self._feeds.get(key) if key is not None else None
                if feed is not None:
                    feed.publish("run", payload)

    async def _tenant(self, info: RunInfo) -> str | None:
        own = info.metadata.get(TENANT_KEY)
        if isinstance(own, str):
            return own
        thread_id = info.thread_id or ""
        if thread_id not in self._tenants:
            record = await self._store.aget_thread(thread_id) if thread_id else None
            tenant = record.metadata.get(TENANT_KEY) if record is not None else None
            self._tenants[thread_id] = tenant if isinstance(tenant, str) else None
        return self._tenants[thread_id]

    def _follow(self, run_id: str) -> None:
        """Nudge the board when the run's stream (if this server has it) shows a lifecycle
        event or ends, so an end is shown at once."""
        if run_id in self._followed or self._closed:
            return
        feed = self._launcher.feed(run_id)
        if feed is None:
            return
        task = asyncio.get_running_loop().create_task(self._watch(feed))
        self._followed[run_id] = task
        task.add_done_callback(lambda _t: self._followed.pop(run_id, None))

    async def _watch(self, feed: RunFeed) -> None:
        sub = feed.subscribe({"lifecycle"}, after=feed.next_seq - 1)
        while not sub.done and self._watchers > 0:
            await sub.wait(self._interval * 10)
            if sub.take() or sub.done:
                self.nudge()


class ReportingLauncher:
    """A launcher that tells the board whenever it starts or cancels a run, so the pages see
    it at once rather than at the board's next look.

    Args:
        inner: the launcher that does the work.
        board: the board to nudge.
    """

    def __init__(self, inner: RunLauncher, board: RunBoard) -> None:
        self.inner = inner
        self.board = board

    async def start(self, order: RunOrder) -> RunInfo:
        """See `RunLauncher.start`.

        Cancellation:
            As `RunLauncher.start`.
        """
        info = await self.inner.start(order)
        self.board.nudge()
        return info

    def feed(self, run_id: str) -> RunFeed | None:
        """See `RunLauncher.feed`."""
        return self.inner.feed(run_id)

    async def follow(self, run_id: str) -> RunFeed | None:
        """See `RunLauncher.follow`.

        Cancellation:
            As `RunLauncher.follow`.
        """
        return await self.inner.follow(run_id)

    def facts(self, run_id: str) -> RunFacts | None:
        """See `RunLauncher.facts`."""
        return self.inner.facts(run_id)

    def live(self, run_id: str) -> RunInfo | None:
        """See `RunLauncher.live`."""
        return self.inner.live(run_id)

    async def cancel(self, run_id: str, reason: CancelReason, *, wait: bool) -> RunInfo:
        """See `RunLauncher.cancel`.

        Cancellation:
            As `RunLauncher.cancel`.
        """
        try:
            return await self.inner.cancel(run_id, reason, wait=wait)
        finally:
            self.board.nudge()

    async def wait(self, run_id: str, timeout: float | None) -> RunInfo:  # noqa: ASYNC109
        """See `RunLauncher.wait`.

        Cancellation:
            As `RunLauncher.wait`.
        """
        return await self.inner.wait(run_id, timeout)

    async def aclose(self) -> None:
        """See `RunLauncher.aclose`.

        Cancellation:
            As `RunLauncher.aclose`.
        """
        await self.inner.aclose()


_IN_FLIGHT_NAMES = frozenset(s.value for s in IN_FLIGHT)


def _mark(info: RunInfo) -> Mark:
    """What the board compares to tell that a run changed."""
    ended = info.ended_at.isoformat() if info.ended_at is not None else None
    return (info.status.value, info.reason is not None, info.error, ended)


__all__ = ["ALL", "IN_FLIGHT", "ReportingLauncher", "RunBoard"]
