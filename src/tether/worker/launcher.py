"""`QueueLauncher`: the server's `RunLauncher` for a Postgres store, which queues each run for
the workers (`tether worker`) instead of running it in the server process.

- start: the run is inserted in the queue; its thread's runs in flight are handled across
  processes by the database (`multitask_strategy` reject / enqueue / interrupt / rollback).
- feed: with a bus (`tether.bus`), everything the run streams on its worker, numbered by its bus
  offsets (the same event ids on every server), from any server; without one, its audit events
  (`lifecycle`) and its state at each checkpoint (`values`), read from the database. Plus
  `metadata` and `error`.
- cancel: a durable request on the run's row, which commits with `NOTIFY tether_cancel`, then
  sent on the bus; a run no worker holds is ended at once.
- wait: wakes on the run-ended signal of the bus; the database poll (every `poll` seconds, or
  every `FALLBACK_POLL` with a bus) stays behind it as the fallback that always works.

The server's own types stay with the server: it passes how to make a feed and a run's config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from tether.checkpoint.postgres.queue import Order
from tether.errors import RunNotFound
from tether.graph.run_resume import resume_config
from tether.types import CancelReason, RunInfo, RunStatus
from tether.worker import frames
from tether.worker.tail import Tail
from tether.worker.watch import Feed, Watch, close_feed

if TYPE_CHECKING:
    from tether.bus import StreamBus
    from tether.checkpoint.postgres.store import PostgresSaver

logger = logging.getLogger("tether.worker")

class FactsBook(Protocol):
    """Where a launcher keeps what a run's order said beyond tether's record (the server's
    `RecentFacts`)."""

    def remember(self, run_id: str, facts: Any) -> None:
        """Keep `facts` of a run just queued."""

    def get(self, run_id: str) -> Any:
        """The facts of a run, if kept."""

FALLBACK_POLL = 1.0
"""Seconds between looks at the database for the ends of runs, with a bus."""

BUS_GRACE = 2.0
"""Seconds a feed waits for the bus's end of its run after the database said it ended."""

HISTORY_WAIT = 5.0
"""Seconds `follow` waits for a run's events so far to be read from the bus."""


