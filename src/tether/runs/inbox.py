"""A run's cancel inbox: every cancel request reaches a run through it, whoever makes it (a
caller, a policy, a deadline, another process), and it keeps what the run's end needs to know of
the request: its durable reason, its instant, and whether it is still on its way to the store.

`CancelInbox` is the base of `RunCore` (`runs/core.py`), and the only writer of the fields it
declares. It reads the run's own fields that the core sets (its store, scope, journal, loop,
and whether its record exists), and publishes nothing itself: the run's end does
(`RunEnd.settle`).

Invariants:
- A cancel is recorded in the store before the run's last transaction, which the store
  decides races against. A request made on the run's own loop cancels the scope as it is
  handed to the store (`anticipate_cancel`); one made elsewhere, once it is durable.
- Every durable cancel reaches the run through `receive_cancel`, which sets `_requested_at`
  once: the instant of the request on this process's monotonic clock (for a request made
  elsewhere, now minus its age). `cancel_latency_ms` is counted from it, by one formula. The
  one exception is the request that stopped the run, when its end is handed to a store that
  commits in order before the request's answer (`_take_ahead`): its instant is the one at
  which it was handed over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from tether.cancel.scope import CancelScope
from tether.checkpoint.base import CheckpointStore
from tether.runs import batch, finalize
from tether.runs.buffer import ChunkBuffer
from tether.runs.ending import RUN_LOCK, RunEnd
from tether.runs.journal import Journal
from tether.types import CancelReason, RunEvent, RunInfo, RunStatus, utcnow


class CancelInbox(RunEnd):
    """The cancel requests of one run; see the module docstring."""

    __slots__ = ("_anticipated", "_anticipated_at", "_early", "_owed", "_requested_at")

    # The run's own fields, set by `RunCore`:
    run_id: str
    store: CheckpointStore
    scope: CancelScope
    journal: Journal
    aloop: asyncio.AbstractEventLoop | None
    _created: bool

    def __init__(self, info: RunInfo, buffer: ChunkBuffer) -> None:
        super().__init__(info, buffer)
        self._requested_at: float | None = None
        self._early: CancelReason | None = None
        # While a request the scope was cancelled for before it was durable
        # (`anticipate_cancel`) awaits the store's answer: its batch's future, done once the
        # store has answered the batch; None once this run's request is answered.
        self._anticipated: asyncio.Future[None] | None = None
        self._anticipated_at = 0.0  # its instant on this process's monotonic clock
        # True from an anticipated cancel until its `propagate` is recorded, after the request.
        self._owed = False

    async def request_cancel(self, reason: CancelReason, *, until_end: bool = False) -> RunInfo:
        """Record a cancel durably and cancel the scope. Idempotent; returns the receipt.

        Requests made on this loop in the same iteration, for runs of the same store, are
        recorded together (`runs/batch.py`): a crowd of cancels is one store transaction.

        Args:
            until_end: return only once the run has ended (its record final), as `wait()`
                after the request would, but with one wake-up of the caller instead of two.
                Only on the run's own loop; elsewhere the receipt comes back at once.

        Cancellation:
            The request is recorded and propagated by the batch's own task: a caller
            cancelled while it waits leaves the cancel to proceed. Safe to retry.
        """
        return await self.ask_cancel(reason, until_end=until_end)

    def ask_cancel(self, reason: CancelReason, *,
                   until_end: bool = False) -> asyncio.Future[RunInfo]:
        """`request_cancel` without its coroutine: the request is queued now and the future
        gets what `request_cancel` returns. What `Run.cancel` awaits: a crowd of cancels
        gathered is a task each, and a coroutine less in each is a frame less to make, resume
        and unwind per run. Call it on a running loop.
        """
        loop = asyncio.get_running_loop()
        receipt = self._not_requestable(reason)
        if receipt is None:
            return batch.request(self, reason, until_end and loop is self.aloop, loop)
        future: asyncio.Future[RunInfo] = loop.create_future()
        future.set_result(receipt)
        return future

    async def _request_alone(self, reason: CancelReason) -> RunInfo:
        # The run's own task asking (a policy, its deadline, its loop shutting down): no batch
        # to wait for, and no wait inside its own scope.
        receipt = self._not_requestable(reason)
        if receipt is not None:
            return receipt
        info, first = await self.store.arequest_cancel(self.run_id, reason)
        return self.receive_cancel(info, first)

    def request_cancel_sync(self, reason: CancelReason) -> RunInfo:
        """`request_cancel` from any thread, without an event loop."""
        receipt = self._not_requestable(reason)
        if receipt is not None:
            return receipt
        info, first = self.store.request_cancel(self.run_id, reason)
        return self.receive_cancel(info, first)

    def follow_cancel(self, reason: CancelReason) -> RunInfo:
        """Propagate a cancel already durable in the store (recorded by another process and
        seen here): the scope is cancelled with no second request."""
        if self.final is not None:
            return self.final
        info = dataclasses.replace(self.info, status=RunStatus.CANCELLING, reason=reason)
        return self.receive_cancel(info, False)

    def _not_requestable(self, reason: CancelReason) -> RunInfo | None:
        if self.final is not None:
            return self.final
        if not self._created:
            with RUN_LOCK:  # against `create_record` flipping `_created` (another thread's call)
                if not self._created:
                    # No record yet: keep the request; the driver applies it before anything
                    # else (it reads it only after the record exists).
                    self._early = self._early or reason
                    return self.info
        return None

    def receive_cancel(self, info: RunInfo, first: bool) -> RunInfo:
        """A durable cancel reached the run (`info`, the store's answer): `first` when this
        process's request recorded it. Returns the receipt."""
        ended = info if info.terminal else self.final
        if ended is not None:
            # The run ended meanwhile (the store's answer was on its way, or the run's end saw
            # the request first): its end is the receipt, and its record stays final.
            self._owed = False
            self._answered()
            return ended
        reason = info.reason
        assert reason is not None
        with RUN_LOCK:  # one lock for every run: nothing that can call out is done under it
            announce = first and self._requested_at is None
            if self._requested_at is None:
                now = time.monotonic()
                if not first:  # made elsewhere: count from the request, by its age
                    now -= max((utcnow() - reason.requested_at).total_seconds(), 0.0)
                self._requested_at = now
        if announce and self.journal.announcing:
            self.journal.announce(RunEvent("request", reason.requested_at, None,
                                           reason.to_dict()))
        self.info = info
        # An anticipated request (`_owed`) cancelled the scope already: no second call.
        if self._owed or self.scope.cancel(reason):
            self._owed = False
            self.journal.record("propagate", detail={"kind": reason.kind})
        self._answered()
        return info

    def anticipate_cancel(self, reason: CancelReason, loop: asyncio.AbstractEventLoop,
                          answered: asyncio.Future[None]) -> None:
        """Cancel the scope for a request just handed to the store, if `loop` is the run's: the
        run stops while the store records it. Until the request is answered, the run's last
        transaction waits for `answered` (its batch's: done once the store has answered the
        whole batch; `_settle_request`), and `propagate` is recorded with it
        (`receive_cancel`)."""
        if loop is self.aloop and self.final is None and self._anticipated is None \
                and self.info.reason is None and not self.scope.cancel_called:
            self._anticipated = answered
            self._anticipated_at = time.monotonic()
            self._owed = self.scope.cancel(reason)

    def cancel_unrecorded(self) -> None:
        """The store failed to record a request `anticipate_cancel` acted on."""
        self._answered()

    def _answered(self) -> None:
        # Nothing left to wait for (an assignment, safe from any thread); a request that the
        # store failed to record is still `_owed`.
        self._anticipated = None

    def _must_settle(self, stopped: bool) -> bool:
        # Whether `_settle_request` has anything to do: most requests are answered before the
        # run's end, and a coroutine to await nothing is a frame per cancel for nothing.
        anticipated = self._anticipated
        return (anticipated is not None and not anticipated.done()) or (
            stopped and self._owed and self.final is None)

    async def _settle_request(self, stopped: bool) -> None:
        # Before the last transaction: the anticipated request is answered; one the store
        # failed to record is recorded now if the run `stopped` for it (not if it ended first).
        # (`_owed` is only ever set by an anticipated request.)
        anticipated = self._anticipated
        if anticipated is not None:
            await asyncio.shield(anticipated)  # the batch's: this run's end may be cancelled
        if stopped and self._owed and self.final is None:
            await self._request_alone(self.scope.reason or CancelReason("user"))

    @property
    def early_cancel(self) -> CancelReason | None:
        """A cancel that arrived before the record existed."""
        return self._early

    async def stop(self, reason: CancelReason) -> None:
        """Stop the run for a reason the run's own task found (a policy, its recursion limit, a
        node's timeout, a cancel kept from before it started, its loop shutting down): recorded
        durably at once (no batch), unless the run is being cancelled already.

        Cancellation:
            As `request_cancel`.
        """
        if self.final is None and not self.scope.cancel_called:
            await self._request_alone(reason)

    def stop_sync(self, reason: CancelReason) -> None:
        """`stop` from code that cannot await (a budget crossed by a node's worker thread)."""
        if self.final is None and not self.scope.cancel_called:
            self.request_cancel_sync(reason)

    async def _durable_reason(self) -> CancelReason:
        """The run's durable cancel, once its request is answered (asked of the store only
        when no answer reached the run)."""
        if self._must_settle(stopped=True):
            await self._settle_request(stopped=True)
        # A cancel that reached the run durably (`receive_cancel`) left the durable reason in
        # `info`: reading it back would be a round trip more on every cancel.
        known = self.info.reason if self._requested_at is not None else None
        reason = known or finalize.cancel_reason(await self.store.aget_run(self.run_id),
                                                 self.scope.reason)
        if self._requested_at is None:
            # The request came through the store (another process), unseen so far.
            self.follow_cancel(reason)
        return reason

    def _ahead_of_answer(self) -> CancelReason | None:
        """The reason of the request that stopped the run, when its end may go to the store
        right behind it, before its answer: the request was this loop's (`anticipate_cancel`),
        is still unanswered, and the store commits in order (`commits_in_order`)."""
        anticipated = self._anticipated
        if (anticipated is None or anticipated.done() or not self._owed
                or not self.store.commits_in_order):
            return None
        return self.scope.reason

    def _take_ahead(self, reason: CancelReason) -> CancelReason:
        """What `receive_cancel` does with a request's answer, done ahead of it for the request
        that stopped the run: its instant, its announcement and `propagate`.

        In the rare race with another process's request recorded first, the `lifecycle`
        stream has then announced this process's request and `propagate` names its kind; the
        run still ends with the stored reason (its end is refused, then made with that one)."""
        self._requested_at = self._anticipated_at
        if self.journal.announcing:
            self.journal.announce(RunEvent("request", reason.requested_at, None,
                                           reason.to_dict()))
        self._owed = False  # (the answer then records no second `propagate`)
        self.journal.record("propagate", detail={"kind": reason.kind})
        return reason

    async def _after_ahead(self, reason: CancelReason) -> CancelReason:
        """The durable reason, once the store refused an end sent ahead of its request's
        answer (another request was durable first, or the request failed: it is made again)."""
        await self._settle_request(stopped=False)  # the answer, whatever it was
        if self.info.reason is None and self.final is None:
            await self._request_alone(reason)
        return self.info.reason or reason


__all__ = ["CancelInbox"]
