"""The store's writer thread: the async API's SQLite work, off the event loop.

A SQLite call blocks its thread for as long as the disk takes (an `fsync` with
`synchronous="full"`, a busy wait on another process's write lock, a slow disk). Run on the event
loop, that stalls every request and stream the loop serves. So the async methods of `SqliteSaver`
hand their work to one thread per store, through a queue, and await its outcome.

What the thread takes from the queue at once is one *group*: consecutive transactions are
committed together (`Connection.run_group`: one `BEGIN IMMEDIATE ... COMMIT` for all of them,
a savepoint each, so one failing rolls back only itself), which is how many runs checkpointing at
once pay for one commit instead of one each. Reads and compound calls run alone, in queue order.
The thread uses the store's one connection under its lock, so the sync API, which other threads
call directly, is unchanged, and durability too: a call's future is resolved only after its
transaction has committed.

The thread starts on first use and ends after `IDLE_EXIT` seconds without work. A loop that
serves one sync caller's call only (`tether.checkpoint.loops`: tether's private loop of a sync
`invoke`) has nobody else to keep serving: calls made on it run inline, under the same lock,
sparing the two thread wake-ups of the hand-off that would otherwise cost a checkpoint per step
more than the SQLite work itself.

The store's async reads have a second thread of this kind (`role="reader"`, `reads.py`), which
runs only calls that read on the reading connection: a read never queues behind writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tether.cancel.whole import wait_whole
from tether.checkpoint.loops import may_block
from tether.checkpoint.query import Op
from tether.checkpoint.sqlite.connection import Connection, Outcome

T = TypeVar("T")

IDLE_EXIT = 5.0
"""Seconds without work after which the writer thread ends."""
GROUP_LIMIT = 256
"""Jobs taken at once: a group commits for all of them, and the callers of the first ones
should not wait for a thousand others to be written before they hear back."""


@dataclass(slots=True)
class _Job:
    """One call from the loop: a transaction (`op`) to group, or a call (`call`) to run alone."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    op: Callable[[], Op[Any]] | None = None
    after: Callable[[Any], None] | None = None
    call: Callable[[], Any] | None = None


