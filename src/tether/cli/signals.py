"""Ctrl-C and SIGTERM while the CLI drives a run: the first signal cancels the run through the
ordinary cancel path (recorded, propagated, final checkpoint written); a second one exits the
process at once.

Reasons: SIGINT is a person at the terminal deciding to stop this run, so it is recorded as kind
`user`, like a Stop button; SIGTERM is the system or a supervisor stopping the process, so it is
kind `shutdown`, like a draining worker. Both are resumable in the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from tether.cli.exits import ExitCode
from tether.types import CancelReason

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REQUESTED_BY = "tether-cli"


def reason_for(signum: int) -> CancelReason:
    """The cancel reason recorded for a run stopped by `signum`."""
    if signum == signal.SIGINT:
        return CancelReason("user", "Ctrl-C in the terminal (SIGINT)", REQUESTED_BY)
    name = signal.Signals(signum).name
    return CancelReason("shutdown", f"the tether CLI received {name}", REQUESTED_BY)


class SignalGuard:
    """While entered (on a running loop): the first SIGINT/SIGTERM calls `on_first(reason)`,
    whose coroutine is kept as `cancelling`; the second calls `on_force` and exits with 130.

    Args:
        on_first: starts the graceful cancel; returns the coroutine that performs it.
        on_force: prints what is left behind, just before the forced exit.
    """

    def __init__(self, on_first: Callable[[signal.Signals, CancelReason], Any],
                 on_force: Callable[[signal.Signals], None]) -> None:
        self._on_first = on_first
        self._on_force = on_force
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received: list[signal.Signals] = []
        self.cancelling: asyncio.Task[Any] | None = None

    def __enter__(self) -> SignalGuard:
        self._loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            self._loop.add_signal_handler(signum, self._handle, signum)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for signum in SIGNALS:
                self._loop.remove_signal_handler(signum)

    def _handle(self, signum: int) -> None:
        sig = signal.Signals(signum)
        self.received.append(sig)
        if len(self.received) > 1:
            self._on_force(sig)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(ExitCode.FORCED)
        assert self._loop is not None
        self.cancelling = self._loop.create_task(self._on_first(sig, reason_for(signum)))

    async def settled(self) -> None:
        """Wait for the graceful cancel started by the first signal, if any.

        Cancellation:
            Only the waiting stops.
        """
        if self.cancelling is not None:
            await self.cancelling


__all__ = ["REQUESTED_BY", "SIGNALS", "SignalGuard", "reason_for"]
