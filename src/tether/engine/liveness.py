"""The idle watchdog of a node attempt: any sign of life pushes its deadline back."""

from __future__ import annotations

import asyncio
import time

from tether.cancel.scope import CancelScope
from tether.types import CancelReason


class Liveness:
    """The idle watchdog of one attempt: any sign of life pushes its deadline back."""

    __slots__ = ("_handle", "idle", "last", "scope")

    def __init__(self, scope: CancelScope, idle: float) -> None:
        self.scope = scope
        self.idle = idle
        self.last = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None

    def touch(self) -> None:
        """A sign of life (from any thread)."""
        self.last = time.monotonic()

    def start(self) -> None:
        """Arm the watchdog on the running loop."""
        self._handle = asyncio.get_running_loop().call_later(self.idle, self._check)

    def _check(self) -> None:
        quiet = time.monotonic() - self.last
        if self.scope.cancel_called:
            return
        if quiet >= self.idle:
            self.scope.cancel(CancelReason("timeout", f"no sign of life for {quiet:.3f}s",
                                           "idle"))
            return
        self._handle = asyncio.get_running_loop().call_later(self.idle - quiet, self._check)

    def stop(self) -> None:
        """Disarm."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
