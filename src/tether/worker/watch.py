"""Following runs that workers drive, from the database: their audit events and checkpoints
into the server's feeds, their ends to whoever waits.

One task polls every followed run in two queries per round (statuses, then the new events of
the runs that have some), so a server streaming a hundred runs makes the same two queries as one
streaming a single run. A run's events are read in id order after a cursor; an event whose
transaction committed after a later one's (a cancel request racing a worker's write, for
microseconds) can be passed over by a feed, never by the audit log itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tether.errors import RunNotFound
from tether.types import RunEvent, RunInfo, RunStatus

if TYPE_CHECKING:
    from tether.checkpoint.postgres.store import PostgresSaver

logger = logging.getLogger("tether.worker")


class Feed(Protocol):
    """What the watch writes a run's stream into (the server's `RunFeed`)."""

    def publish(self, event: str, payload: Any, seq: int | None = None) -> None:
        """Append an event, numbered `seq` (its bus offset) or the next number."""

    def close(self, final: Any = None, *, whole: bool = True) -> None:
        """No more events; `final` is the run's record at its end (`whole`: False when its
        last events are missing)."""

    @property
    def closed(self) -> bool:
        """True once closed."""


@dataclass(slots=True)
class Followed:
    """One run being followed: where its feed stands, and who waits for its end."""

    run_id: str
    feed: Feed | None = None
    values: Callable[[str], Any] | None = None
    """Reads the state at a checkpoint id (an awaitable), for the feed's `values` events."""
    on_end: Callable[[RunInfo], None] | None = None
    cursor: int = 0
    checkpoint_id: str | None = None
    waiters: list[asyncio.Future[RunInfo]] = field(default_factory=list)


class Watch:
    """Follows runs for a `QueueLauncher`.

    Args:
        store: the Postgres store the runs are in.
        poll: seconds between rounds.
    """

    def __init__(self, store: PostgresSaver, poll: float) -> None:
        self._store = store
        self._poll = poll
        self._runs: dict[str, Followed] = {}
        self._task: asyncio.Task[None] | None = None

    def follow(self, run_id: str, *, feed: Feed | None = None,
               values: Callable[[str], Any] | None = None,
               on_end: Callable[[RunInfo], None] | None = None) -> Followed:
        """Start following a run (idempotent: a second call adds what the first lacked)."""
        followed = self._runs.get(run_id)
        if followed is None:
            followed = self._runs[run_id] = Followed(run_id)
        followed.feed = followed.feed or feed
        followed.values = followed.values or values
        followed.on_end = followed.on_end or on_end
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(),
                                                                name="tether-watch")
        return followed

    async def ended(self, run_id: str, timeout: float | None) -> RunInfo:  # noqa: ASYNC109
        """Wait until the run has ended or paused for input; its record.

        Raises:
            RunNotFound: no such run.
            TimeoutError: `timeout` passed first.

        Cancellation:
            Safe: only the waiting stops.
        """
        future = self.waiter(run_id)
        async with asyncio.timeout(timeout):
            return await future

    def waiter(self, run_id: str) -> asyncio.Future[RunInfo]:
        """A future of the run's record once it has ended or paused for input (its
        exception: `RunNotFound`), registered now."""
        future: asyncio.Future[RunInfo] = asyncio.get_running_loop().create_future()
        self.follow(run_id).waiters.append(future)
        return future

    async def aclose(self) -> None:
        """Stop following; close the feeds (their runs go on in the workers).

        Cancellation:
            Safe.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for followed in self._runs.values():
            if followed.feed is not None:
                followed.feed.close()
            for waiter in followed.waiters:
                waiter.cancel()
        self._runs.clear()

    async def _loop(self) -> None:
        while self._runs:
            try:
                await self._round()
            except Exception:  # a failed round is logged; the next one tries again
                logger.exception("following runs failed")
            await asyncio.sleep(self._poll)

    async def _round(self) -> None:
        queue = self._store.queue
        # Only the runs asked about can be missing from the answer: runs followed while the
        # query was in flight are asked about next round.
        asked = list(self._runs)
        found = await queue.awatch(asked)
        cursors = {run_id: self._runs[run_id].cursor for run_id, _s, _c, last in found
                   if last is not None and self._runs[run_id].cursor < last
                   and self._runs[run_id].feed is not None}
        if cursors:
            for event_id, run_id, event in await queue.aevents_after(cursors):
                followed = self._runs[run_id]
                followed.cursor = event_id
                assert followed.feed is not None
                followed.feed.publish("lifecycle", lifecycle(event))
        seen = set()
        for run_id, status, checkpoint_id, _last in found:
            seen.add(run_id)
            followed = self._runs[run_id]
            await self._show_state(followed, checkpoint_id)
            if status.at_rest:
                await self._end(followed)
        for run_id in set(asked) - seen:
            gone = self._runs.pop(run_id, None)
            if gone is not None:
                self._gone(gone)

    async def _show_state(self, followed: Followed, checkpoint_id: str | None) -> None:
        if checkpoint_id is None or checkpoint_id == followed.checkpoint_id:
            return
        followed.checkpoint_id = checkpoint_id
        if followed.feed is not None and followed.values is not None:
            followed.feed.publish("values", await followed.values(checkpoint_id))

    def settle(self, run_id: str, info: RunInfo) -> None:
        """End the following of a run whose end was heard elsewhere (the bus): as a round
        that found it ended would, without asking the database."""
        followed = self._runs.pop(run_id, None)
        if followed is not None:
            self._ended(followed, info)

    async def _end(self, followed: Followed) -> None:
        info = await self._store.aget_run(followed.run_id)
        if self._runs.pop(followed.run_id, None) is None:
            return  # settled meanwhile
        if info is None:
            self._gone(followed)
            return
        self._ended(followed, info)

    def _ended(self, followed: Followed, info: RunInfo) -> None:
        if followed.feed is not None:
            close_feed(followed.feed, info)
        for waiter in followed.waiters:
            if not waiter.done():
                waiter.set_result(info)
        if followed.on_end is not None:
            followed.on_end(info)

    @staticmethod
    def _gone(followed: Followed) -> None:
        if followed.feed is not None:
            followed.feed.close()
        for waiter in followed.waiters:
            if not waiter.done():
                waiter.set_exception(RunNotFound(followed.run_id))


def close_feed(feed: Feed, info: RunInfo, *, whole: bool = True) -> None:
    """Close a run's feed at its end: an `error` event first for a failed run. `whole`: False
    when the run's last events never reached the feed."""
    if info.status is RunStatus.ERROR and info.error:
        kind, _, message = info.error.partition(": ")
        feed.publish("error", {"error": kind, "message": message})
    feed.close(info, whole=whole)


def lifecycle(event: RunEvent) -> dict[str, Any]:
    """An audit event as a `lifecycle` stream chunk (the shape a local run streams)."""
    return {"phase": event.phase, "at": event.at.isoformat(), "node": event.node,
            "detail": event.detail}


__all__ = ["Feed", "Followed", "Watch", "close_feed", "lifecycle"]