class Writer:
    """One thread running a store's async work on its connection.

    Args:
        db: the store's connection.
        role: the thread's name (`writer`; `reader` for the store's reads, see `reads.py`).
    """

    def __init__(self, db: Connection, role: str = "writer") -> None:
        self._db = db
        self._role = role
        # Invariant: a job put in _jobs (under _lock, while not closed) is taken by _thread,
        # which is alive or about to start; _thread exits only after finding _jobs empty under
        # _lock, or on the sentinel `close` puts last.
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def transaction(self, op: Callable[[], Op[T]],
                          after: Callable[[T], None] | None = None) -> T:
        """Run the operation `op()` makes in a transaction of the writer thread (perhaps one
        shared with other callers' transactions), then `after(result)` in that thread once it
        has committed.

        Raises:
            What the operation raises (nothing of it is then stored), or `StoreError`.

        Cancellation:
            Deferred (`wait_whole`): once handed over, the transaction commits or fails whole
            and the call returns its outcome; a cancel meanwhile is delivered at the caller's
            next await.
        """
        return await self._submit(op=op, after=after)  # type: ignore[no-any-return]

    async def transactions(self, ops: Sequence[Callable[[], Op[Any]]]) -> list[Any]:
        """Run each operation as `transaction` would, all handed over at once (queued together:
        one group commit, each in a savepoint of its own); each one's result, or the exception
        it raised, in order.

        One wait for them all, and no task per operation: what gathering `transaction` calls
        would cost (a task each, started at the loop's next turn, before the first reaches the
        thread).

        Raises:
            A `BaseException` that is not an `Exception` (the thread failed), as `transaction`.

        Cancellation:
            Deferred, as `transaction`: each operation commits or fails whole.
        """
        loop = asyncio.get_running_loop()
        if may_block(loop) or not ops:
            return [_answer(_run(self._db, op=op)) for op in ops]
        jobs = [_Job(loop, loop.create_future(), op=op) for op in ops]
        if not self._put(jobs):
            return [_answer(self._run_alone(job)) for job in jobs]
        with contextlib.suppress(Exception):  # each job's own outcome is read below
            await wait_whole(jobs[0].future if len(jobs) == 1 else
                             asyncio.gather(*(job.future for job in jobs),
                                            return_exceptions=True))
        return [_answer(_outcome_of(job.future)) for job in jobs]

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn()` (a sync store method) in the writer thread, alone.

        Raises:
            What `fn` raises.

        Cancellation:
            Deferred, as `transaction`.
        """
        return await self._submit(call=fn)  # type: ignore[no-any-return]

    async def read(self, fn: Callable[[], T]) -> T:
        """Run `fn()` (a sync read) in the thread, alone, as `call` does.

        Raises:
            What `fn` raises.

        Cancellation:
            Immediate: a read changes nothing, so a cancelled one is not waited for (its
            answer, when the thread gets to it, is dropped).
        """
        return await self._submit(whole=False, call=fn)  # type: ignore[no-any-return]

    def close(self, timeout: float = 5.0) -> None:
        """Let the thread finish the jobs it has, then end it. Later calls run inline."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._jobs.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    async def _submit(self, whole: bool = True, **work: Any) -> Any:
        loop = asyncio.get_running_loop()
        if may_block(loop):
            # Nothing else runs on this loop: inline, in the caller's thread (every call made
            # on it is, so none of its earlier calls waits in the queue).
            return _unwrap(_run(self._db, **work))
        job = _Job(loop, loop.create_future(), **work)
        if self._put([job]):
            return await (wait_whole(job.future) if whole else job.future)
        # Closed: run inline, as before there was a thread (the connection says it is closed).
        return _unwrap(self._run_alone(job))

    def _put(self, jobs: list[_Job]) -> bool:
        """Queue `jobs` for the thread (starting it if needed); False, queuing nothing, once
        closed."""
        with self._lock:
            if self._closed:
                return False
            for job in jobs:
                self._jobs.put(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                name=f"tether-sqlite-{self._role} {self._db.path}")
                self._thread.start()
        return True

    def _serve(self) -> None:
        while (jobs := self._take()) is not None:
            try:
                _settle(self._work(jobs))
            except BaseException as exc:
                _settle([(job, (False, exc)) for job in jobs])
                with self._lock:  # no caller may wait for ever: later calls run inline
                    self._thread = None
                    self._closed = True
                    _settle([(job, (False, exc)) for job in self._drain()])
                raise

    def _take(self) -> list[_Job] | None:
        """The jobs queued, waiting for the first; None when the thread should end."""
        if self._closed and self._jobs.empty():
            return None  # closed, and its sentinel was drained with the last jobs
        try:
            first = self._jobs.get(timeout=IDLE_EXIT)
        except queue.Empty:
            with self._lock:
                if self._jobs.empty():
                    self._thread = None
                    return None
            first = self._jobs.get()
        if first is None:
            return None
        return [first, *self._drain(GROUP_LIMIT - 1)]

    def _drain(self, limit: int | None = None) -> list[_Job]:
        """The jobs queued now, up to `limit` (after a sentinel there are none)."""
        jobs: list[_Job] = []
        queued = self._jobs
        # This thread is the queue's only consumer: what `empty()` says is there stays there.
        while not queued.empty() and (limit is None or len(jobs) < limit):
            job = queued.get_nowait()
            if job is not None:
                jobs.append(job)
        return jobs

    def _work(self, jobs: list[_Job]) -> list[tuple[_Job, Outcome]]:
        """Run the jobs in order: each run of consecutive transactions as one group."""
        settled: list[tuple[_Job, Outcome]] = []
        i = 0
        while i < len(jobs):
            if jobs[i].op is None:
                settled.append((jobs[i], self._run_alone(jobs[i])))
                i += 1
                continue
            end = i + 1
            while end < len(jobs) and jobs[end].op is not None:
                end += 1
            group = jobs[i:end]
            outcomes = self._db.run_group([job.op for job in group if job.op is not None])
            settled.extend((job, _after(job, outcome))
                           for job, outcome in zip(group, outcomes, strict=True))
            i = end
        return settled

    def _run_alone(self, job: _Job) -> Outcome:
        return _run(self._db, op=job.op, after=job.after, call=job.call)


def _run(db: Connection, op: Callable[[], Op[Any]] | None = None,
         after: Callable[[Any], None] | None = None,
         call: Callable[[], Any] | None = None) -> Outcome:
    """One job's work alone, in the calling thread: `op`'s transaction then `after`, or `call`."""
    if op is not None:
        return _then(after, db.run_group([op])[0])
    assert call is not None
    try:
        return True, call()
    except Exception as exc:  # noqa: BLE001 - handed to the caller
        return False, exc


def _answer(outcome: Outcome) -> Any:
    """An outcome as `transactions` answers it: the result, or an `Exception` as a value."""
    ok, value = outcome
    if ok or isinstance(value, Exception):
        return value
    raise value


def _outcome_of(future: asyncio.Future[Any]) -> Outcome:
    failure = future.exception()
    return (True, future.result()) if failure is None else (False, failure)


def _unwrap(outcome: Outcome) -> Any:
    ok, value = outcome
    if ok:
        return value
    raise value


def _after(job: _Job, outcome: Outcome) -> Outcome:
    return _then(job.after, outcome)


def _then(after: Callable[[Any], None] | None, outcome: Outcome) -> Outcome:
    ok, value = outcome
    if ok and after is not None:
        try:
            after(value)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            return False, exc
    return outcome


def _settle(settled: list[tuple[_Job, Outcome]]) -> None:
    """Resolve the jobs' futures: one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Outcome]]] = {}
    for job, outcome in settled:
        by_loop.setdefault(job.loop, []).append((job, outcome))
    for loop, done in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, done)


def _resolve(done: list[tuple[_Job, Outcome]]) -> None:
    for job, (ok, value) in done:
        if job.future.done():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


__all__ = ["IDLE_EXIT", "Writer"]
