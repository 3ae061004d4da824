"""How a worker runs: concurrency, leases, polling, and what a graceful shutdown does."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Literal

OnShutdown = Literal["requeue", "cancel"]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """A worker's settings.

    Attributes:
        concurrency: runs driven at once.
        lease: seconds a claim lasts without renewal; renewed every `lease / 3`. A worker that
            dies loses its runs after at most this long, then another worker resumes them.
        poll: seconds between claims when no notification wakes the worker.
        listen: `LISTEN` for cancels and new runs (off: cancels arrive by polling, at every
            lease renewal and every superstep boundary).
        sweep_every: seconds between sweeps (ending runs nobody holds that were cancelled or
            are past their deadline).
        on_shutdown: on SIGTERM, what happens to the runs in flight once they reach a step
            boundary: handed back to the queue (`requeue`), or cancelled (kind `shutdown`).
        grace: seconds a shutdown waits for runs to reach a step boundary before acting on
            them where they are.
        owner: the worker's name in leases and logs (default: host, pid and a random tag).
        start_attempts: times a run may fail before its first step (a config or context its
            graph refuses) before it ends `error` instead of going back to the queue.
    """

    concurrency: int = 4
    lease: float = 30.0
    poll: float = 1.0
    listen: bool = True
    sweep_every: float = 2.0
    on_shutdown: OnShutdown = "requeue"
    grace: float = 30.0
    owner: str | None = None
    start_attempts: int = 3

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.start_attempts < 1:
            raise ValueError("concurrency and start_attempts must be at least 1")
        if self.lease <= 0 or self.poll <= 0 or self.sweep_every <= 0 or self.grace < 0:
            raise ValueError("lease, poll and sweep_every must be positive, grace not negative")
        if self.on_shutdown not in ("requeue", "cancel"):
            raise ValueError("on_shutdown must be 'requeue' or 'cancel'")

    @property
    def renew_every(self) -> float:
        """Seconds between lease renewals (a third of the lease: two may fail in a row)."""
        return self.lease / 3

    def name(self) -> str:
        """The worker's owner name."""
        return self.owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


__all__ = ["OnShutdown", "WorkerOptions"]
