"""Driving one claimed run through tether's ordinary runtime, adopting its queued record.

The run starts from its input, or, when an earlier worker had started it (a crash, a hand-back),
from its last checkpoint: the tasks that had finished in the interrupted step left their pending
writes there, so they are not run again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tether.errors import RunCancelled, StaleLeaseError, StoreError
from tether.types import RunStatus
from tether.worker.failures import FailureLog
from tether.worker.held import Held

if TYPE_CHECKING:
    from tether.checkpoint.postgres.queue import Job
    from tether.checkpoint.postgres.store import PostgresSaver
    from tether.graph.compiled import CompiledStateGraph
    from tether.runs.handle import Run
    from tether.worker.relay import Relay

logger = logging.getLogger("tether.worker")

MIN_TIMEOUT = 0.001
"""The timeout given to a run claimed just before its deadline."""


async def start_point(store: PostgresSaver, job: Job) -> tuple[Any, dict[str, Any]]:
    """(input, config) the run starts from in this worker.

    A resumed run continues from its last checkpoint with no input, unless that checkpoint is
    its input checkpoint (the crash came before its first step was taken: start again from the
    input). The deadline is the queued run's, counted in the database since it was queued.

    Cancellation:
        Safe: it only reads.
    """
    config = dict(job.config)
    configurable = dict(config.get("configurable") or {})
    configurable["thread_id"] = job.thread_id
    config.pop("run_id", None)
    # The queue already decided the run's turn on its thread, across processes.
    config["multitask_strategy"] = "enqueue"
    if job.remaining is not None:
        config["timeout"] = max(job.remaining, MIN_TIMEOUT)
    graph_input = job.input
    if job.resumed and job.checkpoint_id is not None:
        stored = await store.aget_checkpoint(job.thread_id, "", job.checkpoint_id)
        if stored is not None and stored.source != "input":
            graph_input = None
            configurable["checkpoint_id"] = job.checkpoint_id
    config["configurable"] = configurable
    return graph_input, config


async def drive(held: Held, graph: CompiledStateGraph, *, failures: FailureLog,
                start_attempts: int, relay: Relay | None = None) -> None:
    """Run a claimed job to its end here (whatever its `fate`); never raises but a cancel.
    With a `relay`, the run streams the modes its order asked for onto the bus (none when it
    named none: a run queued by code, not a server), then its run-ended signal.

    A run that fails before its first step (its config or context refused, its checkpoint
    unreadable...) goes back to the queue; at its `start_attempts`-th such failure it ends
    `error` with the reason, so it neither loops through the workers nor holds its thread.

    Cancellation:
        Cancelling the task that awaits this leaves the run going on its own; the worker
        cancels runs through `Held`, never by cancelling this task.
    """
    job, store = held.job, held.store
    store.bind_lease(job.run_id, job.epoch, job.thread_id)
    try:
        modes = list(job.options.get("stream_mode") or ()) if relay is not None else []
        try:
            held.run = await _start(held, graph, modes)
        except Exception as exc:  # noqa: BLE001 - recorded on the run, logged once
            await _not_started(held, exc, failures, start_attempts)
            return
        if relay is not None and modes:
            relay.start(held.run)
        await _settled(held)
        if relay is not None:
            ended_here = held.ended and held.fate in ("run", "cancel")
            await relay.finish(held.run.info if ended_here else None)
    finally:
        store.release_lease(job.run_id)


async def _start(held: Held, graph: CompiledStateGraph, modes: list[str]) -> Run:
    """Start the run, streaming `modes` (those its order asked for, when it is relayed)."""
    job, store = held.job, held.store
    if job.supersedes and not job.resumed:
        for prior in job.supersedes:  # multitask_strategy="rollback"
            await store.adelete_run_checkpoints(prior)
    graph_input, config = await start_point(store, job)
    options = job.options
    streaming: dict[str, Any] = {"stream_mode": modes,
                                 "subgraphs": bool(options.get("subgraphs"))} if modes else {}
    return graph.start_queued(
        job.run_id, graph_input, config, step_check=held.step_check, started=job.started,
        context=options.get("context"), interrupt_before=options.get("interrupt_before"),
        interrupt_after=options.get("interrupt_after"), **streaming)


async def _not_started(held: Held, exc: Exception, failures: FailureLog, attempts: int) -> None:
    import psycopg

    failures.log(f"run {held.run_id} could not be started", exc)
    if isinstance(exc, (psycopg.OperationalError, StoreError)):
        return  # the database, not the run: its lease lapses and it is claimed again
    try:
        ended = await held.store.queue.afail_start(
            held.run_id, held.job.epoch, held.owner, f"{type(exc).__name__}: {exc}",
            attempts=attempts)
    except (psycopg.OperationalError, StoreError) as error:
        logger.warning("run %s: its failure to start could not be recorded (%s); its lease "
                       "lapses instead", held.run_id, error)
        return
    if ended is not None:
        logger.warning("run %s ended: error (it failed to start %d times)", held.run_id,
                       attempts)


async def _settled(held: Held) -> None:
    run = held.run
    assert run is not None
    task = run.core.task
    if task is not None:
        # The driver task, not the run's published end: a driver whose last write failed
        # ends without having published one.
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: the outcome is reported below
    core, error = run.core, run.core.exception
    final = core.final
    if isinstance(error, StaleLeaseError):
        if held.fate == "run":
            held.fate = "lost"
            logger.warning("run %s: its lease was taken over; stopped here", held.run_id)
    elif final is None or not (final.terminal or final.status is RunStatus.INTERRUPTED):
        # Its end is not in the database: let the lease lapse, so that another worker resumes
        # the run from its last checkpoint (or the sweeper ends it, if a cancel is durable).
        if held.fate == "run":
            held.give_up("lost", f"its end could not be written ({type(error).__name__}: "
                                 f"{error})")
    elif isinstance(error, RunCancelled):
        logger.info("run %s ended: %s (%s)", held.run_id, final.status.value, error.reason.kind)
    elif error is not None:
        logger.info("run %s ended: error (%s: %s)", held.run_id, type(error).__name__, error)
    else:
        logger.info("run %s ended: %s", held.run_id, final.status.value)


__all__ = ["MIN_TIMEOUT", "drive", "start_point"]