class QueueLauncher:
    """Queues the server's runs in Postgres for the workers; see the module docstring.

    Args:
        store: the server's `PostgresSaver` (the graphs it serves are compiled onto it).
        feed_factory: makes the feed of a run from its id (the server's `RunFeed`).
        run_config: the config a run order is queued with (the server's `run_config`: thread,
            run id, strategy, metadata).
        poll: seconds between looks at the database for feeds and waiters (without a bus).
        cancel_wait: seconds `cancel(wait=True)` waits for the run's end.
        feed_retain: seconds a feed stays after its run ended (for late subscribers).
        facts: where to keep each run's facts (None: kept nowhere).
        bus: the bus the workers publish runs on (None: follow runs in the database).
        feed_modes: stream modes every run streams, whatever its order asked for.
    """

    def __init__(self, store: PostgresSaver, *, feed_factory: Callable[[str], Feed],
                 run_config: Callable[[Any], dict[str, Any]], poll: float = 0.05,
                 cancel_wait: float = 30.0, feed_retain: float = 60.0,
                 facts: FactsBook | None = None, bus: StreamBus | None = None,
                 feed_modes: Collection[str] = ()) -> None:
        self._store = store
        self._feed_factory = feed_factory
        self._run_config = run_config
        self._cancel_wait = cancel_wait
        self._retain = feed_retain
        self._bus = bus
        self._feed_modes = frozenset(feed_modes)
        self._watch = Watch(store, poll if bus is None else max(poll, FALLBACK_POLL))
        self._tail = None if bus is None else Tail(bus, store.serde, self._heard_end)
        self._feeds: dict[str, Feed] = {}
        self._facts = facts
        self._closing = False
        # Tasks started from loop callbacks (a temporary thread's delete, a record fetched after
        # a bare end signal), held until done so that none is collected mid-flight.
        self._chores: set[asyncio.Task[None]] = set()
        self.name = f"launcher:{socket.gethostname()}:{os.getpid()}"

    async def start(self, order: Any) -> RunInfo:
        """Queue a run (a `RunOrder`); its `pending` record.

        Raises:
            RuntimeError: the launcher is shutting down.
            ThreadBusyError: `multitask_strategy="reject"` and the thread has a run in flight
                (in any process).
            ConfigError, InvalidResumeError, RunNotFound: as for a local run.

        Cancellation:
            One transaction: the run is queued whole or not at all; once it is, cancelling the
            caller does not stop it.
        """
        if self._closing:
            raise RuntimeError("the server is shutting down")
        graph = order.assistant.graph
        config = self._run_config(order)
        graph_input = order.input
        if order.resume_of is not None:
            config = resume_config(graph, order.resume_of, config)
            graph_input = None
        options = {"context": order.context, "interrupt_before": order.interrupt_before,
                   "interrupt_after": order.interrupt_after,
                   "stream_mode": sorted(self._feed_modes.union(order.stream_modes)),
                   "subgraphs": order.subgraphs}
        info = await self._store.queue.aenqueue(Order(
            graph=graph.name, thread_id=order.thread_id, input=graph_input, config=config,
            options=options, run_id=order.run_id, multitask=order.multitask_strategy))
        feed = self._open_feed(info.run_id)
        if self._facts is not None:
            self._facts.remember(info.run_id, order.facts)
        on_end = self._on_end(info.run_id, feed, order.thread_id if order.temporary else None)
        if self._tail is not None:
            self._tail.feed(info.run_id, feed)
            self._watch.follow(info.run_id, on_end=on_end)
            return info

        async def values(checkpoint_id: str) -> Any:
            state = await graph.aget_state({"configurable": {
                "thread_id": order.thread_id, "checkpoint_id": checkpoint_id}})
            return state.values

        self._watch.follow(info.run_id, feed=feed, values=values, on_end=on_end)
        return info

    def feed(self, run_id: str) -> Feed | None:
        """The run's stream, while this launcher has it."""
        return self._feeds.get(run_id)

    async def follow(self, run_id: str) -> Feed | None:
        """The run's stream; with a bus, also for a run queued by another server: its events
        so far are read from the bus first (numbered as everywhere), then it goes on live.

        Cancellation:
            Safe: the feed, once made, goes on filling for later callers.
        """
        feed = self._feeds.get(run_id)
        if feed is not None or self._bus is None or self._tail is None:
            return feed
        try:
            last = await self._bus.last(run_id)
        except Exception as exc:  # noqa: BLE001 - without the bus, the run's end comes polled
            logger.warning("bus unavailable: %s", exc)
            return None
        feed = self._feeds.get(run_id)
        if feed is not None:  # made while the bus answered
            return feed
        feed = self._open_feed(run_id)
        ready = asyncio.Event()
        self._tail.feed(run_id, feed, ready=ready, upto=last.seq if last is not None else 0)
        self._watch.follow(run_id, on_end=self._on_end(run_id, feed, None))
        if last is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HISTORY_WAIT):
                    await ready.wait()
        return feed

    def facts(self, run_id: str) -> Any:
        """What the order of a run queued here said beyond tether's record."""
        return self._facts.get(run_id) if self._facts is not None else None

    def live(self, run_id: str) -> None:
        """None: the runs queued here are driven by workers, never by this process."""
        del run_id

    async def cancel(self, run_id: str, reason: CancelReason, *, wait: bool) -> RunInfo:
        """Record the cancel, then tell the workers: by the bus, by `NOTIFY`, by polling, and
        at the run's next step boundary; a run no worker holds ends at once.

        Raises:
            RunNotFound: no such run.

        Cancellation:
            The request is durable before this returns or is interrupted; safe to retry.
        """
        info: RunInfo
        info, _first = await self._store.arequest_cancel(run_id, reason)
        if self._bus is not None and not info.terminal:
            durable = info.reason or reason
            await self._on_bus(self._bus.cancel(run_id, self._store.serde.dumps(durable)))
        if info.status is RunStatus.CANCELLING:
            swept: list[RunInfo] = await self._store.queue.asweep(self.name, run_id=run_id)
            if swept:
                info = swept[0]
                if self._bus is not None:
                    await self._on_bus(self._bus.end(
                        run_id, frames.encode_end(info, self._store.serde)))
        if wait and not info.terminal:
            info = await self.wait(run_id, self._cancel_wait)
        return info

    async def wait(self, run_id: str, timeout: float | None) -> RunInfo:  # noqa: ASYNC109
        """Wait until the run has ended or paused for input; its record.

        Raises:
            RunNotFound: no such run.
            TimeoutError: `timeout` passed first.

        Cancellation:
            Safe: the run is not affected.
        """
        info = await self._store.aget_run(run_id)
        if info is None:
            raise RunNotFound(run_id)
        if info.status.at_rest:
            return info
        ended = self._watch.waiter(run_id)
        if self._tail is not None and not self._tail.following(run_id):
            self._tail.wait(run_id)
        async with asyncio.timeout(timeout):
            return await ended

    async def aclose(self) -> None:
        """Stop following runs and close their feeds. Queued and running runs are not
        cancelled: they are the workers', and go on without this server.

        Cancellation:
            Safe.
        """
        self._closing = True
        if self._tail is not None:
            await self._tail.aclose()
        await self._watch.aclose()

    # -- ends ---------------------------------------------------------------------------------

    def _open_feed(self, run_id: str) -> Feed:
        feed = self._feed_factory(run_id)
        feed.publish("metadata", {"run_id": run_id, "attempt": 1})
        self._feeds[run_id] = feed
        return feed

    def _on_end(self, run_id: str, feed: Feed,
                temporary_thread: str | None) -> Callable[[RunInfo], None]:
        """What happens once a run followed here has ended (heard on the bus or polled)."""
        def on_end(ended: RunInfo) -> None:
            loop = asyncio.get_running_loop()
            if not feed.closed:
                if self._tail is not None and self._tail.following(run_id):
                    # Polled first: the bus has a moment to bring the last events and the end.
                    loop.call_later(BUS_GRACE, self._close_late, run_id, feed, ended)
                else:
                    close_feed(feed, ended)
            loop.call_later(self._retain, self._forget, run_id, feed)
            if temporary_thread is not None:
                self._chore(self._delete_thread(temporary_thread))

        return on_end

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task of this loop, held until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _delete_thread(self, thread_id: str) -> None:
        """Delete a stateless run's thread once the run has ended, off the loop (the store's
        async call). Best effort: a thread left behind is only a row of history."""
        with contextlib.suppress(Exception):
            await self._store.adelete_thread(thread_id)

    def _heard_end(self, run_id: str, info: RunInfo | None) -> None:
        """The bus brought the run's end: close its feed, wake its waiters."""
        if info is None:  # a signal without a readable record: the database has it
            self._chore(self._fetch_end(run_id))
            return
        feed = self._feeds.get(run_id)
        if feed is not None and not feed.closed:
            close_feed(feed, info)
        self._watch.settle(run_id, info)

    async def _fetch_end(self, run_id: str) -> None:
        info = await self._store.aget_run(run_id)
        if info is not None and info.status.at_rest:
            self._heard_end(run_id, info)

    def _close_late(self, run_id: str, feed: Feed, ended: RunInfo) -> None:
        if not feed.closed:
            if self._tail is not None:
                self._tail.forget(run_id)
            # The bus never brought the run's last events: its stream's last state is not the
            # run's (a join then answers with the thread's durable state).
            close_feed(feed, ended, whole=False)

    async def _on_bus(self, call: Awaitable[Any]) -> None:
        try:
            await call
        except Exception as exc:  # noqa: BLE001 - the bus is a fast path: the row stays true
            logger.warning("bus unavailable: %s", exc)

    def _forget(self, run_id: str, feed: Feed) -> None:
        if self._feeds.get(run_id) is feed:
            del self._feeds[run_id]



__all__ = ["FALLBACK_POLL", "QueueLauncher"]
