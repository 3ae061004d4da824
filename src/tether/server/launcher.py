"""How the server runs runs: one small interface (`RunLauncher`) and the in-process
implementation (`LocalLauncher`), which runs each run on the server's event loop and shares its
stream through a `RunFeed`. A worker queue (Postgres) can take its place behind the same calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from tether.errors import RunCancelled
from tether.graph.run_resume import resume_config
from tether.runs import Run
from tether.runs.handle import records_async
from tether.server.feed import RunFeed
from tether.server.graphs import Assistant
from tether.server.limits import ServerLimits
from tether.server.wire import TENANT_KEY, RecentFacts, RunFacts
from tether.types import CancelReason, RunInfo

logger = logging.getLogger("tether.server")

FEED_MODES = frozenset({"values", "updates", "tasks", "lifecycle", "messages"})
"""Modes every run streams into its feed, whatever the client asked for: `values` gives the
final result of a join, `tasks` and `lifecycle` drive the web page, `messages` its chat (tokens
as they come; and a model stopped mid-answer keeps what it had streamed)."""


@dataclass(frozen=True, slots=True)
class RunOrder:
    """Everything needed to start one run.

    Attributes:
        resume_of: continue this cancelled (or failed) run from its final checkpoint instead
            of starting from `input` (tether's `graph.resume`).
        temporary: delete the thread once the run has ended (a stateless run).
        tenant: the tenant of the caller, recorded in the run's metadata.
    """

    assistant: Assistant
    thread_id: str
    run_id: str
    input: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    context: Any = None
    stream_modes: tuple[str, ...] = ("values",)
    subgraphs: bool = False
    interrupt_before: Any = None
    interrupt_after: Any = None
    multitask_strategy: str = "enqueue"
    facts: RunFacts = field(default_factory=RunFacts)
    resume_of: str | None = None
    temporary: bool = False
    tenant: str | None = None


class RunLauncher(Protocol):
    """Starts, streams, cancels and awaits runs for the server's routes."""

    async def start(self, order: RunOrder) -> RunInfo:
        """Start a run (or queue it behind its thread's runs); its record.

        Cancellation:
            The run is recorded before this returns; cancelling the caller does not stop it.
        """
        ...

    def feed(self, run_id: str) -> RunFeed | None:
        """The run's stream, while this launcher has it."""
        ...

    async def follow(self, run_id: str) -> RunFeed | None:
        """The run's stream, made here if this launcher can follow a run started elsewhere
        (a worker's run, on the bus); None when it cannot.

        Cancellation:
            Safe: only the waiting for the run's events so far stops.
        """
        ...

    def facts(self, run_id: str) -> RunFacts | None:
        """What the order of a run said beyond tether's record, if this launcher knows."""
        ...

    def live(self, run_id: str) -> RunInfo | None:
        """The record of a run this process drives, as the run holds it (no store read); None
        for any other."""
        ...

    async def cancel(self, run_id: str, reason: CancelReason, *, wait: bool) -> RunInfo:
        """Cancel a run; return once the request is durable (and, with `wait`, once it ended).

        Raises:
            TimeoutError: with `wait`, the run did not end within the server's
                `cancel_wait_seconds` (the request is durable all the same).

        Cancellation:
            The request is durable before this returns or is interrupted; safe to retry.
        """
        ...

    async def wait(self, run_id: str, timeout: float | None) -> RunInfo:  # noqa: ASYNC109
        """Wait until the run has ended (or paused for input); its record.

        Cancellation:
            Safe: the run is not affected.
        """
        ...

    async def aclose(self) -> None:
        """Cancel every run still going (kind `shutdown`) and wait, bounded, for their ends.

        Cancellation:
            Each cancel is durable once requested; interrupting the wait leaves the runs to
            end on their own.
        """
        ...


class LocalLauncher:
    """Runs every run in this process, on the event loop that calls `start`.

    Args:
        assistants_graph: any graph bound to the server's store (cancel and wait go through
            it; the store is shared).
        limits: how many events a feed keeps and how long after its run ends.
    """

    def __init__(self, assistants_graph: Any, limits: ServerLimits) -> None:
        self._graph = assistants_graph
        self._limits = limits
        self._feeds: dict[str, RunFeed] = {}
        self._runs: dict[str, Run] = {}
        self._facts = RecentFacts()
        self._pumps: set[asyncio.Task[None]] = set()
        self._temporary: set[str] = set()
        self._closing = False

    async def start(self, order: RunOrder) -> RunInfo:
        """See `RunLauncher.start`.

        Raises:
            RuntimeError: the launcher is shutting down.
            ThreadBusyError: `multitask_strategy="reject"` and the thread is busy.
            ConfigError: a malformed config.
            InvalidResumeError, RunNotFound: `resume_of` cannot be resumed.

        Cancellation:
            As `RunLauncher.start`.
        """
        if self._closing:
            raise RuntimeError("the server is shutting down")
        graph = order.assistant.graph
        config = run_config(order)
        graph_input = order.input
        if order.resume_of is not None:
            config = resume_config(graph, order.resume_of, config)
            graph_input = None
        modes = sorted(FEED_MODES.union(order.stream_modes))
        # The record is made by the run's own task through the store's writer (one group
        # commit with the other runs' transactions), not on this loop under the write lock.
        with records_async():
            run = graph.start(graph_input, config, stream_mode=modes, subgraphs=order.subgraphs,
                              interrupt_before=order.interrupt_before,
                              interrupt_after=order.interrupt_after, context=order.context)
        await run.recorded()
        feed = RunFeed(run.run_id, limit=self._limits.feed_events)
        feed.publish("metadata", {"run_id": run.run_id, "attempt": 1})
        self._feeds[run.run_id] = feed
        self._runs[run.run_id] = run
        self._facts.remember(run.run_id, order.facts)
        if order.temporary:
            self._temporary.add(run.run_id)
        pump = asyncio.get_running_loop().create_task(self._pump(run, feed, order),
                                                      name=f"tether-feed-{run.run_id}")
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        return run.info

    def feed(self, run_id: str) -> RunFeed | None:
        """See `RunLauncher.feed`."""
        return self._feeds.get(run_id)

    async def follow(self, run_id: str) -> RunFeed | None:
        """See `RunLauncher.follow`: a run of another process has no feed here.

        Cancellation:
            Nothing to cancel: it does not wait.
        """
        return self._feeds.get(run_id)

    def facts(self, run_id: str) -> RunFacts | None:
        """See `RunLauncher.facts`."""
        return self._facts.get(run_id)

    def live(self, run_id: str) -> RunInfo | None:
        """The record of a run this launcher drives, as the run holds it (no store read); None
        for any other. Its id, thread and metadata are the stored ones (they never change); its
        status may be ahead of the store's by a transaction in flight."""
        run = self._runs.get(run_id)
        return run.info if run is not None else None

    async def cancel(self, run_id: str, reason: CancelReason, *, wait: bool) -> RunInfo:
        """See `RunLauncher.cancel`.

        Raises:
            RunNotFound: no such run in the store.

        Cancellation:
            As `RunLauncher.cancel`.
        """
        if wait and run_id not in self._temporary:
            # The run's end answers the cancel in one await: the run's own record, final and
            # durable, handed over by the run as it ends (not relayed through its feed's pump
            # and a subscription, two more turns of a loop that may be busy with other runs).
            # A stateless run's answer waits for its feed instead: its thread is deleted
            # before the feed closes, and the answer must find it gone.
            try:
                async with asyncio.timeout(self._limits.cancel_wait_seconds):
                    ended: RunInfo = await self._graph.acancel(run_id, reason, wait=True)
                    return ended
            except TimeoutError:
                await self._graph.acancel(run_id, reason, wait=False)  # the receipt: durable
                raise
        info: RunInfo = await self._graph.acancel(run_id, reason, wait=False)
        if wait and not info.terminal:
            info = await self.wait(run_id, self._limits.cancel_wait_seconds)
        return info

    async def wait(self, run_id: str, timeout: float | None) -> RunInfo:  # noqa: ASYNC109
        """See `RunLauncher.wait`.

        Raises:
            RunNotFound: no such run.
            TimeoutError: `timeout` passed first.

        Cancellation:
            As `RunLauncher.wait`.
        """
        feed = self._feeds.get(run_id)
        if feed is not None:
            sub = feed.subscribe(after=feed.next_seq - 1)
            async with asyncio.timeout(timeout):
                while not sub.done:
                    sub.take()
                    await sub.wait(self._limits.heartbeat_seconds)
            if isinstance(feed.final, RunInfo):
                return feed.final
        # The store's async read (this loop serves others); a run it does not know is one of
        # this process not yet recorded, or none (`get_run` answers both, RunNotFound).
        found: RunInfo | None = await self._graph.ledger.aget_run(run_id)
        info: RunInfo = found if found is not None else self._graph.get_run(run_id)
        if info.status.at_rest:
            return info
        ended: RunInfo = await self._graph.await_run(run_id, timeout)
        return ended

    async def aclose(self) -> None:
        """See `RunLauncher.aclose`.

        Cancellation:
            As `RunLauncher.aclose`.
        """
        self._closing = True
        reason = CancelReason("shutdown", "the server is shutting down", "server")
        live = [run_id for run_id, feed in self._feeds.items() if not feed.closed]
        for run_id in live:
            with contextlib.suppress(Exception):
                await self._graph.acancel(run_id, reason, wait=False)
        if self._pumps:
            await asyncio.wait(set(self._pumps), timeout=self._limits.cancel_wait_seconds)
        for pump in list(self._pumps):
            pump.cancel()

    async def _pump(self, run: Run, feed: RunFeed, order: RunOrder) -> None:
        try:
            async for chunk in run:
                feed.publish(*_event(chunk))
        except RunCancelled:
            pass  # cancelled or timed out: the stream just ends, as the Agent Server's does
        except Exception as exc:  # noqa: BLE001 - the run's failure, reported to subscribers
            feed.publish("error", {"error": type(exc).__name__, "message": str(exc)})
        finally:
            try:
                if order.temporary:
                    # Before the feed closes: whoever waits for the run's end finds the
                    # thread gone. Through the store's async API: a write.
                    ledger = order.assistant.graph.ledger
                    with contextlib.suppress(Exception):
                        await ledger.adelete_thread(order.thread_id)
            finally:
                self._runs.pop(run.run_id, None)
                feed.close(run.info)
                self._temporary.discard(run.run_id)
                loop = asyncio.get_running_loop()
                loop.call_later(self._limits.feed_retain_seconds, self._forget, feed)

    def _forget(self, feed: RunFeed) -> None:
        if self._feeds.get(feed.run_id) is feed:
            del self._feeds[feed.run_id]



def run_config(order: RunOrder) -> dict[str, Any]:
    """The config a run is started (or queued) with: the client's, with the thread, the run
    id, the multitask strategy, and the metadata the server records (assistant, graph, tenant).
    """
    config = dict(order.config)
    configurable = dict(config.get("configurable") or {})
    configurable["thread_id"] = order.thread_id
    config["configurable"] = configurable
    config["run_id"] = order.run_id
    config["multitask_strategy"] = order.multitask_strategy
    metadata = {**(config.get("metadata") or {}), **order.facts.metadata,
                "assistant_id": order.assistant.assistant_id,
                "graph_id": order.assistant.graph_id}
    if order.tenant is not None:
        metadata[TENANT_KEY] = order.tenant
    config["metadata"] = metadata
    return config



def _event(chunk: Any) -> tuple[str, Any]:
    """(SSE event name, payload) of a chunk shaped `(mode, payload)` or `(ns, mode, payload)`."""
    if len(chunk) == 3:
        ns, mode, payload = chunk
        return "|".join((mode, *ns)), payload
    mode, payload = chunk
    return mode, payload


__all__ = ["FEED_MODES", "LocalLauncher", "RunLauncher", "RunOrder", "run_config"]
