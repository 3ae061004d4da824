"""The server's blocking store calls, made off its event loop.

The store's thread and run writes (`put_thread`, `delete_thread`, `delete_run`) take the store's
write lock, which the store's writer thread holds while it commits a group of runs' checkpoints,
and wait on the disk. Made on the event loop, they would stall every request and stream of the
server for as long. A store with async twins of them (`aput_thread`, `adelete_thread`,
`adelete_run`: SQLite's, through its writer thread, in the same group commits as the runs'
checkpoints) is asked through those; for any other, `off_loop` runs the sync call in a thread
of its own, so that only the request that needs the write waits for it.

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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from tether.checkpoint.base import CheckpointStore, ThreadRecord

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


async def put_thread(store: CheckpointStore, thread_id: str,
                     metadata: dict[str, Any] | None) -> ThreadRecord:
    """`store.put_thread(...)` without blocking the loop (its async twin, or `off_loop`).

    Cancellation:
        The write is whole or not made (the twin's and `off_loop`'s deferral).
    """
    twin = getattr(store, "aput_thread", None)
    if twin is not None:
        return await cast(Callable[..., Awaitable[ThreadRecord]], twin)(thread_id, metadata)
    return await off_loop(lambda: store.put_thread(thread_id, metadata))


async def delete_thread(store: CheckpointStore, thread_id: str) -> None:
    """`store.delete_thread(...)` without blocking the loop (its async twin, or `off_loop`).

    Cancellation:
        As `put_thread`.
    """
    twin = getattr(store, "adelete_thread", None)
    if twin is not None:
        await cast(Callable[[str], Awaitable[None]], twin)(thread_id)
        return
    await off_loop(lambda: store.delete_thread(thread_id))


async def delete_run(store: CheckpointStore, run_id: str) -> bool:
    """`store.delete_run(...)` without blocking the loop (its async twin, or `off_loop`).

    Cancellation:
        As `put_thread`.
    """
    twin = getattr(store, "adelete_run", None)
    if twin is not None:
        return await cast(Callable[[str], Awaitable[bool]], twin)(run_id)
    return await off_loop(lambda: store.delete_run(run_id))


__all__ = ["delete_run", "delete_thread", "off_loop", "put_thread"]
