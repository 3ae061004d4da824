"""Process isolation (anyio's name: work handed *to a process*): a sync node in a child process,
the guaranteed stop for code that cannot be changed (a blocking SDK call, a CPU loop).

The ladder on cancel: a first SIGTERM sets the node's cancel flag (`tether.cancelled()` turns
True, `sleep_sync` wakes) — *cooperative*; if the node has not returned after half its grace, a
second SIGTERM raises `NodeCancelled` inside it, interrupting blocking calls — *terminated*; at the
end of the grace the child is SIGKILLed — *killed*. A child that was signalled is never reused.
Process nodes take and return picklable values.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import anyio

from tether.cancel.scope import anyio_scope
from tether.engine.task import StopMode
from tether.errors import NodeCancelled, NodeError

# -- the child side (runs in the child process) ------------------------------------------------

_signals = [0]
_busy = [False]


def _on_term(_signum: int, _frame: Any) -> None:
    from tether.cancel.context import current_scope
    from tether.types import CancelReason

    if not _busy[0]:
        os._exit(0)  # an idle child asked to stop (the parent is exiting)
    _signals[0] += 1
    scope = current_scope()
    if scope is not None:
        scope.cancel(CancelReason("user", "cancelled by the parent run", "parent"))
    if _signals[0] >= 2:
        raise NodeCancelled(scope.reason if scope is not None else None)


def _child_main(conn: Connection) -> None:
    from tether import node_context
    from tether.cancel.scope import CancelScope

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        node_context.enter(node_context.NodeContext("process", -1, None,
                                                    CancelScope(name="process-node")))
        reply: tuple[str, Any]
        _busy[0] = True
        try:
            fn = pickle.loads(payload)  # sent by our own parent process
            reply = ("ok", fn())
        except NodeCancelled:
            reply = ("cancelled", None)
        except BaseException as exc:  # noqa: BLE001 - shipped back to the parent
            reply = ("error", exc)
        finally:
            _busy[0] = False
        try:
            data = pickle.dumps(reply)
        except Exception as exc:  # noqa: BLE001
            data = pickle.dumps(("error", NodeError("process", f"result is not picklable: {exc}")))
        try:
            conn.send_bytes(data)
        except (OSError, BrokenPipeError):
            return


# -- the parent side -------------------------------------------------------------------------------


_all_children: set[_Child] = set()


def _kill_all() -> None:
    # At exit: no child may outlive its parent or make multiprocessing wait for it.
    for child in list(_all_children):
        child.close()


class _Child:
    __slots__ = ("__weakref__", "conn", "process")

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.conn = parent
        self.process = ctx.Process(target=_child_main, args=(child,), daemon=True,
                                   name="tether-process-node")
        self.process.start()
        child.close()
        _all_children.add(self)

    def signal(self, signum: int) -> None:
        pid = self.process.pid
        if pid is not None and self.process.is_alive():
            os.kill(pid, signum)

    def close(self) -> None:
        _all_children.discard(self)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=1.0)
        self.conn.close()


class ProcessPool:
    """Worker processes for `isolation="process"` nodes, reused while they behave."""

    def __init__(self, max_idle: int = 4) -> None:
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self.max_idle = max_idle

    async def _acquire(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.process.is_alive():
                    return child
        return await anyio.to_thread.run_sync(_Child)

    def _release(self, child: _Child) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle and child.process.is_alive():
                self._idle.append(child)
                return
        child.close()

    async def run(self, fn: Callable[[], Any], *, node: str, grace: float,
                  on_stop: Callable[[StopMode], None]) -> Any:
        """Run `fn` in a child process and return its result.

        Cancellation:
            Escalates as the module docstring says, within `grace`, then re-raises
            `CancelledError`; `on_stop` learns how the node stopped.

        Raises:
            NodeError: `fn`, its input or its result cannot be pickled.
        """
        try:
            payload = pickle.dumps(fn)
        except Exception as exc:  # noqa: BLE001 - pickling failures come in many types
            raise NodeError(node, "process nodes take and return picklable values; its "
                                  f"function or input cannot be pickled: {exc}") from None
        child = await self._acquire()
        child.conn.send_bytes(payload)
        try:
            reply = await _receive(child.conn)
        except asyncio.CancelledError:
            with anyio_scope(shield=True):
                await self._stop(child, grace, on_stop)
            raise
        except EOFError:
            child.close()
            raise NodeError(node, f"child process died (exit code "
                                  f"{child.process.exitcode})") from None
        self._release(child)
        kind, value = pickle.loads(reply)  # from our own child
        if kind == "ok":
            return value
        if kind == "cancelled":
            raise asyncio.CancelledError
        if isinstance(value, NodeError) and value.node == "process":
            raise NodeError(node, str(value).split(": ", 1)[-1])
        raise value

    async def _stop(self, child: _Child, grace: float,
                    on_stop: Callable[[StopMode], None]) -> None:
        steps: tuple[tuple[StopMode, signal.Signals], ...] = (
            ("cooperative", signal.SIGTERM), ("terminated", signal.SIGTERM))
        for how, signum in steps:
            child.signal(signum)
            with anyio.move_on_after(grace / 2):
                with contextlib.suppress(EOFError):
                    await _receive(child.conn)
                on_stop(how)
                child.close()
                return
        child.signal(signal.SIGKILL)
        on_stop("killed")
        await anyio.to_thread.run_sync(child.close)


async def _receive(conn: Connection) -> bytes:
    loop = asyncio.get_running_loop()
    fd = conn.fileno()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    return conn.recv_bytes()


atexit.register(_kill_all)

_pool: ProcessPool | None = None
_pool_lock = threading.Lock()


async def run_in_process(fn: Callable[[], Any], *, node: str, grace: float,
                         on_stop: Callable[[StopMode], None]) -> Any:
    """Run a node's call in the process-wide pool of child processes (see `ProcessPool.run`).

    Cancellation:
        As `ProcessPool.run`: cooperative, then terminated, then killed, within
        `grace`.
    """
    global _pool  # noqa: PLW0603 - one pool per process, created on first use
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPool()
    return await _pool.run(fn, node=node, grace=grace, on_stop=on_stop)
