"""`QueueLauncher`: the server's `RunLauncher` for a Postgres store, which queues each run for
the workers (`tether worker`) instead of running it in the server process.

- start: the run is inserted in the queue; its thread's runs in flight are handled across
  processes by the database (`multitask_strategy` reject / enqueue / interrupt / rollback).
- feed: the run's audit events (`lifecycle`) and its state at each checkpoint (`values`), read
  from the database, plus `metadata` and `error`; a queued run streams no `updates`.
- cancel: a durable request on the run's row, which commits with `NOTIFY tether_cancel`; a run
  no worker holds is ended at once.
- wait: polls the database until the run has ended (or paused for input).

The server's own types stay with the server: it passes how to make a feed and a run's config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tether.checkpoint.postgres.queue import Order
from tether.errors import RunNotFound
from tether.graph.run_resume import resume_config
from tether.types import CancelReason, RunInfo, RunStatus
from tether.worker.watch import Feed, Watch

if TYPE_CHECKING:
    from tether.checkpoint.postgres.store import PostgresSaver

logger = logging.getLogger("tether.worker")

class FactsBook(Protocol):
    """Where a launcher keeps what a run's order said beyond tether's record (the server's
    `RecentFacts`)."""

    def remember(self, run_id: str, facts: Any) -> None:
        """Keep `facts` of a run just queued."""

    def get(self, run_id: str) -> Any:
        """The facts of a run, if kept."""


class QueueLauncher:
    """Queues the server's runs in Postgres for the workers; see the module docstring.

    Args:
        store: the server's `PostgresSaver` (the graphs it serves are compiled onto it).
        feed_factory: makes the feed of a run from its id (the server's `RunFeed`).
        run_config: the config a run order is queued with (the server's `run_config`: thread,
            run id, strategy, metadata).
        poll: seconds between looks at the database for feeds and waiters.
        cancel_wait: seconds `cancel(wait=True)` waits for the run's end.
        feed_retain: seconds a feed stays after its run ended (for late subscribers).
        facts: where to keep each run's facts (None: kept nowhere).
    """

    def __init__(self, store: PostgresSaver, *, feed_factory: Callable[[str], Feed],
                 run_config: Callable[[Any], dict[str, Any]], poll: float = 0.05,
                 cancel_wait: float = 30.0, feed_retain: float = 60.0,
                 facts: FactsBook | None = None) -> None:
        self._store = store
        self._feed_factory = feed_factory
        self._run_config = run_config
        self._cancel_wait = cancel_wait
        self._retain = feed_retain
        self._watch = Watch(store, poll)
        self._feeds: dict[str, Feed] = {}
        self._facts = facts
        self._closing = False
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
                   "interrupt_after": order.interrupt_after}
        info = await self._store.queue.aenqueue(Order(
            graph=graph.name, thread_id=order.thread_id, input=graph_input, config=config,
            options=options, run_id=order.run_id, multitask=order.multitask_strategy))
        feed = self._feed_factory(info.run_id)
        feed.publish("metadata", {"run_id": info.run_id, "attempt": 1})
        self._feeds[info.run_id] = feed
        if self._facts is not None:
            self._facts.remember(info.run_id, order.facts)

        async def values(checkpoint_id: str) -> Any:
            state = await graph.aget_state({"configurable": {
                "thread_id": order.thread_id, "checkpoint_id": checkpoint_id}})
            return state.values

        def on_end(ended: RunInfo) -> None:
            asyncio.get_running_loop().call_later(self._retain, self._forget, info.run_id, feed)
            if order.temporary:
                with contextlib.suppress(Exception):
                    self._store.delete_thread(order.thread_id)

        self._watch.follow(info.run_id, feed=feed, values=values, on_end=on_end)
        return info

    def feed(self, run_id: str) -> Feed | None:
        """The run's stream, while this launcher has it."""
        return self._feeds.get(run_id)

    def facts(self, run_id: str) -> Any:
        """What the order of a run queued here said beyond tether's record."""
        return self._facts.get(run_id) if self._facts is not None else None

    async def cancel(self, run_id: str, reason: CancelReason, *, wait: bool) -> RunInfo:
        """Record the cancel (the workers hear of it by `NOTIFY`, by polling, and at the run's
        next step boundary); a run no worker holds ends at once.

        Raises:
            RunNotFound: no such run.

        Cancellation:
            The request is durable before this returns or is interrupted; safe to retry.
        """
        info: RunInfo
        info, _first = await self._store.arequest_cancel(run_id, reason)
        if info.status is RunStatus.CANCELLING:
            swept: list[RunInfo] = await self._store.queue.asweep(self.name, run_id=run_id)
            if swept:
                info = swept[0]
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
        return await self._watch.ended(run_id, timeout)

    async def aclose(self) -> None:
        """Stop following runs and close their feeds. Queued and running runs are not
        cancelled: they are the workers', and go on without this server.

        Cancellation:
            Safe.
        """
        self._closing = True
        await self._watch.aclose()

    def _forget(self, run_id: str, feed: Feed) -> None:
        if self._feeds.get(run_id) is feed:
            del self._feeds[run_id]



__all__ = ["QueueLauncher"]
