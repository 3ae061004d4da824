"""One run a worker holds: its claim, its handle once started, and how it ends in this worker.

A held run ends here in one of four ways (`fate`): it runs to its own end (`run`); it is handed
back to the queue at a step boundary during a shutdown (`requeue`); it is cancelled with kind
`shutdown` (`cancel`); or its lease was lost (`lost`: another worker resumes it). In the last two
of those where the run stops here without ending, the store first refuses every further write
for it (`Leases.revoke`), so nothing this worker still does for the run can reach the database;
only then is its cancel scope cancelled, locally, without a durable request.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Literal

from tether.runs import remote
from tether.types import CancelReason
from tether.worker.options import OnShutdown

if TYPE_CHECKING:
    from tether.checkpoint.postgres.queue import Job
    from tether.checkpoint.postgres.store import PostgresSaver
    from tether.runs.handle import Run

logger = logging.getLogger("tether.worker")

Fate = Literal["run", "requeue", "cancel", "lost"]


class Held:
    """A claimed run in this worker.

    Args:
        job: the claim.
        store: the worker's store (bound to the run's lease).
        lease: seconds the lease lasts without renewal.
        owner: the worker's name.
    """

    def __init__(self, job: Job, store: PostgresSaver, lease: float, owner: str) -> None:
        self.job = job
        self.store = store
        self.lease = lease
        self.owner = owner
        self.run: Run | None = None
        self.fate: Fate = "run"
        # Invariant: renewed_at is the monotonic time of the last renewal the database
        # confirmed (or of the claim); past it + lease, another worker may hold the run.
        self.renewed_at = time.monotonic()
        self.draining: OnShutdown | None = None

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.job.run_id

    @property
    def ended(self) -> bool:
        """True once the run has ended here (or was never started)."""
        return self.run is not None and self.run.core.final is not None

    def step_check(self) -> CancelReason | None:
        """Asked by the run's loop before each superstep: the lease, a drain, a durable cancel.

        Runs on the run's event loop; only the `cancel` drain makes a (sync) database call, the
        durable request of the shutdown.
        """
        if time.monotonic() - self.renewed_at > self.lease:
            return self.give_up("lost", f"lease not renewed for over {self.lease}s")
        if self.draining == "requeue":
            return self.give_up("requeue", "the worker is shutting down: handed back to the queue")
        if self.draining == "cancel":
            self.fate = "cancel"
            return CancelReason("shutdown", "the worker is shutting down", self.owner)
        noted = self.store.cancel_noted(self.run_id)
        if noted is not None:
            # Cancelled here first, so the loop's stop makes no second request.
            self.follow(noted)
        return noted

    def give_up(self, fate: Fate, why: str) -> CancelReason:
        """Stop the run here without ending it: its writes refused first, then its scope
        cancelled (no durable request: the run goes on elsewhere)."""
        self.fate = fate
        self.store.leases.revoke(self.run_id)
        reason = CancelReason("shutdown", why, self.owner)
        if self.run is not None and self.run.core.final is None:
            self.run.core.scope.cancel(reason)
        if fate == "lost":
            logger.warning("run %s: %s; stopped here, another worker resumes it", self.run_id, why)
        return reason

    async def propagate(self, reason: CancelReason | None = None) -> None:
        """Carry a durable cancel to the run: seen by `NOTIFY` (`reason` None: read it) or by
        a renewal.

        Cancellation:
            The request is durable already; if this is interrupted, the run's next step boundary
            or the next renewal carries it again.
        """
        if reason is None:
            info = await self.store.aget_run(self.run_id)
            reason = info.reason if info is not None else None
        if reason is not None:
            self.follow(reason)

    def follow(self, reason: CancelReason) -> bool:
        """Hand a request that is durable to the run (no second request; its latency counts
        from the request); True if the run is still here to be cancelled."""
        run = self.run
        if run is None or run.core.final is not None or self.fate != "run":
            return False
        remote.follow(run.core, reason)
        return True

    async def cancel(self, reason: CancelReason) -> None:
        """Cancel the run durably, through its own path (a shutdown with `on_shutdown=cancel`).

        Cancellation:
            The request is durable before the scope is cancelled; safe to retry.
        """
        self.fate = "cancel"
        if self.run is not None and self.run.core.final is None:
            await self.run.core.request_cancel(reason)


__all__ = ["Fate", "Held"]
