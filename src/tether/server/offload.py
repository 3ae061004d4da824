"""The server's blocking store calls, made off its event loop.

The store's writes that have no async twin (`put_thread`, `delete_thread`, `delete_run`) take the
store's write lock, which the store's writer thread holds while it commits a group of runs'
checkpoints, and wait on the disk. Made on the event loop, they would stall every request and
stream of the server for as long; `off_loop` runs them in a thread of their own instead, so
that only the request that needs the write waits for it.

One thread, not a pool: the writes queue for the store's one write lock anyway, and several
threads fighting over that lock and the GIL made each write slower than the thread hop it
replaces (measured: 200 concurrent runs over HTTP, ~20 % slower through asyncio's default
pool; as fast as writing on the loop through one thread).

Reads stay on the loop: they use the store's reading connection, which in WAL mode never waits
for a write (see `tether.checkpoint.sqlite.connection`), and a thread hop would cost more than
the read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_WRITES = ThreadPoolExecutor(1, thread_name_prefix="tether-server-writes")
"""The thread of the server's blocking store writes (started on first use; stateless, so
every app and loop of the process can share it)."""


async def off_loop(call: Callable[[], T]) -> T:
    """`call()`, run in the server's write thread while the event loop goes on serving.

    Cancellation:
        Deferred: the call (one store transaction) runs to its end in its thread, committed
        whole or not at all; a cancel of the caller is delivered at once and the outcome is
        dropped.
    """
    return await asyncio.get_running_loop().run_in_executor(_WRITES, call)


__all__ = ["off_loop"]
