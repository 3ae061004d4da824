"""The worker's `LISTEN` connection: the fast path for cancels and new runs.

It is only ever a fast path. Every cancel is durable on its run's row first, and the worker also
polls (at every lease renewal) and checks at every superstep boundary; a lost connection is
reopened with backoff, and each reconnection triggers a catch-up (`on_resync`) for what was
sent while it was down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from tether.checkpoint.postgres.queue import CANCEL_CHANNEL, RunQueue

logger = logging.getLogger("tether.worker")

RETRY_FIRST, RETRY_MAX = 0.2, 5.0
"""Seconds before reconnecting after a failure, doubling up to the maximum."""


class Listener:
    """Listens for cancels and queue changes and hands them to the worker.

    Args:
        queue: the run queue (it opens the connection).
        name: the connection's `application_name` (tells it apart in `pg_stat_activity`).
        on_cancel: called with the id of a run whose cancel request committed.
        on_queue: called when a run was queued or handed back, or a run freed its thread
            for a run queued behind it.
        on_resync: called after each (re)connection, to catch up by polling.
    """

    def __init__(self, queue: RunQueue, name: str, *, on_cancel: Callable[[str], None],
                 on_queue: Callable[[], None], on_resync: Callable[[], None]) -> None:
        self._queue = queue
        self.name = name
        self._on_cancel, self._on_queue, self._on_resync = on_cancel, on_queue, on_resync
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting as needed.

        Cancellation:
            The way to stop it: the connection is closed.
        """
        delay = RETRY_FIRST
        while True:
            try:
                conn = await self._queue.alisten(self.name)
            except psycopg.Error as exc:
                logger.warning("cannot LISTEN (%s); retrying in %.1fs", _brief(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            try:
                await self._serve(conn)
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost (%s): cancels arrive by polling until "
                               "it is back", _brief(exc))
            finally:
                self.connected.clear()
                await conn.close()
            await asyncio.sleep(delay)

    async def _serve(self, conn: Any) -> None:
        self.connected.set()
        self._on_resync()
        async for note in conn.notifies():
            if note.channel == CANCEL_CHANNEL:
                self._on_cancel(note.payload)
            else:
                self._on_queue()


def _brief(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


__all__ = ["Listener"]
