"""Event loops that a store call may block: those dedicated to one sync caller's call.

A store whose I/O blocks (SQLite) runs its async methods in a thread of its own, so that the
event loop they are called from keeps serving its other tasks while the disk works (DESIGN.md
§7: an async store call never blocks a shared loop, such as the server's). A loop that serves
nothing but one sync caller's call — tether's private loop for `graph.invoke` and `graph.stream`
from sync code (`runs/portal.py`), whose thread is that caller, blocked until the run returns —
has no other task to keep serving: there the hop to the thread and back costs two thread
wake-ups per call and buys nothing. Such loops are marked here, and the store runs its work
inline on them (as the sync API does).

The mark is held weakly: a closed, dropped loop leaves the set by itself.
"""

from __future__ import annotations

import asyncio
import weakref

_dedicated: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def dedicate(loop: asyncio.AbstractEventLoop) -> None:
    """Mark `loop` as one that serves a single sync caller's call and nothing else, so store
    calls made on it may block it. Only the loop's owner may say so (a server's or a user's
    loop must never be marked)."""
    _dedicated.add(loop)


def may_block(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether `loop` was marked by `dedicate`: a store call made on it may run inline."""
    return loop in _dedicated


__all__ = ["dedicate", "may_block"]
