"""`Worker`: claims queued runs from Postgres and drives them, until it is told to drain.

Loops share one event loop: claiming (woken by `NOTIFY tether_queue`, else every `poll`),
renewing leases (every `lease / 3`; each renewal also polls the held runs' cancel requests),
sweeping (ending runs nobody holds that were cancelled or are past their deadline), listening
(`LISTEN tether_cancel`), and, with a stream bus, listening to its cancel messages. A cancel
reaches a held run by whichever comes first: the bus, the notification, the renewal, or the
run's next step boundary. With a bus, each held run's stream and end are published on it
(`Relay`), and every run a sweep ends gets its end there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from tether.errors import StoreError
from tether.types import CancelReason
from tether.worker import frames
from tether.worker import job as jobs
from tether.worker.failures import FailureLog
from tether.worker.held import Held
from tether.worker.listener import Listener
from tether.worker.options import WorkerOptions
from tether.worker.relay import Relay

if TYPE_CHECKING:
    from tether.bus import StreamBus
    from tether.checkpoint.postgres.queue import Job
    from tether.checkpoint.postgres.store import PostgresSaver
    from tether.graph.compiled import CompiledStateGraph

logger = logging.getLogger("tether.worker")

SETTLE_TIMEOUT = 30.0
"""Seconds a shutdown waits, after acting on its runs, for them to settle."""

BUS_RETRY_FIRST, BUS_RETRY_MAX = 0.5, 10.0
"""Seconds before listening on the bus again after a failure, doubling up to the maximum."""


class Worker:
    """A worker process's engine: claims runs of `graphs` from `store`'s queue and drives them.

    Args:
        store: the Postgres store holding the queue (the graphs must be compiled onto it).
        graphs: graph name (as runs are queued under) → compiled graph.
        options: concurrency, leases, polling, shutdown behaviour.
    """

    def __init__(self, store: PostgresSaver, graphs: Mapping[str, CompiledStateGraph],
                 options: WorkerOptions | None = None, *, bus: StreamBus | None = None) -> None:
        if not graphs:
            raise ValueError("a worker needs at least one graph")
        self.store = store
        self.bus = bus
        self.graphs = dict(graphs)
        self.options = options or WorkerOptions()
        self.owner = self.options.name()
        # Invariant: _held has an entry for every run this worker has claimed and whose drive
        # task has not finished; only those runs' leases are renewed.
        self.held: dict[str, Held] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._drives: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._draining = asyncio.Event()
        self._forced = False
        self.failures = FailureLog(logger)
        self.listener: Listener | None = None
        if self.options.listen:
            self.listener = Listener(store.queue, f"tether-listen {self.owner}",
                                     on_cancel=self._cancelled, on_queue=self._wake.set,
                                     on_resync=self._resync)

    # -- lifetime ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Claim and drive runs until `drain()`; then finish the shutdown and return.

        Cancellation:
            Cancelling this task stops claiming and cancels the background loops; runs in
            flight are left to their leases (another worker resumes them). Use `drain()`
            for a graceful stop.
        """
        background = [self._spawn(self._every(self.options.renew_every, self._renew), "renew"),
                      self._spawn(self._every(self.options.sweep_every, self._sweep), "sweep")]
        if self.listener is not None:
            background.append(self._spawn(self.listener.run(), "listen"))
        if self.bus is not None:
            background.append(self._spawn(self._listen_bus(), "bus"))
        logger.info("worker %s ready: graphs %s, concurrency %d, lease %ss, listen %s",
                    self.owner, ", ".join(sorted(self.graphs)), self.options.concurrency,
                    self.options.lease, "on" if self.listener else "off")
        try:
            await self._claim_loop()
            await self._shutdown()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        logger.info("worker %s stopped", self.owner)

    def drain(self, *, force: bool = False) -> None:
        """Stop claiming and shut down gracefully (`force`: act on the runs at once, without
        waiting for a step boundary). Call it on the worker's loop (a signal handler)."""
        self._forced = self._forced or force
        self._draining.set()
        self._wake.set()

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        options = self.options
        names = sorted(self.graphs)
        while not self._draining.is_set():
            self._wake.clear()
            free = options.concurrency - len(self.held)
            if free > 0:
                # Each claim is its run's start too: one round trip before the first step.
                claimed = await self._guarded(self.store.queue.aclaim(
                    self.owner, names, options.lease, free, list(self.held), start=True), [])
                for found in claimed:
                    self._start(found)
                if claimed and len(claimed) == free:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), options.poll)

    def _start(self, claimed: Job) -> None:
        held = Held(claimed, self.store, self.options.lease, self.owner)
        self.held[claimed.run_id] = held
        logger.info("claimed run %s (graph %s, epoch %d%s)", claimed.run_id, claimed.graph,
                    claimed.epoch, ", resumed" if claimed.resumed else "")
        self._drives.add(self._spawn(self._drive(held), f"drive-{claimed.run_id}"))

    async def _drive(self, held: Held) -> None:
        # Only a worker holding a run publishes its stream, and the first claim makes epoch 1
        # (every claim and hand-back moves it on): then nothing is on the bus for it yet.
        relay = None if self.bus is None else Relay(self.bus, self.store.serde, held.run_id,
                                                     fresh=held.job.epoch == 1)
        try:
            await jobs.drive(held, self.graphs[held.job.graph], failures=self.failures,
                             start_attempts=self.options.start_attempts, relay=relay)
            if held.fate == "requeue":
                released = await self._guarded(self.store.queue.arelease(
                    held.run_id, held.job.epoch, self.owner, "shutdown"), False)
                logger.info("run %s handed back to the queue%s", held.run_id,
                            "" if released else " (its lease had lapsed already)")
        finally:
            self.held.pop(held.run_id, None)
            self._wake.set()

    # -- leases, cancels, sweeps --------------------------------------------------------------

    async def _renew(self) -> None:
        held = {r: h.job.epoch for r, h in list(self.held.items())
                if h.fate == "run" and h.driving}
        if not held:
            return
        asked = time.monotonic()
        answer = await self._guarded(self.store.queue.arenew(held, self.options.lease), None)
        if answer is None:
            return  # held runs stop themselves at a step boundary once their lease is over
        for run_id in held:
            entry = self.held.get(run_id)
            if entry is None or entry.fate != "run":
                continue
            if run_id not in answer:
                if not entry.ended:
                    entry.give_up("lost", "its lease was taken over (or it ended elsewhere)")
                continue
            entry.renewed_at = asked
            reason = answer[run_id]
            if reason is not None:
                entry.follow(reason)

    def _cancelled(self, run_id: str) -> None:
        entry = self.held.get(run_id)
        if entry is not None:
            self._spawn(entry.propagate(), f"cancel-{run_id}")

    def _resync(self) -> None:
        self._wake.set()
        self._spawn(self._renew(), "resync")

    async def _sweep(self) -> None:
        ended = await self._guarded(self.store.queue.asweep(self.owner), [])
        for info in ended:
            logger.info("swept run %s: %s", info.run_id, info.status.value)
            if self.bus is not None:
                await self._guarded_bus(self.bus.end(
                    info.run_id, frames.encode_end(info, self.store.serde)))

    # -- the bus ------------------------------------------------------------------------------

    async def _listen_bus(self) -> None:
        assert self.bus is not None
        delay = BUS_RETRY_FIRST
        while True:  # until it listens: cancels arrive by NOTIFY and polling meanwhile
            try:
                await self.bus.listen_cancels(self._bus_cancelled, on_resync=self._resync)
                return
            except Exception as exc:  # noqa: BLE001 - any bus error: logged, retried
                logger.warning("bus unavailable for cancels (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BUS_RETRY_MAX)

    def _bus_cancelled(self, run_id: str, data: bytes | None) -> None:
        entry = self.held.get(run_id)
        if entry is None:
            return
        reason = None
        if data:
            with contextlib.suppress(Exception):
                found = self.store.serde.loads(data)
                reason = found if isinstance(found, CancelReason) else None
        if reason is not None:
            entry.follow(reason)  # durable already: the request committed before it was sent
        else:
            self._spawn(entry.propagate(), f"cancel-{run_id}")

    async def _guarded_bus(self, call: Awaitable[Any]) -> None:
        try:
            await call
        except Exception as exc:  # noqa: BLE001 - the bus is a fast path: the row stays true
            logger.warning("bus unavailable: %s", exc)

    # -- shutting down ------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        mode = self.options.on_shutdown
        runs = list(self.held.values())
        if runs:
            logger.info("draining %d run(s): %s at the next step boundary (grace %ss)",
                        len(runs), "hand back" if mode == "requeue" else "cancel",
                        self.options.grace)
        for entry in runs:
            entry.draining = mode
        if not self._forced:
            await self._settle(self.options.grace)
        reason = CancelReason("shutdown", "the worker is shutting down", self.owner)
        for entry in list(self.held.values()):
            if entry.ended or entry.fate != "run":
                continue
            if mode == "requeue":
                entry.give_up("requeue", "the worker is shutting down: handed back to the queue")
            else:
                await entry.cancel(reason)
        await self._settle(SETTLE_TIMEOUT)

    async def _settle(self, timeout: float) -> None:  # noqa: ASYNC109
        drives = {t for t in self._drives if not t.done()}
        if drives:
            await asyncio.wait(drives, timeout=timeout)

    # -- plumbing -----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        # Tasks are kept here until done: the loop holds only weak references to them.
        task = asyncio.get_running_loop().create_task(coro, name=f"tether-worker-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._drives.discard)
        return task

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - logged; the next round tries again
                self.failures.log(f"worker {self.owner}: {step.__name__} failed", exc)

    async def _guarded(self, call: Awaitable[Any], fallback: Any) -> Any:
        """`await call`, or `fallback` when the database cannot be reached (logged)."""
        import psycopg

        try:
            return await call
        except (psycopg.OperationalError, StoreError) as exc:
            logger.warning("database unavailable: %s", str(exc).strip().splitlines()[0])
            return fallback


__all__ = ["Worker"]
