"""A thread's checkpoints, newest first, read a page at a time: the async history of a store
whose reads do I/O (each page one read off the caller's loop), so a caller that stops early
(a run's own steps, a page of history) reads no further than it went."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from tether.checkpoint.base import StoredCheckpoint

PAGE = 64
"""Checkpoints read at a time."""

FetchPage = Callable[[str | None, int], Awaitable[list[StoredCheckpoint]]]
"""`fetch(before, count)`: up to `count` checkpoints older than `before` (None: the newest),
newest first."""


async def apages(fetch: FetchPage, before: str | None,
                 limit: int | None) -> AsyncIterator[StoredCheckpoint]:
    """Checkpoints newest first, `PAGE` at a time by `fetch`, at most `limit` of them.

    Cancellation:
        Safe: it only reads; a page cancelled in flight is simply not yielded.
    """
    left = limit
    while left is None or left > 0:
        count = PAGE if left is None else min(PAGE, left)
        batch = await fetch(before, count)
        for stored in batch:
            yield stored
        if len(batch) < count:
            return
        before = batch[-1].id
        if left is not None:
            left -= len(batch)


__all__ = ["PAGE", "FetchPage", "apages"]
