"""`Listener`: the one `LISTEN` connection of a process, for every channel its bus watches.

Channels come and go as runs gain their first subscriber and lose their last. psycopg reads
notifications in a generator that holds the connection, so a change stops the reading task
(cancelled while it waits on the socket: nothing is lost, a notification that arrives while
the statements run is kept by psycopg for the next read), runs `LISTEN`/`UNLISTEN`, and reads
again. A lost connection is made again with backoff; each new connection is followed by a
resync, since what was sent meanwhile was not heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger("tether.bus")

RETRY_FIRST, RETRY_MAX = 0.1, 5.0
"""Seconds before reconnecting after a failure, doubling up to the maximum."""


class Listener:
    """Listens on the channels asked for, on one connection.

    Args:
        connect: opens a new connection (autocommit).
        on_notify: called with (channel, payload) for each notification.
        on_resync: called after a connection is made again (not after the first one).
    """

    def __init__(self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]], *,
                 on_notify: Callable[[str, str], None],
                 on_resync: Callable[[], None]) -> None:
        self._connect = connect
        self._on_notify = on_notify
        self._on_resync = on_resync
        # Invariants: _active is what the current connection listens on; a channel in
        # _wanted but not in _active is listened on at the next change; every future in
        # _waiting is resolved once its channel is active, or when the connection is lost
        # (its caller then reads the store, and the resync after reconnecting covers it).
        self._wanted: set[str] = set()
        self._active: set[str] = set()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def listen(self, channel: str) -> None:
        """Listen on `channel`; return once notifications sent from now on are heard (or the
        connection is down: see the class invariants).

        Cancellation:
            Safe: the channel stays asked for.
        """
        self._wanted.add(channel)
        if channel in self._active:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(channel, []).append(future)
        self._changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="tether-bus-listen")
        await future

    def unlisten(self, channel: str) -> None:
        """Stop listening on `channel` (at the next change)."""
        self._wanted.discard(channel)
        self._changed.set()

    async def aclose(self) -> None:
        """Close the connection.

        Cancellation:
            Safe to retry.
        """
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
            self._task = None
        self._release()

    async def _run(self) -> None:
        delay, connected_before = RETRY_FIRST, False
        while True:
            try:
                conn = await self._connect()
            except psycopg.Error as exc:
                logger.warning("bus: cannot LISTEN (%s); retrying in %.1fs", _brief(exc), delay)
                self._release()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            try:
                await self._serve(conn, resync=connected_before)
            except psycopg.Error as exc:
                logger.warning("bus: LISTEN connection lost (%s); reconnecting", _brief(exc))
            finally:
                self._active.clear()
                self._release()
                with contextlib.suppress(psycopg.Error):
                    await conn.close()
            connected_before = True
            await asyncio.sleep(delay)

    async def _serve(self, conn: psycopg.AsyncConnection[Any], *, resync: bool) -> None:
        await self._apply(conn)
        if resync:
            self._on_resync()
        while True:
            # Cleared before applying: a change asked for while `_apply` runs is seen.
            self._changed.clear()
            if self._wanted != self._active:
                await self._apply(conn)
                continue
            reading = asyncio.ensure_future(self._read(conn))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({reading, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                if not reading.done():
                    reading.cancel()
                    # Not `await reading`: its CancelledError would hide a cancel of this task.
                    await asyncio.wait({reading})
            if not reading.cancelled():
                reading.result()  # the connection failed: raise its error

    async def _apply(self, conn: psycopg.AsyncConnection[Any]) -> None:
        adding, removing = self._wanted - self._active, self._active - self._wanted
        statements = [sql.SQL("LISTEN {}").format(sql.Identifier(c)) for c in sorted(adding)]
        statements += [sql.SQL("UNLISTEN {}").format(sql.Identifier(c))
                       for c in sorted(removing)]
        if statements:
            # Without parameters, psycopg sends them as one simple query: one round trip.
            await conn.execute(sql.SQL("; ").join(statements))
        self._active = (self._active | adding) - removing
        for channel in adding:
            for future in self._waiting.pop(channel, ()):
                if not future.done():
                    future.set_result(None)

    async def _read(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for note in conn.notifies():
            self._on_notify(note.channel, note.payload)

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)


def _brief(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


__all__ = ["Listener"]
