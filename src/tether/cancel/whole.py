"""Waiting for work that runs elsewhere (a thread) as if it ran inline: a cancel that arrives
meanwhile waits for the work to end and is delivered at the caller's next await.

Code that used to call a short blocking function from the event loop had no await point in it,
so a cancel could never land in the middle: it landed at the next await, after the call had
returned and its caller had recorded the result. `wait_whole` keeps that contract for work moved
to another thread, so moving a blocking call off the loop changes no one's cancel semantics.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from tether.cancel.scope import anyio_scope

T = TypeVar("T")


async def wait_whole(future: asyncio.Future[T]) -> T:
    """The result of `future` (completed by another thread), awaited without being torn.

    Args:
        future: a future of the running loop that something else completes; it is never
            cancelled here.

    Raises:
        Whatever `future` holds.

    Cancellation:
        Deferred, never lost: a cancel arriving while `future` is pending is held until it is
        done; the call then returns its result normally and the cancel is delivered at the
        caller's next await (tether's scopes re-deliver theirs by themselves; a plain
        `Task.cancel()` is re-armed).
    """
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError as exc:
        if future.cancelled():
            raise
        caught = exc
    # A cancel arrived while the work ran: wait for its end, shielded from tether's scopes,
    # catching plain cancels, then hand the cancel back to the caller's next await.
    with anyio_scope(shield=True):
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                if future.cancelled():
                    raise
    task = asyncio.current_task()
    if task is not None and not _from_scope(caught):
        # A plain `Task.cancel()` is delivered once: arm it again, counted once. A scope's
        # cancel is level-triggered and needs nothing: anyio delivers it at the next await.
        task.uncancel()
        task.cancel(*caught.args[:1])
    return future.result()


def _from_scope(exc: asyncio.CancelledError) -> bool:
    """Whether `exc` is the delivery of an anyio cancel scope's cancel (tether's scopes are anyio
    ones), recognised by the message anyio gives it."""
    return bool(exc.args) and isinstance(exc.args[0], str) and exc.args[0].startswith(
        _ANYIO_MESSAGE)


_ANYIO_MESSAGE = "Cancelled via cancel scope "
"""How anyio's asyncio backend begins the message of the cancels it delivers."""


__all__ = ["wait_whole"]
