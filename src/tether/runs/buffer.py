"""The chunk buffer between a run's driver and its consumer.

The driver never waits for the consumer: a run that nobody reads still runs. Chunks wait here
until they are read; a buffer with a `limit` drops its oldest chunks beyond it (and counts them).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol


class Shaper(Protocol):
    """What makes a chunk of (namespace, mode, payload) in the shape the consumer asked for
    (a run's `StreamFormat`)."""

    def shape(self, ns: tuple[str, ...], mode: str, payload: Any) -> Any:
        """The chunk."""


class ChunkBuffer:
    """A one-consumer queue of stream chunks that is closed when the run ends.

    Not thread-safe: only the loop that owns the run touches it.
    """

    __slots__ = ("_chunks", "_closed", "_shaper", "_waiter", "dropped", "limit")

    def __init__(self, limit: int | None = None, shaper: Shaper | None = None) -> None:
        self._chunks: deque[Any] | None = None  # made on the first chunk
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._shaper = shaper
        self.limit = limit
        self.dropped = 0

    @property
    def waiting(self) -> bool:
        """True while a consumer is blocked waiting for a chunk."""
        return self._waiter is not None and not self._waiter.done()

    def __call__(self, ns: tuple[str, ...], mode: str, payload: Any) -> None:
        """Add the chunk the buffer's shaper makes of (ns, mode, payload): the buffer is the
        sink of the run's emitter, which must not reach the run itself, or the two would make
        a reference cycle; a sink of its own would be objects more per run."""
        assert self._shaper is not None, "a buffer made without a shaper is no sink"
        self.put(self._shaper.shape(ns, mode, payload))

    def put(self, chunk: Any) -> None:
        """Add a chunk (ignored once closed)."""
        if self._closed:
            return
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = deque()
        chunks.append(chunk)
        if self.limit is not None and len(chunks) > self.limit:
            chunks.popleft()
            self.dropped += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """No more chunks will come; wake the consumer."""
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> tuple[bool, Any]:
        """The next chunk as (True, chunk), or (False, None) once closed and drained.

        Cancellation:
            Only the waiting stops; no chunk is lost.
        """
        while not self._chunks:
            if self._closed:
                return False, None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        assert self._chunks is not None
        return True, self._chunks.popleft()

    def drain(self) -> list[Any]:
        """Take every chunk buffered so far."""
        if not self._chunks:
            return []
        chunks = list(self._chunks)
        self._chunks.clear()
        return chunks

    @property
    def closed(self) -> bool:
        """True once the run has ended and no more chunks will come."""
        return self._closed
